"""FULLY_CONNECTED / ONNX Gemm, MatMul -> ``dense_int8``."""
from __future__ import annotations

import numpy as np
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules import DenseParams, dense_int8, quantize_multipliers
from ...schedules.dense_double_requant import dense_double_requant_int8, effective_scales
from .core import Match, QTensor
from .registry import register_rule
from .weights import bias_vector


@register_rule(
    "relax.matmul", bias=True,
    tflite={"FULLY_CONNECTED": "int8 weights; optional int32 bias; N-D inputs flattened to (rows, K)"},
    onnx={"Gemm": "2-D input; int8 constant weights (transB folded)", "MatMul": "2-D input; int8 constant weights"},
)
def dense(ctx, m: Match) -> QTensor:
    """``quantize(matmul(dequantize(x), dequantize(W)) [+ bias])`` -> int8 fully connected.

    ``x``: (batch, K) int8, ``W``: (K, M) int8 constant (per-tensor or per-output scale)::

        acc[n, j] = bias_q[j] + sum_k (x[n, k] - x_zp) * (W[k, j] - 0)
        y[n, j]   = clamp(MultiplyByQuantizedMultiplier(acc[n, j], M[j], shift[j]) + y_zp, act_min, act_max)

    with ``M[j] * 2^shift[j] = x_scale * w_scale[j] / y_scale`` in double precision (ONNX).
    TFLite models follow BUILTIN_REF's ``reference_integer_ops::FullyConnected``, which
    requantizes in double instead: ``y = clamp(round(double(acc) * x_scale * w_scale[j] / y_scale)
    + y_zp)`` (``schedules/dense_double_requant.py``).

    Before::

        y = R.quantize(R.matmul(R.dequantize(x, sx, zx), R.dequantize(W, sw, 0)) + b, sy, zy)

    After::

        y = R.call_tir(dense, (x, W_t, table), R.Tensor((batch, M), "int8"))        # ONNX
        y = R.call_tir(dense, (x, W_t, bias_f, eff), R.Tensor((batch, M), "int8"))  # TFLite

    (constants laid out for the GEMM micro-kernel, ``schedules/weight_layout.py``; TFLite's
    ``eff`` is the float64 scale per output channel.)
    """
    call, out = m.call, m.out
    data = ctx.input(call.args[0], "matmul")
    weight = ctx.const(call.args[1])
    if weight is None or weight.values.dtype != np.int8 or weight.values.ndim != 2:
        raise UnsupportedModelError("fully connected weights must be 2-D int8 constants")
    tflite = ctx.source_format == "tflite"
    if len(data.shape) != 2 and not (tflite and len(data.shape) > 2):  # TFLite FC flattens leading dims
        raise UnsupportedModelError(f"fully connected on a {len(data.shape)}-D input; flatten first")
    k, n_out = weight.values.shape
    if data.shape[-1] != k:
        raise UnsupportedModelError(f"fully connected input has {data.shape[-1]} features, its weights {k}")
    w_scale = weight.scale_along(1, n_out)
    batch = int(np.prod(data.shape[:-1]))
    p = DenseParams(batch, k, n_out, data.zero_point, out.zero_point, out.act_min, out.act_max)
    b = bias_vector(m.bias, n_out, data.scale, w_scale)
    if tflite:
        # BUILTIN_REF requantizes FULLY_CONNECTED in double, not in fixed point
        # (schedules/dense_double_requant.py); TFLM's fixed-point result differs near halves
        eff = effective_scales(data.scale, w_scale, out.scale)
        out_shape = tuple(out.src_shape)
        func, packed = dense_double_requant_int8(p, weight.values, b, eff, x_shape=data.shape, out_shape=out_shape)
        consts = [relax.const(packed[0]), relax.const(packed[1]), relax.const(packed[2], "float64")]
        return ctx.emit("dense", func, [data.var, *consts], out_shape, out.scale, out.zero_point,
                        data.src_layout if len(out_shape) == 4 else "", p, macs=p.macs)
    mult, shift = quantize_multipliers((data.scale * w_scale) / out.scale)
    func, packed = dense_int8(p, weight.values, b, mult, shift)  # constants in the micro-kernel's layout
    consts = [relax.const(c) for c in packed]
    return ctx.emit("dense", func, [data.var, *consts], (p.batch, n_out), out.scale, out.zero_point,
                    "", p, macs=p.macs)
