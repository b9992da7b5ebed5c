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
``double`` table (flash); Cortex-M7's FPv5 double-precision unit does the multiply. The
accumulators come from the same GEMM micro-kernel as ``dense_int8`` (SMLAD/SXTB16, offline
(out, in) weight layout, input zero point folded into the bias); only the epilogue differs.

Rounding is done exactly as ``std::round`` without a libm call: ``t = trunc(v)`` (a cast),
``f = v - t`` (exact for |v| < 2**52), ``r = t + (f >= 0.5) - (f <= -0.5)``. The cast goes
through int32 when the compile-time bound of ``|v|`` allows it (``scaled_fits_int32``), else int64.
"""
from __future__ import annotations

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from .common import MAX_REDUCTION, hand_written
from .config import GemmConfig, chosen
from .dense import DenseParams
from .gemm import GemmTask, Operand
from .weight_layout import folded_bias


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


def _round_half_away(v, int_dtype: str):
    """C's ``round`` of a double to ``int_dtype`` (halves away from zero), without libm."""
    t = T.bind(v.astype(int_dtype))
    frac = T.bind(v - t.astype("float64"))
    one, zero = tirx.const(1, int_dtype), tirx.const(0, int_dtype)
    return t + tirx.Select(frac >= 0.5, one, zero) - tirx.Select(frac <= -0.5, one, zero)


def pack_dense_double(weight, bias, in_zp: int) -> list[np.ndarray]:
    """(in, out) int8 weights + int32 bias -> [w8 (out, in), bias'] with the input zero point
    folded into the bias (``weight_layout``): the GEMM micro-kernel's layout, no multipliers."""
    w_oi = np.ascontiguousarray(np.asarray(weight, np.int8).T)
    return [w_oi.reshape(-1), folded_bias(bias, w_oi.astype(np.int64).sum(axis=1), in_zp)]


def scaled_fits_int32(p: DenseParams, bias, eff) -> bool:
    """Whether every ``double(acc) * eff`` is strictly inside int32, so the rounding may convert
    through int32 (one VCVT on Cortex-M7) instead of int64 (a library call). ``|acc|`` is at
    most ``|bias| + 255 * 128 * K`` (inputs minus zero point in [-255, 255], weights in [-128, 127])."""
    acc_max = float(np.max(np.abs(np.asarray(bias, np.int64)), initial=0)) + 255.0 * 128.0 * p.in_features
    return acc_max * float(np.max(np.abs(eff), initial=0.0)) < 2.0**31 - 2


def dense_double_requant_int8(p: DenseParams, weight, bias, eff, config=None, name: str = "dense",
                              x_shape=None, out_shape=None):
    """Fast kernel + constants: ``(PrimFunc(x, w8, bias, eff_scale, out), [w8, bias, eff_scale])``.

    The accumulators come from the GEMM micro-kernel (``gemm.py``: SMLAD on SXTB16 pairs, the
    input zero point folded into the bias); only the epilogue differs from ``dense_int8``:
    ``clamp(round(double(acc) * eff[o]) + z_y)``. ``weight`` is (in, out) int8, ``eff`` float64[M].

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
    eff = np.ascontiguousarray(np.asarray(eff, np.float64).reshape(-1))
    if eff.shape != (p.out_features,):
        eff = np.ascontiguousarray(np.broadcast_to(eff, (p.out_features,)))
    w8, bias_f = pack_dense_double(weight, bias, p.in_zp)
    int_dtype = "int32" if scaled_fits_int32(p, bias, eff) else "int64"
    config = config or chosen(p) or GemmConfig()
    k, m = p.in_features, p.out_features
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            x = T.arg("x", T.buffer(x_shape, "int8"))
            w8_buf = T.arg("w8", T.buffer((k * m,), "int8"))
            bias_buf = T.arg("bias", T.buffer((m,), "int32"))
            eff_buf = T.arg("eff_scale", T.buffer((m,), "float64"))
            out = T.arg("out", T.buffer(out_shape, "int8"))
            acc = T.alloc_buffer((max(1, config.pixel_block * config.channel_block),), "int32")
            x_flat = T.decl_buffer((p.batch * k,), "int8", data=x.data)
            y_flat = T.decl_buffer((p.batch * m,), "int8", data=out.data)

            def finish(acc_value, o):
                scaled = _round_half_away(T.bind(acc_value).astype("float64") * eff_buf[o], int_dtype)
                y = scaled.astype("int32") + p.out_zp
                return tirx.max(tirx.min(y, p.act_max), p.act_min).astype("int8")

            task = GemmTask(Operand(x_flat), Operand(w8_buf), Operand(bias_buf), Operand(y_flat), m, 1, k, p.out_zp,
                            p.act_min, p.act_max, acc, config, finish=finish)
            task.pixels(lambda i, s: i * k, lambda i: i * m, p.batch)
    return hand_written(ib.get()), [w8, bias_f, eff]
