"""Data movement: CONCATENATION, TRANSPOSE, STRIDED_SLICE / SLICE, SPLIT, RESIZE_NEAREST_NEIGHBOR
(and ONNX Concat, Transpose, Slice, Split, Resize) -> ``schedules.layout`` kernels.

They reach the legalizer in two forms:

* int8 directly (TFLite: TVM's converter applies the Relax op to the int8 tensor, in and out
  quantization equal, as TFLite requires): ``int8``-domain rules;
* QDQ (ONNX; TFLite CONCATENATION): ``quantize(op(dequantize(x)))``. The op only moves values,
  so it commutes with the requantization: the kernel runs at x's quantization and one
  requantize follows if the output's differs (concatenation requantizes each input instead).

Layouts: a 4-D tensor imported as NCHW (ONNX) is stored NHWC, so the model's axes and
permutations are mapped onto the stored layout (``stored_axes``).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import tvm
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules.layout import (ConcatParams, ResizeNearestParams, SliceParams, TransposeParams, concat_int8,
                                 resize_nearest_int8, slice_int8, tflite_nearest_index, transpose_int8)
from .core import Match, OutputQuant, QTensor
from .registry import register_rule


# ---------------------------------------------------------------------- shared helpers
def stored_axes(layout: str, rank: int) -> list[int]:
    """Permutation L with stored = source.transpose(L): NCHW 4-D tensors are stored NHWC."""
    return [0, 2, 3, 1] if rank == 4 and layout == "NCHW" else list(range(rank))


def _compose(a, b):
    """x.transpose(a).transpose(b) == x.transpose(_compose(a, b))."""
    return [a[i] for i in b]


def _inverse(p):
    inv = [0] * len(p)
    for i, v in enumerate(p):
        inv[v] = i
    return inv


def _int(v) -> int:
    while hasattr(v, "value"):  # PrimValue -> IntImm -> int
        v = v.value
    return int(v)


def _ints(expr) -> list[int]:
    if isinstance(expr, relax.Tuple):
        return [_int(f) for f in expr.fields]
    if isinstance(expr, relax.ShapeExpr):
        return [int(v) for v in expr.values]
    if isinstance(expr, (list, tuple, tvm.ir.Array)):
        return [_int(v) for v in expr]
    raise UnsupportedModelError(f"expected constant integers, got {type(expr).__name__}")


def int8_out(ctx, m: Match):
    """An int8-domain op's input tensor and its output clamp (a TFLite fused activation, if any);
    (None, None) when the op reads a float value (the QDQ form: its quantize-domain rule lowers it)."""
    data = ctx.int8(m.call.args[0])
    if data is None:
        return None, None
    clip = ctx.take_int_clip(m.var)
    return data, (max(-128, clip[0]), min(127, clip[1])) if clip else (-128, 127)


def clamped(ctx, tensor: QTensor, act) -> QTensor:
    """``tensor`` clamped to ``act`` (the int8 clip an int8-domain rule took over from ``int8_out``)."""
    lo, hi = act
    if (lo, hi) == (-128, 127):
        return tensor
    return requantize_to(ctx, tensor, OutputQuant(tensor.scale, tensor.zero_point, lo, hi, ()))


def qdq_in(ctx, m: Match) -> QTensor:
    return ctx.input(m.call.args[0], m.op.split(".")[-1])


def requantize_to(ctx, tensor: QTensor, out: OutputQuant) -> QTensor:
    """``tensor`` (same element order) with ``out``'s quantization and clamp: itself if they agree."""
    from .requantize import emit_requantize

    same = math.isclose(tensor.scale, out.scale, rel_tol=1e-6) and tensor.zero_point == out.zero_point
    if same and (out.act_min, out.act_max) == (-128, 127):
        return tensor
    layout = tensor.src_layout if len(tensor.shape) == 4 else ""
    src_shape = tuple(tensor.shape[i] for i in _inverse(stored_axes(layout, len(tensor.shape))))
    return emit_requantize(ctx, tensor, replace(out, src_shape=src_shape))


def to_source_order(ctx, data: QTensor) -> QTensor:
    """An NCHW-imported 4-D tensor (stored NHWC) transposed back to NCHW, layout "" (the model's
    element order), so that a reshape/flatten of it means what the model means."""
    p = TransposeParams(data.shape, tuple(_inverse(stored_axes(data.src_layout, 4))))
    return ctx.emit("transpose", transpose_int8(p), [data.var], p.out_shape, data.scale, data.zero_point, "", p,
                    macs=0)


def to_stored_order(ctx, data: QTensor, layout: str) -> QTensor:
    """A 4-D tensor in the model's element order (layout "") transposed to how tensors of source
    ``layout`` are stored (NHWC): the inverse of ``to_source_order``."""
    p = TransposeParams(data.shape, tuple(stored_axes(layout, 4)))
    return ctx.emit("transpose", transpose_int8(p), [data.var], p.out_shape, data.scale, data.zero_point, layout, p,
                    macs=0)


# ---------------------------------------------------------------------- concatenation
@register_rule(
    "relax.concat",
    tflite={"CONCATENATION": "any axis; inputs quantized differently are requantized (as the converter's QUANTIZE)"},
    onnx={"Concat": "any axis; inputs quantized differently are requantized"},
)
def concat(ctx, m: Match) -> QTensor:
    """``quantize(concat(dequantize(x_0), ..., dequantize(x_k)))``: each input copied into its slice
    of the output, or requantized as TFLite's int8 QUANTIZE does when its quantization differs::

        y = x_i                                                          (same quantization)
        y = clamp(MBQM(x_i - z_i, QuantizeMultiplier(s_i / s_out)) + z_out, act_min, act_max)

    Before::

        y = R.quantize(R.concat((R.dequantize(a, sa, za), R.dequantize(b, sb, zb)), axis=3), s, z)

    After::

        y = R.call_tir(concat, (a, b), R.Tensor((1, H, W, Ca + Cb), "int8"))
    """
    tup = m.call.args[0]
    fields = tup.fields if isinstance(tup, relax.Tuple) else None
    if fields is None:
        raise UnsupportedModelError(f"{m.layer}: concat of a non-literal tuple is not supported")
    inputs = [ctx.input(f, "concat") for f in fields]
    rank = len(inputs[0].shape)
    layouts = {t.src_layout for t in inputs}
    if len(layouts) != 1:
        raise UnsupportedModelError(f"{m.layer}: concat of tensors with different layouts {sorted(layouts)}")
    axis = stored_axes(inputs[0].src_layout, rank).index(int(m.call.attrs.axis) % rank)
    out = m.out
    p = ConcatParams(tuple(t.shape for t in inputs), axis, tuple(t.scale for t in inputs),
                     tuple(t.zero_point for t in inputs), out.scale, out.zero_point, out.act_min, out.act_max)
    return ctx.emit("concat", concat_int8(p), [t.var for t in inputs], p.out_shape, out.scale, out.zero_point,
                    inputs[0].src_layout, p, macs=0)


# ---------------------------------------------------------------------- transpose
def _transpose(ctx, call, data: QTensor) -> QTensor:
    rank = len(data.shape)
    axes = [int(a) for a in call.attrs.axes] if call.attrs.axes is not None else list(reversed(range(rank)))
    # stored_out = stored_in.transpose(inv(L_in) . P . L_out); the output keeps the input's layout
    # unless plain model order ("") makes the kernel a copy (NCHW -> NHWC transposes)
    layouts = [data.src_layout, ""] if rank == 4 and data.src_layout else [""]
    perms = [_compose(_compose(_inverse(stored_axes(data.src_layout, rank)), axes), stored_axes(lay, rank))
             for lay in layouts]
    pick = next((i for i, perm in enumerate(perms) if perm == list(range(rank))), 0)
    if perms[pick] == list(range(rank)):  # the stored bytes already are the result: relabel
        return replace(data, src_layout=layouts[pick])
    p = TransposeParams(data.shape, tuple(perms[pick]))
    return ctx.emit("transpose", transpose_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                    layouts[pick], p, macs=0)


@register_rule("relax.permute_dims", domain="int8", tflite={"TRANSPOSE": "any permutation"})
def transpose_int8_rule(ctx, m: Match) -> QTensor | None:
    """TFLite TRANSPOSE on the int8 tensor (``reference_ops::Transpose``)::

        y[i_0, ..., i_n] = x[i_{q_0}, ..., i_{q_n}]   q = inverse(perm),  i.e. y.shape[k] = x.shape[perm[k]]

    (same int8 values and quantization).

    Before::

        y = R.permute_dims(x, axes=[0, 3, 1, 2])     # x: int8

    After::

        y = R.call_tir(transpose, (x,), R.Tensor((1, C, H, W), "int8"))
    """
    data, act = int8_out(ctx, m)
    return None if data is None else clamped(ctx, _transpose(ctx, m.call, data), act)


@register_rule("relax.permute_dims", onnx={"Transpose": "any permutation (also of constant weights)"})
def transpose(ctx, m: Match) -> QTensor:
    """``quantize(permute_dims(dequantize(x)))`` -> a transpose (requantized if needed)::

        y[i_0, ..., i_n] = x[i_{q_0}, ..., i_{q_n}]   q = inverse(perm)          (same quantization)
        y = clamp(MBQM(x[...] - x_zp, M, s) + y_zp)   otherwise, M * 2^s = x_scale / y_scale

    mapped onto the stored NHWC order; if the stored bytes already are the result, no kernel.

    Before::

        y = R.quantize(R.permute_dims(R.dequantize(x, s, z), axes=[0, 2, 3, 1]), s, z)

    After::

        y = x      # x imported as NCHW is stored NHWC, which already is the result: no kernel
    """
    return requantize_to(ctx, _transpose(ctx, m.call, qdq_in(ctx, m)), m.out)


# ---------------------------------------------------------------------- strided slice, split
def _slice(ctx, m: Match, data: QTensor) -> QTensor:
    call = m.call
    rank = len(data.shape)
    if len(call.args) < 4:
        raise UnsupportedModelError(f"{m.layer}: strided_slice without constant bounds")
    axes, begin, end = (_ints(a) for a in call.args[1:4])
    strides = _ints(call.args[4]) if len(call.args) > 4 else [1] * len(axes)
    src_shape = [data.shape[i] for i in _inverse(stored_axes(data.src_layout, rank))]
    b, e, s = [0] * rank, list(src_shape), [1] * rank
    for a, bb, ee, ss in zip(axes, begin, end, strides):
        b[a % rank], e[a % rank], s[a % rank] = bb, ee, ss
    to_stored = stored_axes(data.src_layout, rank)
    p = SliceParams.from_bounds(data.shape, *([v[i] for i in to_stored] for v in (b, e, s)))
    return ctx.emit("strided_slice", slice_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                    data.src_layout, p, macs=0)


@register_rule("relax.strided_slice", domain="int8",
               tflite={"STRIDED_SLICE": "constant begin/end/strides; begin/end/shrink masks (no ellipsis/new axis)",
                       "SLICE": "constant begin/size"})
def strided_slice_int8(ctx, m: Match) -> QTensor | None:
    """TFLite STRIDED_SLICE / SLICE on the int8 tensor (masks resolved by TVM's importer)::

        y[i_0, ..., i_n] = x[b_0 + i_0 * s_0, ..., b_n + i_n * s_n],   0 <= i_k < len(range(d_k)[b_k:e_k:s_k])

    with numpy's ``x[b:e:s]`` semantics per axis (negative bounds count from the end, ``b_k``
    normalised to the first index taken; ``schedules.layout.SliceParams.from_bounds``).

    Before::

        y = R.strided_slice(x, axes=[0, 1, 2, 3], begin=[0, 0, 1, 0], end=[1, 4, 4, 4], strides=[1, 1, 2, 1])

    After::

        y = R.call_tir(strided_slice, (x,), R.Tensor((1, 4, 2, 4), "int8"))
    """
    data, act = int8_out(ctx, m)
    return None if data is None else clamped(ctx, _slice(ctx, m, data), act)


@register_rule("relax.strided_slice", onnx={"Slice": "constant starts/ends/axes/steps"})
def strided_slice(ctx, m: Match) -> QTensor:
    """``quantize(strided_slice(dequantize(x)))`` -> a strided slice (requantized if needed)::

        y[i_0, ..., i_n] = x[b_0 + i_0 * s_0, ..., b_n + i_n * s_n]          (same quantization)
        y = clamp(MBQM(x[...] - x_zp, M, s) + y_zp)   otherwise, M * 2^s = x_scale / y_scale

    Before::

        y = R.quantize(R.strided_slice(R.dequantize(x, s, z), axes=[2], begin=[1], end=[5], strides=[2]), s, z)

    After::

        y = R.call_tir(strided_slice, (x,), R.Tensor((1, 2, W, C), "int8"))
    """
    return requantize_to(ctx, _slice(ctx, m, qdq_in(ctx, m)), m.out)


def _split_part(ctx, m: Match, data: QTensor) -> QTensor:
    rank = len(data.shape)
    axis = stored_axes(data.src_layout, rank).index(int(m.call.attrs.axis) % rank)
    size = data.shape[axis]
    sections = m.call.attrs.indices_or_sections
    if hasattr(sections, "__len__"):
        bounds = [0, *[_int(v) for v in sections], size]
    else:
        n = _int(sections)
        bounds = [size * i // n for i in range(n + 1)]
    b, e = [0] * rank, list(data.shape)
    b[axis], e[axis] = bounds[m.index], bounds[m.index + 1]
    p = SliceParams.from_bounds(data.shape, b, e, [1] * rank)
    return ctx.emit("split", slice_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                    data.src_layout, p, macs=0)


@register_rule("relax.split", domain="int8", tflite={"SPLIT": "constant axis", "SPLIT_V": "constant sizes and axis"})
def split_int8(ctx, m: Match) -> QTensor | None:
    """TFLite SPLIT / SPLIT_V: each used output is one slice kernel (``Match.index``); the split
    binding itself returns None::

        y_k[..., i, ...] = x[..., start_k + i, ...]   along the split axis, 0 <= i < end_k - start_k
        start_k = k * D // n   (n equal sections of the axis extent D)  or  the given indices

    Before::

        p = R.split(x, indices_or_sections=2, axis=2); y = p[1]     # x: int8

    After::

        y = R.call_tir(split, (x,), R.Tensor((1, H, W / 2, C), "int8"))
    """
    data = ctx.int8(m.call.args[0])
    if m.index is None or data is None:
        return None
    return _split_part(ctx, m, data)


@register_rule("relax.split", onnx={"Split": "constant split sizes"})
def split(ctx, m: Match) -> QTensor:
    """``quantize(split(dequantize(x))[i])`` -> the i-th part as a slice kernel (requantized if needed)::

        y[..., j, ...] = x[..., start_i + j, ...]   along the split axis         (same quantization)
        y = clamp(MBQM(x[...] - x_zp, M, s) + y_zp)   otherwise, M * 2^s = x_scale / y_scale

    Before::

        p = R.split(R.dequantize(x, s, z), indices_or_sections=[2], axis=1); y = R.quantize(p[1], s, z)

    After::

        y = R.call_tir(split, (x,), R.Tensor((1, H, W, C - 2), "int8"))
    """
    if m.index is None:
        raise UnsupportedModelError(f"{m.layer}: split used as a whole")
    return requantize_to(ctx, _split_part(ctx, m, qdq_in(ctx, m)), m.out)


# ---------------------------------------------------------------------- nearest resize
def _resize(ctx, m: Match, data: QTensor) -> QTensor:
    attrs = m.call.attrs
    if str(attrs.method) != "nearest_neighbor":
        raise UnsupportedModelError(f"{m.layer}: resize method '{attrs.method}' is not supported (only nearest)")
    if len(data.shape) != 4 or str(attrs.layout) != (data.src_layout or "NCHW"):
        raise UnsupportedModelError(f"{m.layer}: resize2d layout {attrs.layout} differs from its input's")
    out_h, out_w = _ints(m.call.args[1])
    _, h, w, _ = data.shape
    mode, rounding = str(attrs.coordinate_transformation_mode), str(attrs.rounding_method)
    rows, cols = (nearest_index(o, i, mode, rounding, ctx.source_format == "tflite")
                  for o, i in ((out_h, h), (out_w, w)))
    p = ResizeNearestParams(data.shape, tuple(int(v) for v in rows), tuple(int(v) for v in cols))
    return ctx.emit("resize_nearest", resize_nearest_int8(p), [data.var], p.out_shape, data.scale,
                    data.zero_point, data.src_layout, p, macs=0)


@register_rule("relax.image.resize2d", domain="int8",
               tflite={"RESIZE_NEAREST_NEIGHBOR": "constant size; align_corners / half_pixel_centers as TFLite"})
def resize_nearest_int8_rule(ctx, m: Match) -> QTensor | None:
    """TFLite RESIZE_NEAREST_NEIGHBOR on the int8 tensor, with TFLite's ``GetNearestNeighbor`` maps
    (``schedules.layout.tflite_nearest_index``, float32 as the kernel computes them, fixed at
    compile time; TVM's importer gives align_corners as coordinate mode "align_corners",
    half_pixel_centers as "half_pixel", neither as "asymmetric")::

        y[n, i, j, c] = x[n, rows[i], cols[j], c]
        rows[i] = min(r((i + off) * scale), H - 1)   (cols: the same over W, W')
        scale   = float32(H - 1) / float32(H' - 1) if align_corners and H' > 1 else float32(H) / float32(H')
        r       = round_half_away if align_corners else floor,   off = 0.5 if half_pixel_centers else 0
        rows[i] = max(rows[i], 0) if half_pixel_centers

    e.g. H = 8 -> H' = 16, neither flag: scale = 0.5, rows = [0, 0, 1, 1, ..., 7, 7].

    Before::

        y = R.image.resize2d(x, R.shape([16, 16]), layout="NHWC", method="nearest_neighbor",
                             coordinate_transformation_mode="asymmetric")       # x: int8 (1, 8, 8, C)

    After::

        y = R.call_tir(resize_nearest, (x,), R.Tensor((1, 16, 16, C), "int8"))
    """
    data, act = int8_out(ctx, m)
    return None if data is None else clamped(ctx, _resize(ctx, m, data), act)


@register_rule("relax.image.resize2d",
               onnx={"Resize": "mode nearest; constant sizes/scales; any coordinate_transformation_mode and "
                               "nearest_mode"})
def resize_nearest(ctx, m: Match) -> QTensor:
    """``quantize(resize2d(dequantize(x), method="nearest_neighbor"))`` -> index-map copy (requantized if needed)::

        y[n, i, j, c] = x[n, rows[i], cols[j], c]     (then requantize_to y's quantization)
        rows[i] = clip(nearest_mode(x_src(i)), 0, H - 1)      (cols: the same over W, W'), float32
        x_src(i) = i / sc                          asymmetric,       sc = float32(H') / float32(H)
                 = (i + 0.5) / sc - 0.5            half_pixel (pytorch_half_pixel: 0 if H' == 1)
                 = i * (H - 1) / (H' - 1)          align_corners (0 if H' == 1)
                 = (i + 0.5) / sc                  tf_half_pixel_for_nn
        nearest_mode: round_prefer_floor (default) / round_prefer_ceil (ties to floor / ceil), floor, ceil

    Before::

        y = R.quantize(R.image.resize2d(R.dequantize(x, s, z), R.shape([16, 16]), method="nearest_neighbor"), s, z)

    After::

        y = R.call_tir(resize_nearest, (x,), R.Tensor((1, 16, 16, C), "int8"))      # NHWC
    """
    return requantize_to(ctx, _resize(ctx, m, qdq_in(ctx, m)), m.out)


def nearest_index(out_size, in_size, mode, rounding, tflite: bool) -> np.ndarray:
    """Source index of every output index of a nearest-neighbour resize.

    TFLite: its ``GetNearestNeighbor`` (TVM's importer maps align_corners -> "align_corners",
    half_pixel_centers -> "half_pixel"). ONNX: ``x_src = transform(x_dst)`` in float32, then
    ``nearest_mode`` (TVM's rounding_method), clamped to the input, as onnxruntime computes it.
    """
    if tflite:
        if mode not in ("asymmetric", "align_corners", "half_pixel"):
            raise UnsupportedModelError(f"TFLite resize with coordinate mode '{mode}'")
        return tflite_nearest_index(out_size, in_size, mode == "align_corners", mode == "half_pixel")
    f32 = np.float32
    i = np.arange(out_size, dtype=f32)
    scale = f32(out_size) / f32(in_size)
    if mode == "asymmetric":
        x = i / scale
    elif mode in ("half_pixel", "pytorch_half_pixel"):
        x = (i + f32(0.5)) / scale - f32(0.5)
        if mode == "pytorch_half_pixel" and out_size == 1:
            x = np.zeros_like(i)
    elif mode == "align_corners":
        x = i * f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else np.zeros_like(i)
    elif mode == "tf_half_pixel_for_nn":
        x = (i + f32(0.5)) / scale
    else:
        raise UnsupportedModelError(f"resize coordinate mode '{mode}' is not supported")
    frac_half = x - np.floor(x) == f32(0.5)
    rounding = rounding or "round_prefer_floor"
    if rounding == "round_prefer_floor":
        idx = np.where(frac_half, np.floor(x), np.round(x))
    elif rounding == "round_prefer_ceil":
        idx = np.where(frac_half, np.ceil(x), np.round(x))
    elif rounding == "floor":
        idx = np.floor(x)
    elif rounding == "ceil":
        idx = np.ceil(x)
    else:
        raise UnsupportedModelError(f"resize rounding '{rounding}' is not supported")
    return np.clip(idx, 0, in_size - 1).astype(np.int32)


def _declare_folded_shape_ops():
    from ...frontend import ops

    ops.declare(provider="tvm_fused.frontend.tflite_converter.TvmFusedTfliteConverter",
                tflite={"SHAPE": "static shapes: evaluated at import, as are STRIDED_SLICE, PACK, CONCATENATION, "
                                 "GATHER, CAST and int arithmetic on constants (shape-only subgraphs)",
                        "PACK": "of constants or folded shapes only (evaluated at import)"})


_declare_folded_shape_ops()
