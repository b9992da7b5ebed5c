"""int8 average pooling and spatial mean (global average pool), NHWC.

Average pool with equal input/output quantization follows TFLite's
``reference_integer_ops::AveragePool``: sum of the valid taps, divided by their
count rounding half away from zero, clamp. Otherwise (and for the spatial mean,
TFLite's ``reference_integer_ops::Mean``)::

    acc = sum(x - z_in);  acc = MBQM(acc, QuantizeMultiplier(s_in / s_out))
    acc = round_half_away(acc / count) + z_out;  clamp
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx

from .common import finish_prim_func
from .conv2d import Conv2DParams
from .fixed_point import quantize_multiplier, requantize_expr


@dataclass(frozen=True)
class PoolParams:
    """Average pool window; a spatial mean is the window covering the whole input."""

    in_shape: tuple  # (N, H, W, C)
    kernel: tuple
    strides: tuple
    padding: tuple  # (top, left, bottom, right); padded taps are not counted
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    act_min: int = -128
    act_max: int = 127
    # TFLite's MEAN folds 1/count into the multiplier (``tflite_mean_multiplier``)
    tflite_mean: bool = False

    @property
    def out_shape(self):
        c = self.in_shape[3]
        return Conv2DParams(self.in_shape, c, self.kernel, self.strides, self.padding, True, 0, 0).out_shape

    @property
    def same_quantization(self) -> bool:
        return self.in_scale == self.out_scale and self.in_zp == self.out_zp


def _divide_round_half_away(acc, count):
    """(acc +- count/2) / count with C's truncating division, as TFLite writes it."""
    half = tirx.floordiv(count, 2) if not isinstance(count, int) else count // 2
    total = tirx.Var("pool_sum", "int32")  # bound once: ``acc`` may hold Let definitions
    body = tirx.Select(total > 0, tirx.truncdiv(total + half, count), tirx.truncdiv(total - half, count))
    return tirx.Let(total, acc, body)


def window_input(p):
    """A pool's int8 input placeholder ``x`` and its window reduce axes ``ry``, ``rx``."""
    kh, kw = p.kernel
    x = te.placeholder(p.in_shape, "int8", name="x")
    return x, te.reduce_axis((0, kh), name="ry"), te.reduce_axis((0, kw), name="rx")


def avg_pool_int8(p: PoolParams, name: str = "avg_pool", flatten: bool = False):
    """PrimFunc(x, out); ``flatten`` gives a global pool an (N, C) output."""
    n, h, w, c = p.in_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl, _, _ = p.padding
    x, ry, rx = window_input(p)
    centre = 0 if p.same_quantization and not p.tflite_mean else p.in_zp

    def inside(y, xx):
        iy, ix = y * sh + ry - pt, xx * sw + rx - pl
        return tirx.all(iy >= 0, iy < h, ix >= 0, ix < w), iy, ix

    def tap(b, y, xx, ch):
        ok, iy, ix = inside(y, xx)
        return tirx.if_then_else(ok, x[b, iy, ix, ch].astype("int32") - centre, 0)

    acc = te.compute(p.out_shape, lambda b, y, xx, ch: te.sum(tap(b, y, xx, ch), axis=[ry, rx]), name="acc")

    def count(y, xx):
        # number of valid taps: product of the clipped window extents
        y0, x0 = y * sh - pt, xx * sw - pl
        cy = tirx.min(y0 + kh, h) - tirx.max(y0, 0)
        cx = tirx.min(x0 + kw, w) - tirx.max(x0, 0)
        return cy * cx

    unpadded = all(pad == 0 for pad in p.padding)  # then every window has kh * kw taps
    mult, shift = quantize_multiplier(p.in_scale / p.out_scale)

    def finish(b, y, xx, ch):
        cnt = kh * kw if unpadded else count(y, xx)
        a = acc[b, y, xx, ch]
        if p.tflite_mean:
            return _tflite_mean(a, kh * kw, p)
        if p.same_quantization:
            v = _divide_round_half_away(a, cnt)
        else:
            v = _divide_round_half_away(requantize_expr(a, mult, shift), cnt) + p.out_zp
        return tirx.max(tirx.min(v, p.act_max), p.act_min).astype("int8")

    if flatten:
        if p.out_shape[1:3] != (1, 1):
            raise ValueError("only a global pool can be flattened")
        out = te.compute((n, c), lambda b, ch: finish(b, 0, 0, ch), name="out")
    else:
        out = te.compute(p.out_shape, finish, name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name, accumulate_into="out")


def tflite_mean_multiplier(in_scale, out_scale, count):
    """TFLite MEAN's multiplier (reduce.cc, current): QuantizeMultiplier(s_in / s_out), then
    folded with 1/count: shift by floor(log2(count)) (at most 32 and 31 + shift) and divide."""
    mult, shift = quantize_multiplier(in_scale / out_scale)
    extra = min(int(count).bit_length() - 1, 32, 31 + shift)
    return (mult << extra) // count, shift - extra


def _tflite_mean(total, count, p: PoolParams):
    """y = MBQM(sum(x - z_in), M', s') + z_out, clamped: TFLite's integer MEAN."""
    mult, shift = tflite_mean_multiplier(p.in_scale, p.out_scale, count)
    y = requantize_expr(total, mult, shift) + p.out_zp
    return tirx.max(tirx.min(y, p.act_max), p.act_min).astype("int8")


def mean_params(in_shape, in_scale, in_zp, out_scale, out_zp) -> PoolParams:
    """A spatial mean (ONNX GlobalAveragePool, TFLite MEAN over H, W) as a pool."""
    _, h, w, _ = in_shape
    return PoolParams(tuple(in_shape), (h, w), (1, 1), (0, 0, 0, 0), in_scale, in_zp, out_scale, out_zp)
