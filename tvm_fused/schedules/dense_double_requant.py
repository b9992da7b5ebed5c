"""int8 fully connected with TFLite's reference requantization in double precision.

``OpResolverType.BUILTIN_REF`` runs ``reference_integer_ops::FullyConnected`` (per-tensor)
and ``FullyConnectedPerChannel`` (per-channel) overloads that take the float scales and
requantize in double, not with MultiplyByQuantizedMultiplier (``kernels/internal/reference/
integer_ops/fully_connected.h``, called from ``fully_connected.cc`` for kReference)::

    acc[n, j] = bias[j] + sum_k (x[n, k] - z_x) * W[k, j]                  (int32)
    eff[j]    = double(s_x) * double(s_w[j]) / double(s_y)
    y[n, j]   = clamp(int32(round(double(acc[n, j]) * eff[j])) + z_y, act_min, act_max)

``round`` is C's (halves away from zero). The fixed-point path (TFLM, CMSIS-NN, TFLite's
optimized kernels) rounds twice and differs on outputs whose scaled accumulator sits near a
half; BUILTIN_REF is our reference, so TFLite models take this kernel. ``eff`` is a const
``double`` table (flash); Cortex-M7's FPv5 double-precision unit does the multiply.

Rounding is done exactly as ``std::round`` without a libm call: ``t = trunc(v)`` (a cast),
``f = v - t`` (exact for |v| < 2**52), ``r = t + (f >= 0.5) - (f <= -0.5)``.
"""
from __future__ import annotations

import numpy as np
from tvm import te, tirx

from .common import MAX_REDUCTION, finish_prim_func
from .dense import DenseParams


def effective_scales(in_scale: float, w_scales, out_scale: float) -> np.ndarray:
    """``double(s_x) * double(s_w[j]) / double(s_y)`` for each output channel (the scales are
    the model's float32 values)."""
    sx, sy = float(np.float32(in_scale)), float(np.float32(out_scale))
    return np.array([sx * float(np.float32(w)) / sy for w in np.atleast_1d(w_scales)], np.float64)


def dense_double_requant_reference(x, weight, bias, eff, p: DenseParams) -> np.ndarray:
    """numpy golden: (batch, K) int8, (K, M) int8, (M,) int32, (M,) float64 -> (batch, M) int8."""
    acc = (np.asarray(x, np.int64) - p.in_zp) @ np.asarray(weight, np.int64) + np.asarray(bias, np.int64)
    v = acc.astype(np.float64) * eff
    t = np.trunc(v)
    rounded = t.astype(np.int64) + (v - t >= 0.5) - (v - t <= -0.5)
    return np.clip(rounded + p.out_zp, p.act_min, p.act_max).astype(np.int8)


def _round_half_away(v):
    t = v.astype("int64")
    frac = v - t.astype("float64")
    one, zero = tirx.const(1, "int64"), tirx.const(0, "int64")
    return t + tirx.Select(frac >= 0.5, one, zero) - tirx.Select(frac <= -0.5, one, zero)


def _row_index(idx, shape):
    """Row-major flat index of ``idx`` over ``shape`` (the leading dims of an N-D input)."""
    flat = 0
    for i, d in zip(idx, shape):
        flat = flat * d + i
    return flat


def _unflatten(flat, shape):
    idx = []
    for d in reversed(shape):
        idx.append(tirx.floormod(flat, d))
        flat = tirx.floordiv(flat, d)
    return list(reversed(idx))


def dense_int8_double_requant(p: DenseParams, name: str = "dense", x_shape=None, out_shape=None):
    """PrimFunc(x, weight, bias, eff_scale, out); ``eff_scale`` is float64[M].

    ``x_shape`` / ``out_shape``: N-D shapes ``(..., K)`` / ``(..., M)`` with ``prod(...) = batch``
    (TFLite's FULLY_CONNECTED flattens its input's leading dims, e.g. ``[1, 1, 1, K]``);
    default ``(batch, K)`` / ``(batch, M)``.
    """
    if p.in_features > MAX_REDUCTION:
        raise ValueError(f"{p.in_features} inputs could overflow the int32 accumulator")
    x_shape = tuple(x_shape or (p.batch, p.in_features))
    out_shape = tuple(out_shape or (p.batch, p.out_features))
    if x_shape[-1] != p.in_features or out_shape[-1] != p.out_features or \
            int(np.prod(x_shape[:-1])) != p.batch or int(np.prod(out_shape[:-1])) != p.batch:
        raise ValueError(f"fully connected shapes {x_shape} -> {out_shape} do not match {p}")
    x = te.placeholder(x_shape, "int8", name="x")
    weight = te.placeholder((p.in_features, p.out_features), "int8", name="weight")
    bias = te.placeholder((p.out_features,), "int32", name="bias")
    eff = te.placeholder((p.out_features,), "float64", name="eff_scale")
    k = te.reduce_axis((0, p.in_features), name="k")

    def x_at(row, kk):
        lead = _unflatten(row, x_shape[:-1]) if len(x_shape) > 2 else [row]
        return x[(*lead, kk)]

    def accumulate(*idx):
        row = _row_index(idx[:-1], out_shape[:-1])
        return te.sum((x_at(row, k).astype("int32") - p.in_zp) * weight[k, idx[-1]].astype("int32"), axis=k)

    acc = te.compute(out_shape, accumulate, name="acc")

    def finish(*idx):
        o = idx[-1]
        scaled = _round_half_away((acc[idx] + bias[o]).astype("float64") * eff[o]).astype("int32")
        return tirx.max(tirx.min(scaled + p.out_zp, p.act_max), p.act_min).astype("int8")

    out = te.compute(out_shape, finish, name="out")
    return finish_prim_func(te.create_prim_func([x, weight, bias, eff, out]), name, accumulate_into="out")
