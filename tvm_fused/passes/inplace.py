"""In-place reuse: where an op may write its output over an input that dies at that op.

Row model. A kernel walks its output in row order: output row ``y`` is written at
time ``write_time[y]`` (non-decreasing), and input row ``r`` is last read at time
``last_read[r]``. Times are output rows for a plain kernel, row steps for a fused
chain. With the output placed at ``offset(input) + delta``, the write of output row
``y`` covers bytes ``[delta + y*Ro, delta + (y+1)*Ro)`` of the input's coordinates;
it is safe iff no input row ``r`` with ``last_read[r] >= write_time[y]`` (still to be
read at or after that write) shares a byte with it::

    delta + (y+1)*Ro <= r_lo(y)*Ri   or   delta + y*Ro >= r_hi(y)*Ri + Ri

where ``[r_lo(y), r_hi(y)]`` spans the input rows still live at ``write_time[y]``.
We take the "output before the live input" family, ``delta <= min_y (r_lo(y)*Ri -
(y+1)*Ro)``, and among those the delta with the smallest footprint
``max(S_in, delta + S_out) - min(0, delta)``.

Unfused kernels get one row of slack (``last_read += 1``): a kernel that blocks two
output rows, or interleaves the tail of row ``y-1`` with row ``y``, stays safe.
Element-local ops (``out[i]`` reads only ``in[i]``: add of equal shapes, requantize,
reshape copy) write over their input at the same offset (``delta = 0``).

``check_alias`` re-derives the reads by enumerating every window tap and tests every
(output row, input row) pair at the planned distance: the proof the planner runs on
each alias it uses (``GreedyMemoryPlanner.check``) and the tests call directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

ALIGNMENT = 16
# Kernels whose output element i reads only input element i of an equal-shaped input.
ELEMENTWISE_KINDS = {"add", "requantize", "reshape"}
# Kernels with a (kh, stride, pad_top) row window that write output rows in order.
WINDOW_KINDS = {"conv2d", "conv2d_1x1", "depthwise_conv2d", "avg_pool2d", "max_pool2d"}
UNFUSED_SLACK_ROWS = 1


@dataclass(frozen=True)
class RowAccess:
    """How one op reads one input and writes its output, row by row (see module doc).

    ``elementwise``: out[i] depends on in[i] only (then only delta 0 is claimed).
    ``reads``: per time step, the (lo, hi) input rows read at that step (inclusive)."""

    in_rows: int
    in_row_bytes: int
    out_rows: int
    out_row_bytes: int
    write_time: tuple = ()
    reads: tuple = ()  # ((time, lo, hi), ...)
    slack: int = 0
    elementwise: bool = False

    @property
    def in_bytes(self) -> int:
        return self.in_rows * self.in_row_bytes

    @property
    def out_bytes(self) -> int:
        return self.out_rows * self.out_row_bytes


def _align_down(n: int, a: int = ALIGNMENT) -> int:
    return n // a * a


def _align(n: int, a: int = ALIGNMENT) -> int:
    return (n + a - 1) // a * a


def window_access(in_shape, out_shape, kh: int, stride: int, pad_top: int, slack: int = UNFUSED_SLACK_ROWS):
    """A row-ordered windowed kernel (conv, depthwise, pool): output row y reads input
    rows y*stride - pad_top .. + kh - 1 at time y."""
    _, hi, wi, ci = in_shape
    _, ho, wo, co = out_shape
    reads = tuple((y, max(0, y * stride - pad_top), min(hi - 1, y * stride - pad_top + kh - 1))
                  for y in range(ho))
    return RowAccess(hi, wi * ci, ho, wo * co, tuple(range(ho)), reads, slack)


def chain_access(in_shape, out_shape, first_window, out_row_step, steps: int):
    """A fused chain: at step s its first layer reads input rows s*stride - pad .. + kh - 1
    (before any later layer runs); output row y is written during step ``out_row_step[y]``."""
    kh, stride, pad = first_window
    _, hi, wi, ci = in_shape
    _, ho, wo, co = out_shape
    reads = tuple((s, max(0, s * stride - pad), min(hi - 1, s * stride - pad + kh - 1)) for s in range(steps))
    return RowAccess(hi, wi * ci, ho, wo * co, tuple(out_row_step), reads, 0)


def elementwise_access(shape):
    n = int(np.prod(shape))
    return RowAccess(1, n, 1, n, elementwise=True)


def _last_read(acc: RowAccess) -> np.ndarray:
    last = np.full(acc.in_rows, -(10 ** 9), dtype=np.int64)
    for t, lo, hi in acc.reads:
        if lo <= hi:
            last[lo:hi + 1] = np.maximum(last[lo:hi + 1], t + acc.slack)
    return last


def best_delta(acc: RowAccess):
    """(delta, saved bytes) of the smallest safe in-place footprint, or None if nothing saves."""
    s_in, s_out = _align(acc.in_bytes), _align(acc.out_bytes)
    if acc.elementwise:
        return (0, s_out) if acc.in_bytes == acc.out_bytes else None
    last = _last_read(acc)
    bound = None
    for y, t in enumerate(acc.write_time):
        live = np.nonzero(last >= t)[0]
        if live.size == 0:
            continue  # every input row is dead before this write
        b = int(live[0]) * acc.in_row_bytes - (y + 1) * acc.out_row_bytes
        bound = b if bound is None else min(bound, b)
    if bound is None:
        bound = s_in  # the input is dead before the first write: any placement works
    delta = min(_align_down(bound), _align_down(max(s_in - s_out, 0)))
    footprint = max(s_in, delta + s_out) - min(0, delta)
    saved = s_in + s_out - footprint
    return (delta, saved) if saved > 0 else None


def check_alias(acc: RowAccess, delta: int) -> None:
    """Prove an in-place placement safe by brute force over every (output row, input row)
    pair: raise AssertionError naming the first output row that would clobber a live input row."""
    if acc.elementwise:
        if delta != 0 or acc.in_bytes != acc.out_bytes:
            raise AssertionError(f"element-wise in-place needs delta 0 and equal sizes, got {delta}")
        return
    reads_at: dict[int, list] = {}
    for t, lo, hi in acc.reads:  # enumerate every row read, independent of best_delta's min/max
        for r in range(lo, hi + 1):
            reads_at.setdefault(r, []).append(t + acc.slack)
    for y, t in enumerate(acc.write_time):
        w_lo, w_hi = delta + y * acc.out_row_bytes, delta + (y + 1) * acc.out_row_bytes
        for r, times in reads_at.items():
            r_lo, r_hi = r * acc.in_row_bytes, (r + 1) * acc.in_row_bytes
            if w_lo < r_hi and r_lo < w_hi and any(tr >= t for tr in times):
                raise AssertionError(f"in-place write of output row {y} (time {t}) at delta {delta} "
                                     f"clobbers input row {r}, still read at time {max(times)}")


def op_access(kind: str, params_json: str | None, in_shape, out_shape):
    """The RowAccess of an op over its first input, or None when we claim nothing."""
    in_shape, out_shape = tuple(in_shape), tuple(out_shape)
    if kind in ELEMENTWISE_KINDS:
        return elementwise_access(out_shape) if int(np.prod(in_shape)) == int(np.prod(out_shape)) and \
            (kind != "add" or in_shape == out_shape) else None
    if params_json is None or len(in_shape) != 4 or len(out_shape) != 4 or in_shape[0] != 1:
        return None
    p = json.loads(params_json)
    if kind in WINDOW_KINDS and {"kernel", "strides", "padding"} <= p.keys():
        return window_access(in_shape, out_shape, int(p["kernel"][0]), int(p["strides"][0]), int(p["padding"][0]))
    if kind == "fused_chain" and "out_row_step" in p:
        return chain_access(in_shape, out_shape, p["first_window"], p["out_row_step"], int(p["steps"]))
    return None
