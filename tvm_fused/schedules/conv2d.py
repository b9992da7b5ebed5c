"""int8 NHWC convolution kernels (regular, depthwise, pointwise) built from the DSP micro-kernels.

Arithmetic follows TFLite's ``reference_integer_ops::ConvPerChannel``: padded taps
contribute nothing (as if the input held its zero point), then bias, per-channel
requantize, output zero point, clamp, cast -- in that order.

int32 bound: |x - zp_in| <= 255 and |w| <= 127, so one tap adds at most 32385;
the largest reduction we accept (KH*KW*C <= 65535 taps) stays below 2**31.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from . import dsp
from .common import MAX_REDUCTION, hand_written
from .config import DepthwiseConfig, GemmConfig, chosen
from .depthwise import DepthwiseTask
from .gemm import GemmTask, Operand, conv_row
from .weight_layout import conv_constants, pack_conv


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


def conv2d_int8(p: Conv2DParams, weight, bias, mult, shift, config=None, name: str = "conv2d"):
    """Fast kernel + its constants: ``(PrimFunc(data, w8, [w32,] table, out), [w8, [w32,] table])``
    (``w32`` only for depthwise).

    ``weight`` is HWIO (HWC if depthwise) int8; the constants come out in the layout the
    micro-kernel reads (``weight_layout.pack_conv``). ``config``: GemmConfig (regular conv) or
    DepthwiseConfig; None = the defaults."""
    consts = pack_conv(p, weight, bias, mult, shift)
    return conv2d_kernel(p, config, name), consts


def default_config(p: Conv2DParams):
    return chosen(p) or (DepthwiseConfig() if p.depthwise else GemmConfig())


def check_conv(p: Conv2DParams):
    n, h, w, c = p.in_shape
    if p.depthwise and p.out_channels != c:
        raise ValueError("depthwise conv with a channel multiplier != 1 is not supported")
    kh, kw = p.kernel
    taps = kh * kw * (1 if p.depthwise else c)
    if taps > MAX_REDUCTION:
        raise ValueError(f"reduction of {taps} taps could overflow the int32 accumulator")


def conv_task(p: Conv2DParams, x, w8, w32, table, out, acc, config=None):
    """The micro-kernel task of one conv layer over the given operands."""
    config = config or default_config(p)
    if p.depthwise:
        return DepthwiseTask(p, x, w8, w32, table, out, acc, config)
    kh, kw = p.kernel
    c = p.in_shape[3]
    return GemmTask(x, w8, table, out, p.out_channels, kh, kw * c, p.out_zp, p.act_min, p.act_max, acc, config)


def acc_words(p: Conv2DParams, config=None) -> int:
    config = config or default_config(p)
    if p.depthwise:
        return 4 * max(1, config.unroll_groups) * max(1, config.pixel_block)
    return max(1, config.pixel_block * config.channel_block)


def is_pointwise(p: Conv2DParams) -> bool:
    """1x1, stride 1, no padding: the whole tensor is one GEMM over its pixels."""
    return not p.depthwise and p.kernel == (1, 1) and p.strides == (1, 1) and not any(p.padding)


def conv_rows(p: Conv2DParams, task, y, in_base, out_base):
    """Emit output row ``y`` of one image whose input starts at ``in_base``."""
    n, h, w, c = p.in_shape
    _, oh, ow, oc = p.out_shape
    kh, _ = p.kernel
    sh, pt = p.strides[0], p.padding[0]

    def row_base(ky):
        return in_base + (y * sh - pt + ky) * (w * c)

    row_ok = None
    if p.padding[0] > 0 or p.padding[2] > 0:
        row_ok = (lambda ky: tirx.all(y * sh - pt + ky >= 0, y * sh - pt + ky < h))
    if p.depthwise:
        task.row(row_base, row_ok, out_base + y * (ow * oc), w, ow)
    else:
        conv_row(task, p, row_base, row_ok, out_base + y * (ow * oc), w, ow)


def conv2d_kernel(p: Conv2DParams, config=None, name: str = "conv2d"):
    """PrimFunc(data, *constants, out) for the constants ``weight_layout.conv_constants(p)`` names,
    laid out by ``weight_layout.pack_conv``."""
    check_conv(p)
    n, h, w, c = p.in_shape
    _, oh, ow, oc = p.out_shape
    kh, kw = p.kernel
    sizes = {"w8": kh * kw * c * (1 if p.depthwise else oc), "w32": (c // 4) * kh * kw * 2, "table": 3 * oc}
    dtypes = {"w8": "int8", "w32": "int32", "table": "int32"}
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            data = T.arg("data", T.buffer(tuple(p.in_shape), "int8"))
            consts = {name: T.arg(name, T.buffer((sizes[name],), dtypes[name])) for name in conv_constants(p)}
            out = T.arg("out", T.buffer(tuple(p.out_shape), "int8"))
            acc = T.alloc_buffer((acc_words(p, config),), "int32")
            x_flat = T.decl_buffer((n * h * w * c,), "int8", data=data.data)
            y_flat = T.decl_buffer((n * oh * ow * oc,), "int8", data=out.data)
            ops = {name: Operand(buf) for name, buf in consts.items()}
            task = conv_task(p, Operand(x_flat), ops.get("w8"), ops.get("w32"), ops["table"], Operand(y_flat),
                             acc, config)
            if is_pointwise(p) and not getattr(task.cfg, "channels_outer", False):
                task.pixels(lambda i, s: i * c, lambda i: i * oc, n * h * w)
            elif is_pointwise(p):
                # channel blocks outer within each row, not across the tensor: the output is still
                # written in row order, which the planner's in-place aliases rely on (passes/inplace.py)
                with T.serial(0, n * h) as r:
                    task.pixels(lambda i, s: (r * w + i) * c, lambda i: (r * w + i) * oc, w)
            else:
                with T.serial(0, n) as b:
                    with T.serial(0, oh) as y:
                        conv_rows(p, task, y, b * (h * w * c), b * (oh * ow * oc))
    return hand_written(ib.get())


def requantize_output(acc, multiplier, shift, out_zp, act_min, act_max):
    """Requantize, add the output zero point, clamp, cast: TFLite's fixed finishing order."""
    y = dsp.requantize(acc, multiplier, shift) + out_zp
    return tirx.max(tirx.min(y, act_max), act_min).astype("int8")
