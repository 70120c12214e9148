"""Keras -> TFLite conversion and the parity checks against Keras, on the LiteRT runtime that serving uses.

A version is converted in two parts (layers.serving.loader): the backbone once per fingerprint (seconds),
and each version's Dense head (well under a second). `parity` checks one converted model against its Keras
model; `agreement` compares any two sets of probabilities, e.g. the composed LiteRT path (backbone.tflite,
then head.tflite) against the Keras model it came from.

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
    return agreement(np.asarray(model.predict(x, batch_size=64, verbose=0), np.float32), LiteModel(tflite).predict(x), mode)


def agreement(reference: np.ndarray, lite: np.ndarray, mode: str = "fp32") -> dict:
    """The parity gate on two (N, n_labels) probability arrays: max |dp| within the mode's tolerance, the same
    top class (all of them for fp32), and finite values. Pure."""
    n = len(reference)
    diff = float(np.max(np.abs(reference - lite))) if n else 0.0
    agree = float(np.mean(reference.argmax(1) == lite.argmax(1))) if n else 1.0
    finite = bool(np.isfinite(lite).all())
    tol, min_agree = (PARITY_TOLERANCE_FP32, 1.0) if mode == "fp32" else (PARITY_TOLERANCE_INT8, MIN_TOP1_AGREEMENT_INT8)
    return {"mode": mode, "n": int(n), "max_abs_diff": diff, "top1_agreement": agree, "finite": finite,
            "tolerance": tol, "min_top1_agreement": min_agree,
            "ok": finite and diff <= tol and agree >= min_agree}


def embedding_parity(reference: np.ndarray, lite: np.ndarray, mode: str = "fp32") -> dict:
    """The backbone alone: its LiteRT embeddings against Keras', relative to the embeddings' scale. Pure."""
    scale = float(np.max(np.abs(reference))) if len(reference) else 1.0
    diff = float(np.max(np.abs(reference - lite))) if len(reference) else 0.0
    rel = diff / max(scale, 1e-12)
    finite = bool(np.isfinite(lite).all())
    return {"mode": mode, "n": int(len(reference)), "max_abs_diff": diff, "relative": rel, "finite": finite,
            "ok": finite and (rel <= 1e-3 if mode == "fp32" else rel <= 0.25)}
