"""The baseline: what the seeds did. A minimal Flask app that holds a Keras model and calls
`model.predict` for each uploaded image (same network, same preprocessing, no LiteRT)."""

from __future__ import annotations

import sys

import flask
import numpy as np

from bench.model_side import keras_model
from common.media.images import prepare

app = flask.Flask(__name__)
model = keras_model()


@app.post("/classify")
def classify() -> flask.Response:
    crop = prepare(flask.request.files["file"].read())
    logits = model.predict(crop[None].astype(np.float32), verbose=0)[0]
    top = np.argsort(logits)[::-1][:5]
    return flask.jsonify([{"class_id": int(i), "score": float(logits[i])} for i in top])


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
