"""Depthwise conv micro-kernel (Cortex-M7 DSP): 4 channels per input word.

Per output pixel and group of 4 channels, for every tap: one word of 4 input channels
is split by SXTB16 into the int16 pairs (c0, c2) and (c1, c3); the weights are stored
offline in the same pairs (``weight_layout.pack_depthwise_pairs``), so

    acc_c0 = SMLABB(x02, w02, acc_c0); acc_c2 = SMLATT(x02, w02, acc_c2)
    acc_c1 = SMLABB(x13, w13, acc_c1); acc_c3 = SMLATT(x13, w13, acc_c3)

Accumulators start at the folded bias ``b - z_in * sum_t w_t``; a padded tap reads the
word of four input zero points instead, which that fold cancels exactly (TFLite skips
padded taps; the sums agree). Channels beyond the last full group of 4 are scalar.
"""
from __future__ import annotations

from tvm.sym.analyzer import Analyzer
from tvm import tirx
from tvm.tirx.script.builder import ir as T

from . import dsp
from .config import DepthwiseConfig
from .gemm import Operand, epilogue, interior_columns


def _zp_word(zp: int) -> int:
    b = zp & 0xFF
    w = b | b << 8 | b << 16 | b << 24
    return w - (1 << 32) if w >= 1 << 31 else w


_ANALYZER = Analyzer()


def _fold(cond):
    """True/False when ``cond`` is known at compile time (None = no condition = True)."""
    if cond is None:
        return True
    folded = _ANALYZER.simplify(cond)
    if isinstance(folded, tirx.IntImm):
        return bool(folded.value)
    return cond


def _tap_valid(row_ok, check_cols: bool, ky, ix, in_w: int):
    """The condition for tap row ``ky`` at input column ``ix`` to lie inside the input, or
    None when nothing needs checking (``row_ok`` None: rows known inside)."""
    conds = []
    if row_ok is not None:
        conds.append(row_ok(ky))
    if check_cols:
        conds += [ix >= 0, ix < in_w]
    return tirx.all(*conds) if conds else None


class DepthwiseTask:
    def __init__(self, p, x: Operand, w8: Operand, w32: Operand, table: Operand, out: Operand, acc,
                 cfg: DepthwiseConfig):
        self.p, self.x, self.w8, self.w32, self.table, self.out = p, x, w8, w32, table, out
        self.acc, self.cfg = acc, cfg
        self.c = p.in_shape[3]
        self.groups = self.c // 4

    def pixel(self, row_base, row_ok, xx, in_w: int, out_addr, check_cols: bool):
        """All channels of output pixel ``xx``; ``row_ok`` None = rows known inside."""
        p, acc, t, c = self.p, self.acc, self.table, self.c
        kh, kw = p.kernel
        sw, pl = p.strides[1], p.padding[1]
        taps = kh * kw
        zp4 = tirx.const(_zp_word(p.in_zp), "int32")
        zp_pair = tirx.const((p.in_zp & 0xFFFF) | (p.in_zp << 16), "int32")

        def valid(ky, ix):
            return _tap_valid(row_ok, check_cols, ky, ix, in_w)

        def group(g, slot):
            c0, a0 = g * 4, slot * 4
            for k in range(4):
                T.buffer_store(acc, t[c0 + k], [a0 + k])
            for ky in range(kh):
                for kx in range(kw):
                    ix = xx * sw - pl + kx
                    ok = _fold(valid(ky, ix))
                    if ok is False:  # a padded tap known at compile time: both pairs are (zp, zp)
                        x02 = x13 = zp_pair
                    else:
                        word = dsp.load_s8x4(self.x[row_base(ky) + ix * c + c0])
                        # not bound to a local: TIR may fold the select to a constant later and
                        # leave an unused variable behind; gcc merges the two loads
                        xw = word if ok is True else tirx.if_then_else(ok, word, zp4)
                        x02, x13 = T.bind(dsp.sxtb16(xw)), T.bind(dsp.sxtb16_ror8(xw))
                    tap = ky * kw + kx
                    w02 = T.bind(self.w32[(g * taps + tap) * 2])
                    w13 = T.bind(self.w32[(g * taps + tap) * 2 + 1])
                    T.buffer_store(acc, dsp.smlabb(x02, w02, acc[a0]), [a0])
                    T.buffer_store(acc, dsp.smlatt(x02, w02, acc[a0 + 2]), [a0 + 2])
                    T.buffer_store(acc, dsp.smlabb(x13, w13, acc[a0 + 1]), [a0 + 1])
                    T.buffer_store(acc, dsp.smlatt(x13, w13, acc[a0 + 3]), [a0 + 3])
            for k in range(4):
                value = epilogue(acc[a0 + k], t, c, c0 + k, p.out_zp, p.act_min, p.act_max)
                self.out.store(value, out_addr + c0 + k)

        self._groups(group)
        if c % 4:
            self._tail_channels(row_base, row_ok, xx, in_w, out_addr, check_cols)

    def _groups(self, group):
        """``group(g, slot)`` for every channel group, ``unroll_groups`` per loop iteration."""
        unroll = max(1, min(self.cfg.unroll_groups, self.groups))
        full, rest = divmod(self.groups, unroll)
        if full == 1:
            for u in range(unroll):
                group(u, u)
        elif full:
            with T.serial(0, full) as gb:
                for u in range(unroll):
                    group(gb * unroll + u, u)
        for u in range(rest):
            group(full * unroll + u, u)

    def _tail_channels(self, row_base, row_ok, xx, in_w: int, out_addr, check_cols: bool):
        """Channels beyond the last full group of 4, scalar."""
        p, acc, t, c = self.p, self.acc, self.table, self.c
        kh, kw = p.kernel
        sw, pl = p.strides[1], p.padding[1]
        with T.serial(self.groups * 4, c) as ch:
            T.buffer_store(acc, t[ch], [0])
            for ky in range(kh):
                for kx in range(kw):
                    ix = xx * sw - pl + kx
                    ok = _fold(_tap_valid(row_ok, check_cols, ky, ix, in_w))
                    xv = tirx.const(p.in_zp, "int32")
                    if ok is not False:
                        xv_in = self.x[row_base(ky) + ix * c + ch].astype("int32")
                        xv = xv_in if ok is True else tirx.if_then_else(ok, xv_in, xv)
                    wv = self.w8[(ky * kw + kx) * c + ch].astype("int32")
                    T.buffer_store(acc, acc[0] + xv * wv, [0])
            self.out.store(epilogue(acc[0], t, c, ch, p.out_zp, p.act_min, p.act_max), out_addr + ch)

    def pixel_pair(self, row_base, xx, out_addr):
        """Output pixels ``xx`` and ``xx + 1``, every tap inside the input (interior columns, rows
        known inside). Each tap's weight pair is loaded once for both pixels, and with stride 1
        the input word a tap of pixel 1 reads is the next tap's of pixel 0: loaded and unpacked
        once. Eight accumulators per group (``pixel_block = 2``)."""
        p, acc, t, c = self.p, self.acc, self.table, self.c
        kh, kw = p.kernel
        sw, pl = p.strides[1], p.padding[1]
        taps = kh * kw

        def group(g, slot):
            c0, a0 = g * 4, slot * 8
            for j in range(2):
                for k in range(4):
                    T.buffer_store(acc, t[c0 + k], [a0 + 4 * j + k])
            for ky in range(kh):
                unpacked = {}
                for kx in range(kw):
                    tap = ky * kw + kx
                    w02 = T.bind(self.w32[(g * taps + tap) * 2])
                    w13 = T.bind(self.w32[(g * taps + tap) * 2 + 1])
                    for j in range(2):
                        off = j * sw + kx
                        if off not in unpacked:
                            xw = dsp.load_s8x4(self.x[row_base(ky) + (xx * sw - pl + off) * c + c0])
                            unpacked[off] = (T.bind(dsp.sxtb16(xw)), T.bind(dsp.sxtb16_ror8(xw)))
                        x02, x13 = unpacked[off]
                        a = a0 + 4 * j
                        T.buffer_store(acc, dsp.smlabb(x02, w02, acc[a]), [a])
                        T.buffer_store(acc, dsp.smlatt(x02, w02, acc[a + 2]), [a + 2])
                        T.buffer_store(acc, dsp.smlabb(x13, w13, acc[a + 1]), [a + 1])
                        T.buffer_store(acc, dsp.smlatt(x13, w13, acc[a + 3]), [a + 3])
            for j in range(2):
                for k in range(4):
                    value = epilogue(acc[a0 + 4 * j + k], t, c, c0 + k, p.out_zp, p.act_min, p.act_max)
                    self.out.store(value, out_addr + j * c + c0 + k)

        self._groups(group)
        if c % 4:
            for j in range(2):
                self._tail_channels(row_base, None, xx + j, 0, out_addr + j * c, False)

    def row(self, row_base, row_ok, out_base, in_w: int, out_w: int):
        """One output row (see gemm.conv_row for ``row_base``/``row_ok``)."""
        p, c = self.p, self.c
        kh, kw = p.kernel
        lo, hi = interior_columns(out_w, in_w, kw, p.strides[1], p.padding[1])

        def columns(rows_ok):
            for a, b, check in ((0, lo, True), (lo, hi, False), (hi, out_w, True)):
                if not check and rows_ok is None and self.cfg.pixel_block == 2 and b - a >= 2:
                    pairs = (b - a) // 2
                    if pairs == 1:
                        self.pixel_pair(row_base, a, out_base + a * c)
                    else:
                        with T.serial(0, pairs) as pi:
                            self.pixel_pair(row_base, a + 2 * pi, out_base + (a + 2 * pi) * c)
                    if (b - a) % 2:
                        self.pixel(row_base, None, b - 1, in_w, out_base + (b - 1) * c, False)
                    continue
                if b - a == 1:
                    self.pixel(row_base, rows_ok, a, in_w, out_base + a * c, check)
                elif b > a:
                    with T.serial(a, b) as xx:
                        self.pixel(row_base, rows_ok, xx, in_w, out_base + xx * c, check)

        if row_ok is None:
            columns(None)
            return
        with T.If(tirx.all(*[row_ok(ky) for ky in range(kh)])):
            with T.Then():
                columns(None)
            with T.Else():
                with T.serial(0, out_w) as xx:
                    self.pixel(row_base, row_ok, xx, in_w, out_base + xx * c, True)
