"""AVERAGE_POOL_2D / MEAN / ONNX AveragePool, GlobalAveragePool, ReduceMean -> ``avg_pool_int8``."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ...errors import UnsupportedModelError
from ...schedules import PoolParams, avg_pool_int8, mean_params
from ..quant_graph import op_name
from .core import Match, QTensor
from .registry import register_rule


def _pool_macs(p: PoolParams) -> int:
    return int(np.prod(p.out_shape)) * p.kernel[0] * p.kernel[1]


@register_rule(
    "relax.mean",
    tflite={"MEAN": "over H and W of a 4-D tensor (keep_dims or not)"},
    onnx={"GlobalAveragePool": "4-D input", "ReduceMean": "over the spatial axes of a 4-D tensor"},
)
def mean(ctx, m: Match) -> QTensor:
    """``quantize(mean(dequantize(x), axis=[H, W]))`` -> spatial mean, a pool over the whole input.

    TFLite (``reference_integer_ops::Mean``, 1/count folded into the multiplier)::

        y = clamp(MBQM(sum(x - x_zp), M', s') + y_zp)   M', s' = tflite_mean_multiplier(x_scale / y_scale, H*W)

    ONNX (QDQ float semantics)::

        y = clamp(round_half_away(MBQM(sum(x - x_zp), M, s) / (H*W)) + y_zp)   M * 2^s = x_scale / y_scale

    Before::

        y = R.quantize(R.mean(R.dequantize(x, sx, zx), axis=[2, 3], keepdims=True), sy, zy)

    After::

        y = R.call_tir(avg_pool, (x,), R.Tensor((1, 1, 1, C), "int8"))   # or (1, C) without keepdims
    """
    call, out = m.call, m.out
    data = ctx.input(call.args[0], "mean")
    axes = sorted(int(a) % len(data.shape) for a in call.attrs.axis)
    spatial = [2, 3] if data.src_layout == "NCHW" else [1, 2]
    if len(data.shape) != 4 or axes != spatial:
        raise UnsupportedModelError(f"mean over axes {axes} is not supported (only spatial mean)")
    p = mean_params(data.shape, data.scale, data.zero_point, out.scale, out.zero_point)
    tflite = ctx.layout_hint == "NHWC"  # TFLite import: follow its MEAN arithmetic
    p = PoolParams(**{**asdict(p), "act_min": out.act_min, "act_max": out.act_max, "tflite_mean": tflite})
    n, _, _, c = data.shape
    shape = (n, 1, 1, c) if len(out.src_shape) == 4 else (n, c)
    func = avg_pool_int8(p, flatten=len(shape) == 2)
    return ctx.emit("mean", func, [data.var], shape, out.scale, out.zero_point,
                    data.src_layout if len(shape) == 4 else "", p, macs=int(np.prod(data.shape)))


@register_rule(
    "relax.nn.avg_pool2d",
    onnx={"AveragePool": "count_include_pad=0 when padded; no ceil_mode"},
)
def avg_pool2d(ctx, m: Match) -> QTensor:
    """``quantize(avg_pool2d(dequantize(x)))`` -> int8 average pool (padded taps not counted).

    Same quantization in and out (TFLite ``reference_integer_ops::AveragePool``)::

        y = clamp(round_half_away(sum(x) / count))

    otherwise::

        y = clamp(round_half_away(MBQM(sum(x - x_zp), M, s) / count) + y_zp)   M * 2^s = x_scale / y_scale

    Before::

        y = R.quantize(R.nn.avg_pool2d(R.dequantize(x, sx, zx), pool_size=[2, 2], strides=[2, 2]), sy, zy)

    After::

        y = R.call_tir(avg_pool2d, (x,), R.Tensor((1, H/2, W/2, C), "int8"))
    """
    call, out = m.call, m.out
    data = ctx.input(call.args[0], "avg_pool2d")
    attrs = call.attrs
    if str(attrs.layout) != (data.src_layout or "NCHW"):
        raise UnsupportedModelError(f"avg_pool2d layout {attrs.layout} differs from its input's")
    if bool(attrs.count_include_pad) and any(int(p) for p in attrs.padding):
        raise UnsupportedModelError("average pooling that counts padding is not supported")
    if bool(attrs.ceil_mode):
        raise UnsupportedModelError("average pooling with ceil_mode is not supported")
    p = PoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(s) for s in attrs.strides),
                   tuple(int(v) for v in attrs.padding), data.scale, data.zero_point, out.scale, out.zero_point,
                   out.act_min, out.act_max)
    return ctx.emit("avg_pool2d", avg_pool_int8(p), [data.var], p.out_shape, out.scale, out.zero_point,
                    data.src_layout, p, macs=_pool_macs(p))


@register_rule(
    "relax.astype", domain="int8",
    tflite={"AVERAGE_POOL_2D": "same input and output quantization (TFLite requires it); fused activation as a clamp"},
)
def int_avg_pool2d(ctx, m: Match) -> QTensor | None:
    """TFLite pools int8 in the integer domain: ``astype(int32) -> avg_pool2d -> astype(int8)``.

    Rooted at the final ``astype(int8)``; the inner casts return None (consumed here).
    TFLite ``reference_integer_ops::AveragePool``, padded taps not counted::

        y = clamp(round_half_away(sum(x) / count), -128, 127)

    Before::

        a = R.astype(x, "int32"); p = R.nn.avg_pool2d(a, pool_size=[3, 3]); y = R.astype(p, "int8")

    After::

        y = R.call_tir(avg_pool2d, (x,), R.Tensor((1, H', W', C), "int8"))
    """
    if str(m.call.attrs.dtype) != "int8":
        return None  # the int32 cast feeding the pool
    pool = ctx.producer(m.call.args[0])
    inner = ctx.producer(pool.args[0]) if op_name(pool) == "relax.nn.avg_pool2d" else None
    data = ctx.int8(inner.args[0]) if op_name(inner) == "relax.astype" else None
    if data is None:
        raise UnsupportedModelError(f"{m.layer}: cast to int8 of something other than an integer pool")
    attrs = pool.attrs
    clip = ctx.take_int_clip(m.var)  # TFLite's fused activation: clamp in the kernel
    act = (max(-128, clip[0]), min(127, clip[1])) if clip else (-128, 127)
    p = PoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(v) for v in attrs.strides),
                   tuple(int(v) for v in attrs.padding), data.scale, data.zero_point, data.scale,
                   data.zero_point, *act)
    return ctx.emit("avg_pool2d", avg_pool_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                    data.src_layout, p, macs=_pool_macs(p))
