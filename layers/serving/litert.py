"""A loaded TFLite model on the LiteRT runtime (ai-edge-litert): the one place that touches the Interpreter.

Example:
    m = LiteModel(tflite_bytes)             # loads, allocates tensors
    probs = m.predict(batch)                # (N, *input_shape) float32 -> (N, n_outputs) float32

A model's input is an image (size, size, 3) for a backbone or a whole model, or an embedding (D,) for a head.

IMPORTANT: an Interpreter is not thread-safe. A LiteModel serialises its own invocations with a lock;
callers that need parallelism hold several LiteModels (see layers.serving.runtime).
"""
from __future__ import annotations

import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from layers.errors import ArtifactCorrupt


class LiteModel:
    def __init__(self, model_content: bytes, num_threads: int = 1) -> None:
        try:
            self._interp = Interpreter(model_content=model_content, num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ArtifactCorrupt(f"the model does not load on LiteRT: {err}") from err
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self._lock = threading.Lock()
        self.input_shape = tuple(int(d) for d in self._in["shape"][1:])
        self.input_size = self.input_shape[0]
        self.n_outputs = int(self._out["shape"][-1])

    def _quantize_in(self, x: np.ndarray) -> np.ndarray:
        if self._in["dtype"] == np.float32:
            return x.astype(np.float32, copy=False)
        scale, zero = self._in["quantization"]
        return np.clip(np.round(x / scale + zero), -128, 127).astype(self._in["dtype"])

    def _dequantize_out(self, y: np.ndarray) -> np.ndarray:
        if self._out["dtype"] == np.float32:
            return y
        scale, zero = self._out["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The output for each row of the batch (invoked one at a time: the model's batch is 1)."""
        out = np.empty((len(batch), self.n_outputs), np.float32)
        with self._lock:
            for i, x in enumerate(batch):
                self._interp.set_tensor(self._in["index"], self._quantize_in(x[None, ...]))
                self._interp.invoke()
                out[i] = self._dequantize_out(self._interp.get_tensor(self._out["index"]))[0]
        return out
