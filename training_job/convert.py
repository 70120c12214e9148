"""Keras -> TFLite conversion and the parity check against Keras, on the LiteRT runtime that serving uses.

Conversion uses TFLiteConverter.from_keras_model (never from_concrete_functions: on Keras 3 it silently
yields a model that returns NaN). fp32 by default; int8 (full-integer weights and activations, float I/O)
is optional, calibrated on in-distribution images, and judged by the same gates.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import tensorflow as tf

from layers.serving.litert import LiteModel
from training_job.config import MIN_TOP1_AGREEMENT_INT8, PARITY_TOLERANCE_FP32, PARITY_TOLERANCE_INT8


def to_tflite(model, mode: str = "fp32", calibration: np.ndarray | None = None) -> bytes:
    """The model as TFLite bytes. The converter's own chatter (hundreds of lines) is kept out of the log."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        return _convert(model, mode, calibration)


def _convert(model, mode: str, calibration: np.ndarray | None) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "int8":
        if calibration is None or not len(calibration):
            raise ValueError("int8 conversion needs calibration images")

        def representative():
            for x in calibration[:200]:
                yield [x[None, ...].astype(np.float32)]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif mode != "fp32":
        raise ValueError(f"unknown conversion mode {mode!r} (fp32 | int8)")
    return converter.convert()


def parity(model, tflite: bytes, x: np.ndarray, mode: str = "fp32") -> dict:
    """Compare Keras and LiteRT probabilities on the same inputs; `ok` says whether the gate passes."""
    keras_p = np.asarray(model.predict(x, batch_size=64, verbose=0), np.float32)
    lite_p = LiteModel(tflite).predict(x)
    diff = float(np.max(np.abs(keras_p - lite_p))) if len(x) else 0.0
    agree = float(np.mean(keras_p.argmax(1) == lite_p.argmax(1))) if len(x) else 1.0
    finite = bool(np.isfinite(lite_p).all())
    tol, min_agree = (PARITY_TOLERANCE_FP32, 1.0) if mode == "fp32" else (PARITY_TOLERANCE_INT8, MIN_TOP1_AGREEMENT_INT8)
    return {"mode": mode, "n": int(len(x)), "max_abs_diff": diff, "top1_agreement": agree, "finite": finite,
            "tolerance": tol, "min_top1_agreement": min_agree,
            "ok": finite and diff <= tol and agree >= min_agree}
