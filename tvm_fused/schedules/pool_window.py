"""Walking the output pixels and window taps of a pool kernel written with the IRBuilder.

Output rows/columns whose window lies entirely inside the input (``gemm.interior_columns``)
get tap bodies without bounds checks; border pixels (padding) check each tap, and a tap
known at compile time to fall outside is not emitted at all. Windows of at most
``UNROLL_TAPS`` taps are unrolled; larger ones (global pools) are loops over rows and
columns. ``chunk`` splits the taps into groups of at most that many taps with a ``flush``
after each group (the average pool's 16-bit lanes).
"""
from __future__ import annotations

from tvm import tirx
from tvm.tirx.script.builder import ir as T

from .gemm import interior_columns

UNROLL_TAPS = 16
UNROLL_COLUMNS = 8


def span(a: int, b: int, body):
    """``body(v)`` for v in [a, b): a Python int when there is one value, else a loop."""
    if b - a == 1:
        body(a)
    elif b > a:
        with T.serial(a, b) as v:
            body(v)


def output_pixels(p, emit):
    """``emit(b, y, xx, rows_checked, cols_checked)`` for every output pixel of ``p``
    (``in_shape``, ``out_shape``, ``kernel``, ``strides``, ``padding``)."""
    n, h, w, _ = p.in_shape
    _, oh, ow, _ = p.out_shape
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl = p.padding[0], p.padding[1]
    ylo, yhi = interior_columns(oh, h, kh, sh, pt)
    xlo, xhi = interior_columns(ow, w, kw, sw, pl)

    def interior_row(b, y):
        for a, e, checked in ((0, xlo, True), (xlo, xhi, False), (xhi, ow, True)):
            span(a, e, lambda xx, checked=checked: emit(b, y, xx, False, checked))

    def image(b):
        def row(y):
            if ylo == 0 and yhi == oh:
                interior_row(b, y)
                return
            if yhi <= ylo:  # no row is inside
                span(0, ow, lambda xx: emit(b, y, xx, True, True))
                return
            with T.If(tirx.all(y >= ylo, y < yhi)):
                with T.Then():
                    interior_row(b, y)
                with T.Else():
                    span(0, ow, lambda xx: emit(b, y, xx, True, True))

        span(0, oh, row)

    span(0, n, image)


def _columns(ky, a: int, b: int, visit, unroll: bool):
    if unroll or b - a <= UNROLL_COLUMNS:
        for kx in range(a, b):
            visit(ky, kx)
    else:
        with T.serial(a, b) as kx:
            visit(ky, kx)


def _rows(ky0, nrows: int, kw: int, visit, unroll: bool):
    if unroll:
        for r in range(nrows):
            _columns(ky0 + r, 0, kw, visit, True)
    else:
        span(0, nrows, lambda r: _columns(ky0 + r, 0, kw, visit, False))


def taps(kh: int, kw: int, visit, chunk: int | None = None, flush=None):
    """``visit(ky, kx)`` for every tap in row-major order. With ``chunk``, and more than
    ``chunk`` taps, ``flush()`` follows every run of at most ``chunk`` taps (the last included);
    with at most ``chunk`` taps ``flush`` is never called."""
    unroll = kh * kw <= UNROLL_TAPS
    if chunk is None or kh * kw <= chunk:
        _rows(0, kh, kw, visit, unroll)
        return
    if kw <= chunk:
        per = chunk // kw  # whole rows per run
        full, rest = divmod(kh, per)

        def run(kc):
            _rows(kc * per, per, kw, visit, False)
            flush()

        span(0, full, run)
        if rest:
            _rows(full * per, rest, kw, visit, False)
            flush()
        return

    def row(ky):
        for a in range(0, kw, chunk):
            _columns(ky, a, min(kw, a + chunk), visit, False)
            flush()

    span(0, kh, row)


def fold(cond):
    """True/False when ``cond`` is known at compile time (None = no condition = True)."""
    from .depthwise import _fold

    return _fold(cond)


def tap_position(p, y, xx, ky, kx, rows_checked: bool, cols_checked: bool):
    """(iy, ix, ok) of tap (ky, kx) of output pixel (y, xx): ok is True (inside), False
    (known outside: skip the tap) or a condition to test."""
    _, h, w, _ = p.in_shape
    sh, sw = p.strides
    iy = y * sh - p.padding[0] + ky
    ix = xx * sw - p.padding[1] + kx
    conds = []
    if rows_checked:
        conds += [iy >= 0, iy < h]
    if cols_checked:
        conds += [ix >= 0, ix < w]
    return iy, ix, fold(tirx.all(*conds) if conds else None)


def channel_tail(p, acc, x, address, y, xx, rows_checked: bool, cols_checked: bool, identity: int, combine,
                 finish):
    """The channels past the last group of 4, one at a time: ``acc[0]`` starts at ``identity``
    (which a padded tap also reads) and takes ``combine(acc[0], value)`` over the window's taps;
    then ``finish(ch)`` writes channel ``ch``."""
    c = p.in_shape[3]
    if c % 4 == 0:
        return
    with T.serial(c - c % 4, c) as ch:
        T.buffer_store(acc, tirx.const(identity, "int32"), [0])

        def visit(ky, kx):
            iy, ix, ok = tap_position(p, y, xx, ky, kx, rows_checked, cols_checked)
            if ok is False:
                return
            v = x[address(iy, ix) + ch].astype("int32")
            if ok is not True:
                v = tirx.if_then_else(ok, v, tirx.const(identity, "int32"))
            T.buffer_store(acc, combine(acc[0], v), [0])

        taps(*p.kernel, visit)
        finish(ch)
