"""GEMM micro-kernel for regular convolutions and fully connected layers (Cortex-M7 DSP).

A conv output row is a GEMM: pixels x output channels x taps, where each pixel's taps are
``KH`` segments of ``KW * C`` contiguous input bytes (NHWC), and each output channel's
weights are the same taps in the same order (OHWI, ``weight_layout.pack_conv``). One block of
``pixel_block`` x ``channel_block`` outputs keeps its accumulators in registers:

    for each 4-tap word k:   xa_i, xb_i = SXTB16(x_i[k]), SXTB16(x_i[k] ror 8)   (i < PB)
                             wa_j, wb_j = SXTB16(w_j[k]), SXTB16(w_j[k] ror 8)   (j < CB)
                             acc_ij = SMLAD(xb_i, wb_j, SMLAD(xa_i, wa_j, acc_ij))

SMLAD adds two 16x16 products, so each SMLAD is two MACs; leftover taps (segment length
not a multiple of 4) are scalar MACs. Accumulators start at the folded bias
(``b - z_in * sum w``), so taps use raw int8 inputs. The epilogue is TFLite's fixed
order: requantize, output zero point, clamp, cast.

int32 bound: as in the reference, |acc| <= |b| + 255 * 127 * taps for the real sum; the
folded form wraps modulo 2**32 in between and lands on the same value.

Padded taps (border pixels only) take the scalar path with the input zero point in
place of the missing input, which the folded bias cancels exactly.
"""
from __future__ import annotations

from tvm import tirx
from tvm.tirx.script.builder import ir as T

from . import dsp
from .config import GemmConfig


class Operand:
    """A constant or tensor region: ``buffer[base + i]``."""

    def __init__(self, buffer, base=0):
        self.buffer, self.base = buffer, base

    def __getitem__(self, i):
        return self.buffer[self.base + i]

    def store(self, value, i):
        T.buffer_store(self.buffer, value, [self.base + i])


def epilogue(acc, table: Operand, oc_total: int, o, out_zp: int, act_min: int, act_max: int):
    """int8 output from an int32 accumulator (bias already in): requantize, + zp, clamp, cast.

    The accumulator is first bound to a fresh local: TVM's C codegen reuses the temporary of
    an identical earlier expression text in an enclosing scope (for the min/max operands),
    which would read a stale ``acc[0]`` of another pixel."""
    acc = T.bind(acc)
    y = dsp.requantize(acc, table[oc_total + o], table[2 * oc_total + o]) + out_zp
    return tirx.max(tirx.min(y, act_max), act_min).astype("int8")


class GemmTask:
    """Shapes of one GEMM: ``segments`` x ``seg_len`` taps per pixel, ``oc`` output channels."""

    def __init__(self, x: Operand, w8: Operand, table: Operand, out: Operand, oc: int, segments: int,
                 seg_len: int, out_zp: int, act_min: int, act_max: int, acc, cfg: GemmConfig, finish=None):
        """``finish(acc, o)``: the int8 output of channel ``o`` from its accumulator (bias in);
        default ``epilogue`` (fixed-point requantization from ``table``)."""
        self.x, self.w8, self.table, self.out = x, w8, table, out
        self.finish = finish
        self.oc, self.segments, self.seg_len = oc, segments, seg_len
        self.taps = segments * seg_len
        self.out_zp, self.act_min, self.act_max = out_zp, act_min, act_max
        self.acc, self.cfg = acc, cfg

    def block(self, px_addr, out_addr, n_px: int, o0, n_oc: int):
        """Outputs of ``n_px`` pixels x channels ``o0 .. o0 + n_oc``.

        ``px_addr(i, s)``: input offset of pixel i's segment s; ``out_addr(i)``: output offset
        of pixel i's channel 0."""
        acc, x, w8, t = self.acc, self.x, self.w8, self.table
        for j in range(n_oc):
            bias = t[o0 + j]
            for i in range(n_px):
                T.buffer_store(acc, bias, [i * n_oc + j])
        words, rest = divmod(self.seg_len, 4)

        def word_step(s, k):
            xs = []
            for i in range(n_px):
                xw = T.bind(dsp.load_s8x4(x[px_addr(i, s) + k]))
                xs.append((T.bind(dsp.sxtb16(xw)), T.bind(dsp.sxtb16_ror8(xw))))
            for j in range(n_oc):
                ww = T.bind(dsp.load_s8x4(w8[(o0 + j) * self.taps + s * self.seg_len + k]))
                wa, wb = T.bind(dsp.sxtb16(ww)), T.bind(dsp.sxtb16_ror8(ww))
                for i, (xa, xb) in enumerate(xs):
                    a = i * n_oc + j
                    T.buffer_store(acc, dsp.smlad(xb, wb, dsp.smlad(xa, wa, acc[a])), [a])

        for s in range(self.segments):
            if words <= self.cfg.unroll_words:
                for kw in range(words):
                    word_step(s, 4 * kw)
            elif words:
                with T.serial(0, words) as kw:
                    word_step(s, kw * 4)
            for k in range(4 * words, self.seg_len):
                for j in range(n_oc):
                    wv = w8[(o0 + j) * self.taps + s * self.seg_len + k].astype("int32")
                    for i in range(n_px):
                        a = i * n_oc + j
                        T.buffer_store(acc, acc[a] + x[px_addr(i, s) + k].astype("int32") * wv, [a])
        for i in range(n_px):
            for j in range(n_oc):
                if self.finish is not None:
                    value = self.finish(acc[i * n_oc + j], o0 + j)
                else:
                    value = epilogue(acc[i * n_oc + j], t, self.oc, o0 + j, self.out_zp, self.act_min, self.act_max)
                self.out.store(value, out_addr(i) + o0 + j)

    def pixels(self, px_addr, out_addr, count: int, start=0):
        """All output channels of pixels ``start .. start + count`` (``count`` a Python int),
        in blocks of pixel_block x channel_block plus remainder blocks; pixel blocks outer
        (each input word block feeds every channel block), or with ``channels_outer`` channel
        blocks outer (each weight block feeds every pixel block)."""
        pb = max(1, min(self.cfg.pixel_block, count))
        cb = max(1, min(self.cfg.channel_block, self.oc))

        def pixel_blocks(body):
            _blocks(count, pb, lambda p0, n_px: body(start + p0, n_px))

        def channel_blocks(body):
            _blocks(self.oc, cb, body)

        def block(p0, n_px, o0, n_oc):
            self.block(lambda i, s: px_addr(p0 + i, s), lambda i: out_addr(p0 + i), n_px, o0, n_oc)

        if self.cfg.channels_outer and self.oc // cb > 1:
            # weight-stationary: each channel block's weights stay hot while all pixels pass
            channel_blocks(lambda o0, n_oc: pixel_blocks(lambda p0, n_px: block(p0, n_px, o0, n_oc)))
        else:
            pixel_blocks(lambda p0, n_px: channel_blocks(lambda o0, n_oc: block(p0, n_px, o0, n_oc)))


def _blocks(total: int, size: int, body):
    """``body(first, n)`` over ``total`` items in blocks of ``size``: the full blocks (a loop
    when there are several, inline when one), then the remainder block."""
    full, rest = divmod(total, size)
    if full == 1:
        body(0, size)
    elif full:
        with T.serial(0, full) as b:
            body(b * size, size)
    if rest:
        body(full * size, rest)


def conv_pixel_checked(task: GemmTask, p, row_base, row_ok, xx, in_w: int, out_addr):
    """All channels of output pixel ``xx`` with padding checks (border pixels)."""
    kh, kw = p.kernel
    c = p.in_shape[3]
    sw, pl = p.strides[1], p.padding[1]
    acc, t = task.acc, task.table
    with T.serial(0, task.oc) as o:
        T.buffer_store(acc, t[o], [0])
        for ky in range(kh):
            for kx in range(kw):
                ix = xx * sw - pl + kx
                ok = tirx.all(ix >= 0, ix < in_w)
                if row_ok is not None:
                    ok = tirx.all(row_ok(ky), ok)
                with T.serial(0, c) as ci:
                    xv = tirx.if_then_else(ok, task.x[row_base(ky) + ix * c + ci].astype("int32"),
                                           tirx.const(p.in_zp, "int32"))
                    wv = task.w8[o * task.taps + (ky * kw + kx) * c + ci].astype("int32")
                    T.buffer_store(acc, acc[0] + xv * wv, [0])
        task.out.store(epilogue(acc[0], t, task.oc, o, p.out_zp, p.act_min, p.act_max), out_addr + o)


def interior_columns(out_w: int, in_w: int, kw: int, sw: int, pl: int):
    """Output columns whose taps all lie inside the input: [lo, hi)."""
    lo = min(out_w, -(-pl // sw))
    hi = max(lo, min(out_w, (in_w - kw + pl) // sw + 1))
    return lo, hi


def conv_row(task: GemmTask, p, row_base, row_ok, out_base, in_w: int, out_w: int):
    """One output row of a regular conv. ``row_base(ky)``: offset of input row ``y*sh - pt + ky``;
    ``row_ok``: None when every kernel row is inside the input, else ``ky -> bool expr``."""
    kh, kw = p.kernel
    c = p.in_shape[3]
    sw, pl = p.strides[1], p.padding[1]
    oc = task.oc
    lo, hi = interior_columns(out_w, in_w, kw, sw, pl)

    def px_addr(i, s):
        return row_base(s) + (i * sw - pl) * c

    def checked(xx):
        conv_pixel_checked(task, p, row_base, row_ok, xx, in_w, out_base + xx * oc)

    def fast_row():
        for a, b in ((0, lo), (hi, out_w)):
            if b - a == 1:
                checked(a)
            elif b > a:
                with T.serial(a, b) as xx:
                    checked(xx)
        if hi > lo:
            task.pixels(px_addr, lambda i: out_base + i * oc, hi - lo, lo)

    if row_ok is None:
        fast_row()
        return
    inside = tirx.all(*[row_ok(ky) for ky in range(kh)])
    with T.If(inside):
        with T.Then():
            fast_row()
        with T.Else():
            with T.serial(0, out_w) as xx:
                checked(xx)
