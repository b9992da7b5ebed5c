"""Tiny models that each trip one specific check: error-path tests need them, not realism."""
from __future__ import annotations

import onnx
from onnx import helper

from .mobilenet_v2 import _GraphBuilder
from .quantize import quantize_qdq

_RES = 32


def float_only_model(seed: int = 0) -> onnx.ModelProto:
    """Float Conv+ReLU6 -> GAP -> Gemm with no QuantizeLinear/DequantizeLinear at all."""
    g = _GraphBuilder(seed)
    x = g.conv("input", 3, 8, 3, 2)
    g.head(x, 8, 10)
    return g.model(_RES, 10, "float_only")


def unsupported_op_model(op_type: str = "LpNormalization", seed: int = 0) -> onnx.ModelProto:
    """QDQ int8 model with `op_type` (LpNormalization or Hardmax) between a DQ and a Q.

    onnxruntime cannot quantize these ops, so they stay float: the conv's output is
    dequantized, goes through the op, and is quantized again for the next conv.
    """
    if op_type not in ("LpNormalization", "Hardmax"):
        raise ValueError(f"op_type must be LpNormalization or Hardmax, got {op_type}")
    g = _GraphBuilder(seed)
    x = g.conv("input", 3, 8, 3, 2)
    g.nodes.append(helper.make_node(op_type, [x], ["odd_out"], name="odd", axis=1))
    x = g.conv("odd_out", 8, 16, 1, 1)
    g.head(x, 16, 10)
    return quantize_qdq(g.model(_RES, 10, f"unsupported_{op_type}"), num_samples=2, seed=seed)


def no_chain_model(seed: int = 0) -> onnx.ModelProto:
    """QDQ int8: a single conv -> GlobalAveragePool -> Flatten -> Gemm; nothing to fuse."""
    g = _GraphBuilder(seed)
    x = g.conv("input", 3, 16, 3, 2)
    g.head(x, 16, 10)
    return quantize_qdq(g.model(_RES, 10, "no_chain"), num_samples=2, seed=seed)
