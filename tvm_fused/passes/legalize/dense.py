"""FULLY_CONNECTED / ONNX Gemm, MatMul -> ``dense_int8``."""
from __future__ import annotations

import numpy as np
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules import DenseParams, dense_int8, quantize_multipliers
from .core import Match, QTensor
from .registry import register_rule
from .weights import bias_vector


@register_rule(
    "relax.matmul", bias=True,
    tflite={"FULLY_CONNECTED": "2-D input; int8 weights; optional int32 bias"},
    onnx={"Gemm": "2-D input; int8 constant weights (transB folded)", "MatMul": "2-D input; int8 constant weights"},
)
def dense(ctx, m: Match) -> QTensor:
    """``quantize(matmul(dequantize(x), dequantize(W)) [+ bias])`` -> int8 fully connected.

    ``x``: (batch, K) int8, ``W``: (K, M) int8 constant (per-tensor or per-output scale)::

        acc[n, j] = bias_q[j] + sum_k (x[n, k] - x_zp) * (W[k, j] - 0)
        y[n, j]   = clamp(MultiplyByQuantizedMultiplier(acc[n, j], M[j], shift[j]) + y_zp, act_min, act_max)

    with ``M[j] * 2^shift[j] = x_scale * w_scale[j] / y_scale`` in double precision.

    Before::

        y = R.quantize(R.matmul(R.dequantize(x, sx, zx), R.dequantize(W, sw, 0)) + b, sy, zy)

    After::

        y = R.call_tir(dense, (x, W, bias_q, M, shift), R.Tensor((batch, M), "int8"))
    """
    call, out = m.call, m.out
    data = ctx.input(call.args[0], "matmul")
    weight = ctx.const(call.args[1])
    if weight is None or weight.values.dtype != np.int8 or weight.values.ndim != 2:
        raise UnsupportedModelError("fully connected weights must be 2-D int8 constants")
    if len(data.shape) != 2:
        raise UnsupportedModelError(f"fully connected on a {len(data.shape)}-D input; flatten first")
    k, n_out = weight.values.shape
    w_scale = weight.scale_along(1, n_out)
    p = DenseParams(data.shape[0], k, n_out, data.zero_point, out.zero_point, out.act_min, out.act_max)
    mult, shift = quantize_multipliers((data.scale * w_scale) / out.scale)
    b = bias_vector(m.bias, n_out, data.scale, w_scale)
    consts = [relax.const(np.ascontiguousarray(weight.values)), relax.const(b),
              relax.const(mult), relax.const(shift)]
    return ctx.emit("dense", dense_int8(p), [data.var, *consts], (p.batch, n_out), out.scale, out.zero_point,
                    "", p, macs=p.macs)
