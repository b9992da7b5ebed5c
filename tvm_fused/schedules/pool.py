"""int8 average pooling and spatial mean (global average pool), NHWC.

Average pool with equal input/output quantization follows TFLite's
``reference_integer_ops::AveragePool``: sum of the valid taps, divided by their
count rounding half away from zero, clamp. Otherwise (and for the spatial mean,
TFLite's ``reference_integer_ops::Mean``)::

    acc = sum(x - z_in);  acc = MBQM(acc, QuantizeMultiplier(s_in / s_out))
    acc = round_half_away(acc / count) + z_out;  clamp

The kernel (``avg_pool_int8``) sums 4 channels per 32-bit input word with SXTAB16, which
adds bytes 0 and 2 (and, of the word rotated by 8, bytes 1 and 3) to two int16 lanes:
a word load and two instructions per tap for 4 channels. An int16 lane holds the sum of
at most ``LANE_TAPS`` = 255 int8 taps (|sum| <= 255 * 128 < 2^15); longer windows (global
pools) flush the lanes into int32 sums after every run of at most 255 taps. The int32 sum
of the raw inputs minus ``count * centre`` is exactly ``sum(x - centre)``, which then goes
through the same epilogue expressions as ``avg_pool_int8_te`` (the plain TE form, kept as
the reference the tests compare with). Padded taps are skipped (border pixels check each
tap; their count is the clipped window's). Channels beyond a multiple of 4 are scalar.
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from . import dsp
from .common import finish_prim_func, hand_written
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


LANE_TAPS = 255  # int8 taps an int16 lane of SXTAB16 sums without overflow


def avg_pool_int8(p: PoolParams, name: str = "avg_pool", flatten: bool = False):
    """PrimFunc(x, out); ``flatten`` gives a global pool an (N, C) output. The DSP kernel
    (see the module doc); same results as ``avg_pool_int8_te``."""
    from .pool_window import channel_tail, output_pixels, span, tap_position, taps

    n, h, w, c = p.in_shape
    _, oh, ow, _ = p.out_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl = p.padding[0], p.padding[1]
    if flatten and (oh, ow) != (1, 1):
        raise ValueError("only a global pool can be flattened")
    out_shape = (n, c) if flatten else tuple(p.out_shape)
    centre = 0 if p.same_quantization and not p.tflite_mean else p.in_zp
    mult, shift = quantize_multiplier(p.in_scale / p.out_scale)
    groups = c // 4
    many = kh * kw > LANE_TAPS  # the int16 lanes are flushed into int32 sums

    def finish(total, cnt, fin):
        """int8 output from sum(x - centre) over ``cnt`` taps: the TE kernel's epilogue
        expressions, each step stored to the local ``fin`` and read back (TVM's lowering
        rejects requantize_expr's Let variables nested in the division's Let here, and a
        bound expression would be inlined by CSE, leaving an unused C variable)."""

        def step(value):
            T.buffer_store(fin, value, [0])
            return T.bind(fin[0])

        if p.tflite_mean:
            m2, s2 = tflite_mean_multiplier(p.in_scale, p.out_scale, kh * kw)
            v = step(requantize_expr(total, m2, s2) + p.out_zp)
        elif p.same_quantization:
            v = step(_divide_round_half_away(total, cnt))
        else:
            v = step(_divide_round_half_away(step(requantize_expr(total, mult, shift)), cnt) + p.out_zp)
        return tirx.max(tirx.min(v, p.act_max), p.act_min).astype("int8")

    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            data = T.arg("x", T.buffer(tuple(p.in_shape), "int8"))
            out = T.arg("out", T.buffer(out_shape, "int8"))
            # [0]: lanes (c0, c2), [1]: lanes (c1, c3); [2 + k]: int32 sum of channel k
            # a root block: Relax's RewriteDataflowReshape inspects a kernel whose input and
            # output have the same size (a stride-1 pool) and requires one
            with T.sblock("root"):
                acc = T.alloc_buffer((6 if many else 2,), "int32")
                fin = T.alloc_buffer((1,), "int32")
                x = T.decl_buffer((n * h * w * c,), "int8", data=data.data)
                y_flat = T.decl_buffer((n * oh * ow * c,), "int8", data=out.data)

                def pixel(b, y, xx, rows_checked, cols_checked):
                    out_base = ((b * oh + y) * ow + xx) * c
                    if rows_checked or cols_checked:
                        # valid taps: the product of the clipped window extents (as TFLite)
                        y0, x0 = y * sh - pt, xx * sw - pl
                        cy = tirx.min(y0 + kh, h) - tirx.max(y0, 0) if rows_checked else kh
                        cx = tirx.min(x0 + kw, w) - tirx.max(x0, 0) if cols_checked else kw
                        cnt = cy * cx  # not bound: often folds to a constant (an unused C variable)
                    else:
                        cnt = kh * kw

                    def address(iy, ix):
                        return ((b * h + iy) * w + ix) * c

                    def store(total, ch):
                        total = T.bind(total if centre == 0 else total - cnt * centre)
                        T.buffer_store(y_flat, finish(total, cnt, fin), [out_base + ch])

                    def group(g):
                        c0 = g * 4
                        for i in range(6 if many else 2):
                            T.buffer_store(acc, tirx.const(0, "int32"), [i])

                        def visit(ky, kx):
                            iy, ix, ok = tap_position(p, y, xx, ky, kx, rows_checked, cols_checked)
                            if ok is False:
                                return  # padded tap: not counted
                            word = dsp.load_s8x4(x[address(iy, ix) + c0])
                            if ok is True:
                                word = T.bind(word)
                            else:
                                # not bound: TIR may fold the select to 0 later and leave an unused
                                # C variable behind (as in depthwise.py); gcc merges the two loads
                                word = tirx.if_then_else(ok, word, tirx.const(0, "int32"))
                            T.buffer_store(acc, dsp.sxtab16(acc[0], word), [0])
                            T.buffer_store(acc, dsp.sxtab16_ror8(acc[1], word), [1])

                        def flush():
                            a02, a13 = T.bind(acc[0]), T.bind(acc[1])
                            for k, lane in enumerate([dsp.lo16(a02), dsp.lo16(a13), dsp.hi16(a02), dsp.hi16(a13)]):
                                T.buffer_store(acc, T.bind(acc[2 + k]) + lane, [2 + k])
                            T.buffer_store(acc, tirx.const(0, "int32"), [0])
                            T.buffer_store(acc, tirx.const(0, "int32"), [1])

                        taps(kh, kw, visit, LANE_TAPS, flush)
                        if many:
                            sums = [acc[2 + k] for k in range(4)]
                        else:
                            a02, a13 = T.bind(acc[0]), T.bind(acc[1])
                            sums = [dsp.lo16(a02), dsp.lo16(a13), dsp.hi16(a02), dsp.hi16(a13)]
                        for k in range(4):
                            store(sums[k], c0 + k)

                    span(0, groups, group)  # the channel groups of 4
                    channel_tail(p, acc, x, address, y, xx, rows_checked, cols_checked, 0, lambda a, v: a + v,
                                 lambda ch: store(acc[0], ch))

                output_pixels(p, pixel)
    return hand_written(ib.get())


def avg_pool_int8_te(p: PoolParams, name: str = "avg_pool", flatten: bool = False):
    """PrimFunc(x, out); ``flatten`` gives a global pool an (N, C) output. TE, one channel
    at a time (the reference for ``avg_pool_int8``)."""
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
