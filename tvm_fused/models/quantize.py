"""Float ONNX -> QDQ int8 ONNX with onnxruntime's static quantizer, seeded and quiet.

This is the same recipe we tell users to apply to their own models (see the
float-only error in frontend/onnx_loader.py), so the zoo exercises the real format.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile

import numpy as np
import onnx


class _RandomCalibration:
    """A few seeded uniform[-1, 1] inputs: image-like range, fast, reproducible."""

    def __init__(self, input_name: str, shape, num_samples: int, seed: int):
        rng = np.random.default_rng(seed)
        self._batches = iter([{input_name: rng.uniform(-1.0, 1.0, shape).astype(np.float32)}
                              for _ in range(num_samples)])

    def get_next(self):
        return next(self._batches, None)


def _input_shape(model: onnx.ModelProto):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value for d in dims]


def quantize_qdq(float_model: onnx.ModelProto, num_samples: int = 6, seed: int = 0,
                 keep_clip: bool = False) -> onnx.ModelProto:
    """QDQ int8 (activations and per-channel weights), calibrated by MinMax on random inputs.

    onnxruntime drops a Clip(0, 6) that follows a quantized Conv and lets the Conv's
    output QuantizeLinear saturate instead (its calibrated range is [0, <=6]), unless
    `keep_clip` is set, which keeps Clip as an explicit DQ -> Clip -> Q node.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    name = float_model.graph.input[0].name
    reader = _RandomCalibration(name, _input_shape(float_model), num_samples, seed)
    extra = {"QDQKeepRemovableActivations": bool(keep_clip)}
    with tempfile.TemporaryDirectory(prefix="tvm-fused-quant-") as tmp:
        out = os.path.join(tmp, "model.qdq.onnx")
        # onnxruntime logs warnings (e.g. "please run pre-processing") through logging and print.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(float_model, out, reader, quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QInt8,
                                weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax, extra_options=extra)
        finally:
            root.setLevel(level)
        model = onnx.load(out)
    return model
