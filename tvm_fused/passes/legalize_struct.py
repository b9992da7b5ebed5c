"""Legalization of data-movement ops: max pool, concatenation, nearest resize, pad,
transpose, strided slice, split, reshape family.

They reach the legalizer in two forms:

* int8 directly (TFLite: TVM's converter applies the Relax op to the int8 tensor;
  input and output quantization are equal, as TFLite requires)::

      y = R.nn.max_pool2d(x_int8)              ->  y = call_tir(max_pool, x)

* QDQ (ONNX, and TFLite CONCATENATION)::

      y = R.quantize(op(R.dequantize(x)))      ->  y = call_tir(op_int8, x) [-> requantize]

  The op moves or compares values, so it commutes with the (monotone) requantization:
  the int8 kernel runs on the input's quantization and, if the output's differs, one
  requantize follows (concatenation requantizes each input that differs instead).

Layouts: a 4-D tensor imported as NCHW (ONNX) is stored NHWC; axes and permutations of
the source model are mapped onto the stored layout here (``stored_axes``).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from ..schedules.layout import (
    ConcatParams,
    PadNdParams,
    ResizeNearestParams,
    SliceParams,
    TransposeParams,
    concat_int8,
    pad_nd_int8,
    resize_nearest_int8,
    slice_int8,
    tflite_nearest_index,
    transpose_int8,
)
from ..schedules.pool_max import MaxPoolParams, max_pool_int8
from .quant_graph import op_name

# ops lowered here, in either form
STRUCT_OPS = {
    "relax.nn.max_pool2d", "relax.concat", "relax.image.resize2d", "relax.permute_dims",
    "relax.strided_slice", "relax.split", "relax.nn.pad", "relax.reshape", "relax.squeeze",
    "relax.expand_dims", "relax.flatten",
}


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


def _ints(expr) -> list[int]:
    if isinstance(expr, relax.Tuple):
        return [_int(f) for f in expr.fields]
    if isinstance(expr, relax.ShapeExpr):
        return [int(v) for v in expr.values]
    if isinstance(expr, (list, tuple, tvm.ir.Array)):
        return [_int(v) for v in expr]
    raise UnsupportedModelError(f"expected constant integers, got {type(expr).__name__}")


def _int(v) -> int:
    while hasattr(v, "value"):  # PrimValue -> IntImm -> int
        v = v.value
    return int(v)


def _shape(expr) -> tuple:
    return tuple(int(d) for d in expr.ty.shape)


def _same_q(a_scale, a_zp, b_scale, b_zp) -> bool:
    return math.isclose(a_scale, b_scale, rel_tol=1e-6) and a_zp == b_zp


class StructLowering:
    """The data-movement rules of one legalizer run (``lg`` is the ``_Legalizer``)."""

    def __init__(self, lg):
        self.lg = lg
        self.tuples: dict = {}  # split result var -> list of QTensor

    # ---- entry points ------------------------------------------------------------
    def visit_int8(self, var, call) -> bool:
        """An op applied to int8 tensors directly (TFLite form). Returns True if handled."""
        if isinstance(call, relax.TupleGetItem):
            parts = self.tuples.get(call.tuple_value)
            if parts is None:
                return False
            self.lg.tensors[var] = parts[int(call.index)]
            return True
        kind = op_name(call)
        if kind not in STRUCT_OPS:
            return False
        first = call.args[0]
        data = self.lg.tensors.get(first) if isinstance(first, relax.Var) else None
        if data is None:
            return False
        act = self.fold_int_clip(var)
        out = (data.scale, data.zero_point, act)
        result = self.lower(kind, var, call, data, out)
        if isinstance(result, list):
            self.tuples[var] = result
        else:
            self.lg.tensors[var] = result
        return True

    def lower_qdq(self, prod, var, out, out_src_shape):
        """quantize(op(dequantize(x))): the op at the input's quantization, then a requantize."""
        kind = op_name(prod)
        if isinstance(prod, relax.TupleGetItem):
            split = self.lg.graph.producer(prod.tuple_value)
            if op_name(split) != "relax.split":
                return None
            data = self.lg._require_dq(split.args[0], "split")
            parts = self.lower("relax.split", var, split, data, (data.scale, data.zero_point, (-128, 127)))
            return self._requantize(parts[int(prod.index)], out, out_src_shape)
        if kind == "relax.concat":
            return self._concat(prod, out)
        if kind not in STRUCT_OPS:
            return None
        data = self.lg._require_dq(prod.args[0], kind)
        result = self.lower(kind, var, prod, data, (data.scale, data.zero_point, (-128, 127)))
        return self._requantize(result, out, out_src_shape)

    # ---- per op ------------------------------------------------------------------
    def lower(self, kind, var, call, data, out):
        if kind == "relax.nn.max_pool2d":
            return self._max_pool(call, data, out)
        if kind == "relax.image.resize2d":
            return self._resize(call, data, out)
        if kind == "relax.permute_dims":
            return self._transpose(var, call, data, out)
        if kind == "relax.strided_slice":
            return self._slice(var, call, data, out)
        if kind == "relax.split":
            return self._split(call, data, out)
        if kind == "relax.nn.pad":
            return self._pad(call, data, out)
        if kind in ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten"):
            return self.lg._emit_requantize(data, _shape(var), out)
        if kind == "relax.concat":
            raise UnsupportedModelError(f"{var.name}: concatenation of int8 tensors without quantization")
        raise UnsupportedModelError(f"{var.name}: no int8 lowering for {kind}")

    def _max_pool(self, call, data, out):
        attrs = call.attrs
        if str(attrs.layout) != (data.src_layout or "NCHW"):
            raise UnsupportedModelError(f"max_pool2d layout {attrs.layout} differs from its input's")
        if bool(attrs.ceil_mode) or any(int(d) != 1 for d in attrs.dilation):
            raise UnsupportedModelError("max pooling with ceil_mode or dilation is not supported")
        _, _, act = out
        p = MaxPoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(s) for s in attrs.strides),
                          tuple(int(v) for v in attrs.padding), *act)
        return self.lg._emit("max_pool2d", max_pool_int8(p), [data.var], p.out_shape, out, data.src_layout, p,
                             macs=int(np.prod(p.out_shape)) * p.kernel[0] * p.kernel[1])

    def _resize(self, call, data, out):
        attrs = call.attrs
        if str(attrs.method) != "nearest_neighbor":
            raise UnsupportedModelError(f"resize with method '{attrs.method}' is not supported (only nearest)")
        if str(attrs.layout) != (data.src_layout or "NCHW") or len(data.shape) != 4:
            raise UnsupportedModelError(f"resize2d layout {attrs.layout} differs from its input's")
        out_h, out_w = _ints(call.args[1])
        _, h, w, _ = data.shape
        mode, rounding = str(attrs.coordinate_transformation_mode), str(attrs.rounding_method)
        rows, cols = (_nearest_index(o, i, mode, rounding, self.lg.layout_hint == "NHWC")
                      for o, i in ((out_h, h), (out_w, w)))
        p = ResizeNearestParams(data.shape, tuple(int(v) for v in rows), tuple(int(v) for v in cols))
        return self.lg._emit("resize_nearest", resize_nearest_int8(p), [data.var], p.out_shape, out,
                             data.src_layout, p, macs=0)

    def _transpose(self, var, call, data, out):
        rank = len(data.shape)
        axes = [int(a) for a in call.attrs.axes] if call.attrs.axes is not None else list(reversed(range(rank)))
        # stored_out = stored_in.transpose(inv(L_in) . P . L_out); the output keeps the input's
        # layout unless plain source order ("") makes the kernel a copy (NCHW -> NHWC transposes)
        layouts = [data.src_layout, ""] if rank == 4 and data.src_layout else [""]
        perms = [_compose(_compose(_inverse(stored_axes(data.src_layout, rank)), axes), stored_axes(lay, rank))
                 for lay in layouts]
        identity = [i for i, perm in enumerate(perms) if perm == list(range(rank))]
        pick = identity[0] if identity else 0
        out_layout, perm = layouts[pick], perms[pick]
        if perm == list(range(rank)):  # the stored bytes already are the result: relabel, no kernel
            return replace(data, src_layout=out_layout)
        p = TransposeParams(data.shape, tuple(perm))
        return self.lg._emit("transpose", transpose_int8(p), [data.var], p.out_shape, out, out_layout, p, macs=0)

    def to_source_order(self, data):
        """An NCHW-imported 4-D tensor (stored NHWC) transposed back to NCHW, layout "" (as the model
        has it), so that a reshape/flatten sees the element order the model means."""
        p = TransposeParams(data.shape, tuple(_inverse(stored_axes(data.src_layout, 4))))
        out = (data.scale, data.zero_point, (-128, 127))
        return self.lg._emit("transpose", transpose_int8(p), [data.var], p.out_shape, out, "", p, macs=0)

    def _slice(self, var, call, data, out):
        rank = len(data.shape)
        if len(call.args) < 4:
            raise UnsupportedModelError(f"{var.name}: strided_slice without constant bounds")
        axes, begin, end = (_ints(a) for a in call.args[1:4])
        strides = _ints(call.args[4]) if len(call.args) > 4 else [1] * len(axes)
        src_shape = [data.shape[i] for i in _inverse(stored_axes(data.src_layout, rank))]
        b, e, s = [0] * rank, list(src_shape), [1] * rank
        for a, bb, ee, ss in zip(axes, begin, end, strides or [1] * len(axes)):
            a %= rank
            b[a], e[a], s[a] = bb, ee, ss
        to_stored = stored_axes(data.src_layout, rank)
        b, e, s = ([v[i] for i in to_stored] for v in (b, e, s))
        p = SliceParams.from_bounds(data.shape, b, e, s)
        return self.lg._emit("strided_slice", slice_int8(p), [data.var], p.out_shape, out, data.src_layout, p,
                             macs=0)

    def _split(self, call, data, out):
        rank = len(data.shape)
        axis = int(call.attrs.axis) % rank
        stored = stored_axes(data.src_layout, rank).index(axis)
        size = data.shape[stored]
        sections = call.attrs.indices_or_sections
        if isinstance(sections, (int, tvm.tirx.IntImm)) or hasattr(sections, "value"):
            n = _int(sections)
            bounds = [size * i // n for i in range(n + 1)]
        else:
            bounds = [0, *[_int(v) for v in sections], size]
        parts = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            b, e = [0] * rank, list(data.shape)
            b[stored], e[stored] = lo, hi
            p = SliceParams.from_bounds(data.shape, b, e, [1] * rank)
            parts.append(self.lg._emit("split", slice_int8(p), [data.var], p.out_shape, out, data.src_layout, p,
                                       macs=0))
        return parts

    def _pad(self, call, data, out):
        attrs = call.attrs
        if str(getattr(attrs, "pad_mode", "constant")) != "constant":
            raise UnsupportedModelError(f"pad mode '{attrs.pad_mode}' is not supported (only constant)")
        rank = len(data.shape)
        widths = [int(v) for v in attrs.pad_width]
        src_pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(rank)]
        pairs = [src_pairs[i] for i in stored_axes(data.src_layout, rank)]
        value = float(getattr(attrs, "pad_value", 0.0))
        if len(call.args) > 1:
            from .legalize_qdq import _prim
            value = _prim(call.args[1])
        if self.lg.tensors.get(call.args[0]) is not None:
            q = int(round(value))  # int8 form: the value is already quantized (TFLite: zero point)
        else:  # QDQ form: a real value, quantized like the input
            q = data.zero_point + int(round(value / data.scale))
        if not -128 <= q <= 127 or (not float(q).is_integer()):
            raise UnsupportedModelError(f"pad value {value} is not representable in int8")
        p = PadNdParams(data.shape, tuple(pairs), q)
        tensor = self.lg._emit("pad", pad_nd_int8(p), [data.var], p.out_shape, out, data.src_layout, p, macs=0)
        if rank == 4 and q == data.zero_point and pairs[0] == (0, 0) and pairs[3] == (0, 0):
            t, b = pairs[1]
            l, r = pairs[2]
            self.lg.pad_source[tensor.var] = (data, (t, l, b, r))  # a following conv may fold it
        return tensor

    def _concat(self, concat, out):
        fields = concat.args[0].fields if isinstance(concat.args[0], relax.Tuple) else None
        if fields is None:
            raise UnsupportedModelError("concat of a non-literal tuple is not supported")
        inputs = [self.lg._require_dq(f, "concat") for f in fields]
        rank = len(inputs[0].shape)
        layouts = {t.src_layout for t in inputs}
        if len(layouts) != 1:
            raise UnsupportedModelError(f"concat of tensors with different layouts {sorted(layouts)}")
        axis = int(concat.attrs.axis) % rank
        stored = stored_axes(inputs[0].src_layout, rank).index(axis)
        scale, zp, (act_min, act_max) = out
        p = ConcatParams(tuple(t.shape for t in inputs), stored, tuple(t.scale for t in inputs),
                         tuple(t.zero_point for t in inputs), scale, zp, act_min, act_max)
        return self.lg._emit("concat", concat_int8(p), [t.var for t in inputs], p.out_shape, out,
                             inputs[0].src_layout, p, macs=0)

    # ---- helpers -----------------------------------------------------------------
    def _requantize(self, tensor, out, out_src_shape):
        scale, zp, act = out
        if _same_q(tensor.scale, tensor.zero_point, scale, zp) and act == (-128, 127):
            return tensor
        return self.lg._emit_requantize(tensor, out_src_shape, out)

    def fold_int_clip(self, var):
        """A TFLite fused activation (int8 clip on this op's output), folded into the kernel."""
        clip = self.lg._int_clip_user(var)
        if clip is None:
            return (-128, 127)
        clip_var, lo, hi = clip
        self.lg.folded_clips.add(clip_var.name)
        return (max(-128, lo), min(127, hi))


def _nearest_index(out_size, in_size, mode, rounding, tflite: bool) -> np.ndarray:
    """Source index of every output index for a nearest-neighbour resize.

    TFLite (``tflite``): its ``GetNearestNeighbor`` (``tflite_nearest_index``), where TVM's
    importer maps align_corners -> "align_corners", half_pixel_centers -> "half_pixel".
    ONNX: x_src = transform(x_dst) in float32, then ``nearest_mode`` (TVM's rounding_method),
    clamped to the input, as onnxruntime computes it.
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
    elif mode == "half_pixel":
        x = (i + f32(0.5)) / scale - f32(0.5)
    elif mode == "pytorch_half_pixel":
        x = (i + f32(0.5)) / scale - f32(0.5) if out_size > 1 else np.zeros_like(i)
    elif mode == "align_corners":
        x = i * f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else np.zeros_like(i)
    elif mode == "tf_half_pixel_for_nn":
        x = (i + f32(0.5)) / scale
    else:
        raise UnsupportedModelError(f"resize coordinate mode '{mode}' is not supported")
    rounding = rounding or "round_prefer_floor"
    if rounding == "round_prefer_floor":
        idx = np.where(x - np.floor(x) == f32(0.5), np.floor(x), np.round(x))
    elif rounding == "round_prefer_ceil":
        idx = np.where(x - np.floor(x) == f32(0.5), np.ceil(x), np.round(x))
    elif rounding == "floor":
        idx = np.floor(x)
    elif rounding == "ceil":
        idx = np.ceil(x)
    else:
        raise UnsupportedModelError(f"resize rounding '{rounding}' is not supported")
    return np.clip(idx, 0, in_size - 1).astype(np.int32)
