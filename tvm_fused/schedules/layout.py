"""int8 data-movement kernels: concatenation, transpose, strided slice (and split),
nearest-neighbour resize, constant pad. Any rank; shapes are static.

They move values without arithmetic, except concatenation, which requantizes an
input whose quantization differs from the output's with TFLite's int8 requantize
(``reference_ops::Requantize``, what the TFLite converter's QUANTIZE in front of a
concatenation computes)::

    y = clamp(MBQM(x - z_in, QuantizeMultiplier(s_in / s_out)) + z_out, -128, 127)

followed by the fused activation clamp, if any.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from .common import finish_prim_func
from .fixed_point import quantize_multiplier, requantize_expr


def _clamp(v, lo, hi):
    return tirx.max(tirx.min(v, hi), lo)


@dataclass(frozen=True)
class ConcatParams:
    """Concatenation of int8 tensors along ``axis`` (of the stored layout)."""

    in_shapes: tuple  # one shape per input
    axis: int
    in_scales: tuple
    in_zps: tuple
    out_scale: float
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    @property
    def out_shape(self) -> tuple:
        shape = list(self.in_shapes[0])
        shape[self.axis] = sum(s[self.axis] for s in self.in_shapes)
        return tuple(shape)

    def is_copy(self, i: int) -> bool:
        """Input i goes through unchanged (same quantization, no activation clamp)."""
        return (self.in_scales[i] == self.out_scale and self.in_zps[i] == self.out_zp
                and self.act_min == -128 and self.act_max == 127)


def concat_int8(p: ConcatParams, name: str = "concat"):
    """PrimFunc(x_0, ..., x_{k-1}, out)."""
    xs = [te.placeholder(s, "int8", name=f"x{i}") for i, s in enumerate(p.in_shapes)]
    starts = np.cumsum([0] + [s[p.axis] for s in p.in_shapes]).tolist()

    def value(i, idx):
        idx = list(idx)
        idx[p.axis] = idx[p.axis] - starts[i]
        v = xs[i][tuple(idx)]
        if p.is_copy(i):
            return v
        mult, shift = quantize_multiplier(p.in_scales[i] / p.out_scale)
        y = requantize_expr(v.astype("int32") - p.in_zps[i], mult, shift) + p.out_zp
        return _clamp(y, max(-128, p.act_min), min(127, p.act_max)).astype("int8")

    def body(*idx):
        result = value(len(xs) - 1, idx)
        for i in reversed(range(len(xs) - 1)):
            result = tirx.if_then_else(idx[p.axis] < starts[i + 1], value(i, idx), result)
        return result

    out = te.compute(p.out_shape, body, name="out")
    return finish_prim_func(te.create_prim_func([*xs, out]), name)


@dataclass(frozen=True)
class TransposeParams:
    """out = x.transpose(axes) (numpy semantics)."""

    in_shape: tuple
    axes: tuple

    @property
    def out_shape(self) -> tuple:
        return tuple(self.in_shape[a] for a in self.axes)


def transpose_int8(p: TransposeParams, name: str = "transpose"):
    """PrimFunc(x, out)."""
    x = te.placeholder(p.in_shape, "int8", name="x")

    def body(*idx):
        src = [None] * len(idx)
        for i, a in enumerate(p.axes):
            src[a] = idx[i]
        return x[tuple(src)]

    out = te.compute(p.out_shape, body, name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name)


@dataclass(frozen=True)
class SliceParams:
    """out[i] = x[begin + i * stride] per axis; begin normalized (0 <= begin < dim)."""

    in_shape: tuple
    begin: tuple
    strides: tuple
    out_shape: tuple

    @staticmethod
    def from_bounds(in_shape, begin, end, strides) -> "SliceParams":
        """numpy slice semantics (``x[b:e:s]`` per axis, negative b/e count from the end)."""
        b_norm, out = [], []
        for dim, b, e, s in zip(in_shape, begin, end, strides):
            rng = range(dim)[slice(int(b), int(e), int(s))]
            out.append(len(rng))
            b_norm.append(rng.start if len(rng) else 0)
        return SliceParams(tuple(in_shape), tuple(b_norm), tuple(int(s) for s in strides), tuple(out))


def slice_int8(p: SliceParams, name: str = "strided_slice"):
    """PrimFunc(x, out)."""
    if any(d == 0 for d in p.out_shape):
        raise ValueError(f"empty slice {p}")
    x = te.placeholder(p.in_shape, "int8", name="x")
    out = te.compute(p.out_shape, lambda *idx: x[tuple(b + i * s for i, b, s in zip(idx, p.begin, p.strides))],
                     name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name)


@dataclass(frozen=True)
class PadNdParams:
    """Constant padding of any axes; ``pads`` = ((before, after), ...) per axis."""

    in_shape: tuple
    pads: tuple
    pad_value: int

    @property
    def out_shape(self) -> tuple:
        return tuple(d + a + b for d, (a, b) in zip(self.in_shape, self.pads))


def pad_nd_int8(p: PadNdParams, name: str = "pad"):
    """PrimFunc(x, out)."""
    x = te.placeholder(p.in_shape, "int8", name="x")

    def body(*idx):
        src = [i - before for i, (before, _) in zip(idx, p.pads)]
        conds = [c for s, d, (before, after) in zip(src, p.in_shape, p.pads) if before or after
                 for c in (s >= 0, s < d)]
        if not conds:
            return x[tuple(src)]
        return tirx.if_then_else(tirx.all(*conds), x[tuple(src)], tirx.const(p.pad_value, "int8"))

    out = te.compute(p.out_shape, body, name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name)


def tflite_nearest_index(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite's ``GetNearestNeighbor`` for every output index, in float32 as the kernel does::

        scale = (in - 1) / (out - 1) if align_corners and out > 1 else in / out
        i_in  = min(round_half_away((i + off) * scale) if align_corners else floor((i + off) * scale), in - 1)
        i_in  = max(i_in, 0) if half_pixel_centers,   off = 0.5 if half_pixel_centers else 0
    """
    f32 = np.float32
    scale = f32(in_size - 1) / f32(out_size - 1) if align_corners and out_size > 1 else f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    pos = (np.arange(out_size, dtype=f32) + offset) * f32(scale)
    if align_corners:
        idx = (np.sign(pos) * np.floor(np.abs(pos) + f32(0.5))).astype(np.int64)
    else:
        idx = np.floor(pos).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    if half_pixel_centers:
        idx = np.maximum(idx, 0)
    return idx.astype(np.int32)


@dataclass(frozen=True)
class ResizeNearestParams:
    """Nearest-neighbour resize of (N, H, W, C): source row/column of each output one."""

    in_shape: tuple
    rows: tuple  # input row of each output row
    cols: tuple  # input column of each output column

    @property
    def out_shape(self) -> tuple:
        n, _, _, c = self.in_shape
        return (n, len(self.rows), len(self.cols), c)

    def _affine(self, table, size):
        """(num, den) with table[i] == (i * num) // den for every i, if such exist (integer upsampling)."""
        num, den = size, len(table)
        return (num, den) if all(v == (i * num) // den for i, v in enumerate(table)) else None


def resize_nearest_int8(p: ResizeNearestParams, name: str = "resize_nearest"):
    """PrimFunc(x, out): the index maps are computed here (float32, as TFLite) and written
    into the kernel as ``(i * in) // out`` when that equals them (the usual upsampling), else
    as a select chain over the distinct runs of the map."""
    x = te.placeholder(p.in_shape, "int8", name="x")
    _, h, w, _ = p.in_shape

    def index(i, table, size):
        affine = p._affine(table, size)
        if affine is not None:
            num, den = affine
            return tirx.floordiv(i * num, den)
        # runs of equal source indices: table is monotone, so a few comparisons suffice
        expr = tirx.const(int(table[-1]), "int32")
        for j in reversed(range(len(table) - 1)):
            if table[j] != table[j + 1]:
                expr = tirx.Select(i <= j, tirx.const(int(table[j]), "int32"), expr)
        return expr

    out = te.compute(p.out_shape, lambda b, y, xx, c: x[b, index(y, p.rows, h), index(xx, p.cols, w), c],
                     name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name)
