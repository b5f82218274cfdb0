"""The models served: the built-in model and its interpreters, the shared backbone, heads, the registry that
resolves a name to a model, model files in the bucket, and class names."""
