"""int8 max pooling, NHWC, as TFLite's ``reference_integer_ops::MaxPool``.

For each output pixel and channel, over the taps of the window that fall inside
the input (padded taps are skipped, never compared)::

    y = clamp(max_{taps inside} x, act_min, act_max)

The kernel (``max_pool_int8``) takes 4 channels per 32-bit word: SSUB8 sets the GE flag of
each byte where the first operand is the larger, SEL picks per byte, so a tap costs a word
load and two instructions (``dsp.max_s8x4``); the activation clamp is a byte-wise max/min
with a word of 4 copies of the bound, and 4 byte stores (one unaligned STR after gcc's
store merging). Channels beyond the last multiple of 4 are scalar. ``max_pool_int8_te``
is the plain TE form of the same arithmetic (one channel at a time), kept as the
reference the tests compare with.

No requantization: TFLite requires equal input and output quantization (an ONNX
QDQ MaxPool whose output quantization differs is followed by a requantize; max
commutes with the monotone requantization, so the order does not matter).
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from . import dsp
from .common import finish_prim_func, hand_written
from .conv2d import Conv2DParams
from .pool import window_input
from .pool_window import channel_tail, output_pixels, span, tap_position, taps


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
    """PrimFunc(x, out): the DSP kernel (see the module doc)."""
    p.check()
    n, h, w, c = p.in_shape
    _, oh, ow, _ = p.out_shape
    kh, kw = p.kernel
    groups = c // 4
    lowest4 = dsp.s8x4_word(-128)

    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            data = T.arg("x", T.buffer(tuple(p.in_shape), "int8"))
            out = T.arg("out", T.buffer(tuple(p.out_shape), "int8"))
            # a root block: Relax's RewriteDataflowReshape inspects a kernel whose input and
            # output have the same size (a stride-1 pool) and requires one
            with T.sblock("root"):
                acc = T.alloc_buffer((1,), "int32")
                x = T.decl_buffer((n * h * w * c,), "int8", data=data.data)
                y_flat = T.decl_buffer((n * oh * ow * c,), "int8", data=out.data)

                def pixel(b, y, xx, rows_checked, cols_checked):
                    out_base = ((b * oh + y) * ow + xx) * c

                    def address(iy, ix):
                        return ((b * h + iy) * w + ix) * c

                    def group(g):
                        c0 = g * 4
                        # The running max lives in acc[0], not in bound locals: the LLVM rule uses
                        # its operands 4 times and TVM's simplifier substitutes bound locals, so a
                        # chain of locals would grow as 4^taps there. gcc keeps acc[0] in a register.
                        if kh * kw <= 16 and not (rows_checked or cols_checked):
                            # unrolled, all taps inside: start from the first tap
                            for t in range(kh * kw):
                                iy, ix, _ = tap_position(p, y, xx, t // kw, t % kw, False, False)
                                word = dsp.load_s8x4(x[address(iy, ix) + c0])
                                T.buffer_store(acc, word if t == 0 else dsp.max_s8x4(acc[0], word), [0])
                        else:
                            T.buffer_store(acc, tirx.const(lowest4, "int32"), [0])  # -128: max's identity

                            def visit(ky, kx):
                                iy, ix, ok = tap_position(p, y, xx, ky, kx, rows_checked, cols_checked)
                                if ok is False:
                                    return  # padded tap: skipped
                                word = dsp.load_s8x4(x[address(iy, ix) + c0])
                                if ok is not True:
                                    word = tirx.if_then_else(ok, word, tirx.const(lowest4, "int32"))
                                T.buffer_store(acc, dsp.max_s8x4(acc[0], word), [0])

                            taps(kh, kw, visit)
                        if p.act_min > -128:
                            T.buffer_store(acc, dsp.max_s8x4(acc[0], dsp.s8x4_word(p.act_min)), [0])
                        if p.act_max < 127:
                            T.buffer_store(acc, dsp.min_s8x4(acc[0], dsp.s8x4_word(p.act_max)), [0])
                        m = T.bind(acc[0])
                        for k in range(4):  # gcc merges the four byte stores into one STR
                            byte = m if k == 0 else tirx.shift_right(m, tirx.const(8 * k, "int32"))
                            T.buffer_store(y_flat, byte.astype("int8"), [out_base + c0 + k])

                    def finish(ch):
                        v = T.bind(acc[0])
                        if p.act_min > -128:
                            v = tirx.max(v, p.act_min)
                        if p.act_max < 127:
                            v = tirx.min(v, p.act_max)
                        T.buffer_store(y_flat, v.astype("int8"), [out_base + ch])

                    span(0, groups, group)  # the channel groups of 4
                    # acc[0] bound first: TVM's C codegen would reuse a stale temporary of ``acc[0]``
                    # for max's operand (see gemm.epilogue)
                    channel_tail(p, acc, x, address, y, xx, rows_checked, cols_checked, -128,
                                 lambda a, v: tirx.max(T.bind(a), v), finish)

                output_pixels(p, pixel)
    return hand_written(ib.get())


def max_pool_int8_te(p: MaxPoolParams, name: str = "max_pool"):
    """PrimFunc(x, out): TE, one channel at a time (the reference for the kernel above)."""
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
