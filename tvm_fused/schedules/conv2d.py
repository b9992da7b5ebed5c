"""int8 NHWC convolution kernels (regular, depthwise, pointwise) in TE + s_tir schedule.

Arithmetic follows TFLite's ``reference_integer_ops::ConvPerChannel``: padded taps
contribute nothing (as if the input held its zero point), then bias, per-channel
requantize, output zero point, clamp, cast -- in that order.

int32 bound: |x - zp_in| <= 255 and |w| <= 127, so one tap adds at most 32385;
the largest reduction we accept (KH*KW*C <= 65535 taps) stays below 2**31.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx

from .fixed_point import requantize_expr
from .common import finish_prim_func, MAX_REDUCTION


@dataclass(frozen=True)
class Conv2DParams:
    """Static shape and quantization parameters of one int8 conv (NHWC)."""

    in_shape: tuple  # (N, H, W, C)
    out_channels: int
    kernel: tuple  # (KH, KW)
    strides: tuple  # (SH, SW)
    padding: tuple  # (top, left, bottom, right)
    depthwise: bool
    in_zp: int
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    @property
    def out_shape(self) -> tuple:
        n, h, w, _ = self.in_shape
        kh, kw = self.kernel
        sh, sw = self.strides
        pt, pl, pb, pr = self.padding
        return (n, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, self.out_channels)

    @property
    def weight_shape(self) -> tuple:
        kh, kw = self.kernel
        c = self.in_shape[3]
        return (kh, kw, c) if self.depthwise else (kh, kw, c, self.out_channels)

    @property
    def macs(self) -> int:
        n, oh, ow, oc = self.out_shape
        kh, kw = self.kernel
        per_out = kh * kw * (1 if self.depthwise else self.in_shape[3])
        return n * oh * ow * oc * per_out


def conv2d_nhwc_int8(p: Conv2DParams, name: str = "conv2d"):
    """PrimFunc(data, weight, bias, multiplier, shift, out); weight is HWIO (HWC if depthwise)."""
    n, h, w, c = p.in_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl, _, _ = p.padding
    oc = p.out_channels
    if p.depthwise and oc != c:
        raise ValueError("depthwise conv with a channel multiplier != 1 is not supported")
    taps = kh * kw * (1 if p.depthwise else c)
    if taps > MAX_REDUCTION:
        raise ValueError(f"reduction of {taps} taps could overflow the int32 accumulator")

    data = te.placeholder(p.in_shape, "int8", name="data")
    weight = te.placeholder(p.weight_shape, "int8", name="weight")
    bias = te.placeholder((oc,), "int32", name="bias")
    mult = te.placeholder((oc,), "int32", name="multiplier")
    shift = te.placeholder((oc,), "int32", name="shift")

    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")

    def tap(b, y, x, ch):
        iy = y * sh + ry - pt
        ix = x * sw + rx - pl
        inside = tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)
        return tirx.if_then_else(inside, data[b, iy, ix, ch].astype("int32") - p.in_zp, 0)

    if p.depthwise:
        acc = te.compute(
            p.out_shape,
            lambda b, y, x, o: te.sum(tap(b, y, x, o) * weight[ry, rx, o].astype("int32"), axis=[ry, rx]),
            name="acc",
        )
    else:
        rc = te.reduce_axis((0, c), name="rc")
        acc = te.compute(
            p.out_shape,
            lambda b, y, x, o: te.sum(tap(b, y, x, rc) * weight[ry, rx, rc, o].astype("int32"), axis=[ry, rx, rc]),
            name="acc",
        )
    out = te.compute(
        p.out_shape,
        lambda b, y, x, o: requantize_output(acc[b, y, x, o] + bias[o], mult[o], shift[o], p.out_zp, p.act_min, p.act_max),
        name="out",
    )
    func = te.create_prim_func([data, weight, bias, mult, shift, out])
    return finish_prim_func(func, name, accumulate_into="out")


def requantize_output(acc, multiplier, shift, out_zp, act_min, act_max):
    """Requantize, add the output zero point, clamp, cast: TFLite's fixed finishing order."""
    y = requantize_expr(acc, multiplier, shift) + out_zp
    return tirx.max(tirx.min(y, act_max), act_min).astype("int8")
