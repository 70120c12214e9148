#!/usr/bin/env python3
"""The baseline of issue 20: what a user would write instead of Slack After Dark's /predict. One Flask app
served by waitress, one exported .tflite (`python -m training_job export`), LiteRT, a full decode of every
image with Pillow, no cache, no decoy, no auth.

    MODEL_TFLITE=engineer-v1.tflite PORT=5099 python bench/flask_predict.py
"""
from __future__ import annotations

import io
import os
import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from flask import Flask, jsonify, request
from PIL import Image
from waitress import serve

LABELS = os.environ.get("LABELS", "engineer,non_engineer").split(",")
MODEL = open(os.environ["MODEL_TFLITE"], "rb").read()
app = Flask(__name__)
local = threading.local()                 # one interpreter per waitress thread (an interpreter is not thread-safe)


def interpreter() -> Interpreter:
    if not hasattr(local, "it"):
        local.it = Interpreter(model_content=MODEL)
        local.it.allocate_tensors()
    return local.it


@app.post("/")
def predict():
    it = interpreter()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    size = int(inp["shape"][1])
    img = Image.open(io.BytesIO(request.get_data())).convert("RGB").resize((size, size), Image.BILINEAR)
    x = (np.asarray(img, np.float32) / 127.5 - 1.0)[None]
    it.set_tensor(inp["index"], x)
    it.invoke()
    p = it.get_tensor(out["index"])[0]
    i = int(np.argmax(p))
    return jsonify(label=LABELS[i], confidence=float(p[i]))


if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(os.environ.get("PORT", "5099")), threads=8)
