"""int8 max pooling, NHWC, as TFLite's ``reference_integer_ops::MaxPool``.

For each output pixel and channel, over the taps of the window that fall inside
the input (padded taps are skipped, never compared)::

    y = clamp(max_{taps inside} x, act_min, act_max)

No requantization: TFLite requires equal input and output quantization (an ONNX
QDQ MaxPool whose output quantization differs is followed by a requantize; max
commutes with the monotone requantization, so the order does not matter).
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx

from .common import finish_prim_func
from .conv2d import Conv2DParams
from .pool import window_input


@dataclass(frozen=True)
class MaxPoolParams:
    """Max pool window over an (N, H, W, C) int8 tensor."""

    in_shape: tuple  # (N, H, W, C)
    kernel: tuple  # (KH, KW)
    strides: tuple  # (SH, SW)
    padding: tuple  # (top, left, bottom, right); padded taps are ignored
    act_min: int = -128
    act_max: int = 127

    @property
    def out_shape(self) -> tuple:
        c = self.in_shape[3]
        return Conv2DParams(self.in_shape, c, self.kernel, self.strides, self.padding, True, 0, 0).out_shape

    def check(self) -> None:
        pt, pl, pb, pr = self.padding
        kh, kw = self.kernel
        # every window must hold at least one real tap, or its max is undefined
        if pt >= kh or pb >= kh or pl >= kw or pr >= kw:
            raise ValueError(f"max pool padding {self.padding} is as large as the window {self.kernel}")


def max_pool_int8(p: MaxPoolParams, name: str = "max_pool"):
    """PrimFunc(x, out)."""
    p.check()
    _, h, w, _ = p.in_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl, _, _ = p.padding
    x, ry, rx = window_input(p)
    lowest = tirx.const(-128, "int8")

    def tap(b, y, xx, ch):
        iy, ix = y * sh + ry - pt, xx * sw + rx - pl
        if all(v == 0 for v in p.padding):
            return x[b, iy, ix, ch]
        inside = tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)
        # -128 is the identity of max over int8: a skipped tap changes nothing
        return tirx.if_then_else(inside, x[b, iy, ix, ch], lowest)

    acc = te.compute(p.out_shape, lambda b, y, xx, ch: te.max(tap(b, y, xx, ch), axis=[ry, rx]), name="acc")

    def finish(b, y, xx, ch):
        v = acc[b, y, xx, ch]
        if p.act_min > -128:
            v = tirx.max(v, tirx.const(p.act_min, "int8"))
        if p.act_max < 127:
            v = tirx.min(v, tirx.const(p.act_max, "int8"))
        return v

    out = te.compute(p.out_shape, finish, name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name, accumulate_into="out")
