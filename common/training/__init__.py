"""Training a custom model: a linear softmax head on the shared backbone's features, in numpy.

Each step is its own module, pure numpy + Pillow (no TensorFlow, no sklearn):
`dataset` (list and validate a bucket folder), `split` (stratified 80/10/10),
`augment` (extra views of training images), `fit` (the head), `metrics` and
`confusion_png` (the evaluation), and `pipeline`, which ties them together.
"""
