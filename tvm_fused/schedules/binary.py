"""int8 binary elementwise ops with numpy broadcasting: ADD, SUB, MUL, PRELU.

Arithmetic and multipliers follow the kernels ``OpResolverType.BUILTIN_REF`` runs
(``tflite/kernels/{add,sub,mul}.cc`` Prepare, ``activations.cc`` PreluPrepare, and
``reference_ops::BroadcastAdd6DSlow / BroadcastSubSlow``,
``reference_integer_ops::BroadcastMul6DSlow``, ``reference_ops::BroadcastPrelu4DSlow``);
``MBQM`` is MultiplyByQuantizedMultiplier (``fixed_point.py``)::

    ADD/SUB  a' = MBQM((a - z_a) << 20, M_a, s_a);  b' = MBQM((b - z_b) << 20, M_b, s_b)
             y = clamp(MBQM(a' +/- b', M_o, s_o) + z_o, act_min, act_max)
             M_a = s_a / (2 max(s_a, s_b)), M_b likewise, M_o = 2 max(s_a, s_b) / (2**20 s_o)   (double)
    MUL      y = clamp(MBQM((a - z_a) (b - z_b), M, s) + z_o, act_min, act_max)
             M = float32(float32(s_a * s_b) / s_o)   (TFLite multiplies the float fields)
    PRELU    v = x - z_x;  y = clamp(z_o + (v >= 0 ? MBQM(v, M_1, s_1) : MBQM(v (alpha - z_alpha), M_2, s_2)))
             M_1 = float32(s_x / s_o), M_2 = float32(float32(s_x * s_alpha) / s_o)

Broadcasting: shapes are right-aligned; a dimension of 1 (or a missing one) repeats.
The kernel loops over the output and reads each input at the broadcast offset, so no
broadcast copy is ever materialized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import hand_written
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier

ADD_LEFT_SHIFT = 20
OPS = ("add", "sub", "mul", "prelu")


def broadcast_shape(a_shape, b_shape) -> tuple:
    """numpy broadcast of two static shapes; ValueError names both when they do not broadcast."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(tuple(a_shape), tuple(b_shape)))
    except ValueError as e:
        raise ValueError(f"shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast") from e


@dataclass(frozen=True)
class BinaryParams:
    """One int8 binary op; ``b`` is the second input (PRELU: alpha)."""

    op: str
    a_shape: tuple
    b_shape: tuple
    a_scale: float
    a_zp: int
    b_scale: float
    b_zp: int
    out_scale: float
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"unknown binary op {self.op!r}; one of {OPS}")

    @property
    def out_shape(self) -> tuple:
        return broadcast_shape(self.a_shape, self.b_shape)

    def multipliers(self) -> list[tuple[int, int]]:
        """Prepare: the (multiplier, shift) pairs the element formula uses, in its order."""
        f32 = np.float32
        sa, sb, so = f32(self.a_scale), f32(self.b_scale), f32(self.out_scale)
        if self.op in ("add", "sub"):
            twice_max = 2.0 * float(max(sa, sb))
            return [quantize_multiplier(float(sa) / twice_max), quantize_multiplier(float(sb) / twice_max),
                    quantize_multiplier(twice_max / float(f32(1 << ADD_LEFT_SHIFT) * so))]
        if self.op == "mul":
            return [quantize_multiplier(float(sa * sb / so))]
        return [quantize_multiplier(float(sa / so)), quantize_multiplier(float(sa * sb / so))]


def _strides(shape, out_shape) -> list[int]:
    """Element strides of ``shape`` right-aligned to ``out_shape`` (0 where it broadcasts)."""
    rank = len(out_shape)
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    strides, step = [0] * rank, 1
    for d in range(rank - 1, -1, -1):
        strides[d] = 0 if padded[d] == 1 else step
        step *= padded[d]
    return strides


# ---------------------------------------------------------------- numpy golden

def binary_reference(a, b, p: BinaryParams) -> np.ndarray:
    a = np.broadcast_to(np.asarray(a, np.int64), p.out_shape)
    b = np.broadcast_to(np.asarray(b, np.int64), p.out_shape)
    mq = multiply_by_quantized_multiplier
    m = p.multipliers()
    if p.op in ("add", "sub"):
        xa = mq((a - p.a_zp) * (1 << ADD_LEFT_SHIFT), *m[0])
        xb = mq((b - p.b_zp) * (1 << ADD_LEFT_SHIFT), *m[1])
        y = mq(xa + xb if p.op == "add" else xa - xb, *m[2]) + p.out_zp
    elif p.op == "mul":
        y = mq((a - p.a_zp) * (b - p.b_zp), *m[0]) + p.out_zp
    else:
        v = a - p.a_zp
        y = np.where(v >= 0, mq(v, *m[0]), mq(v * (b - p.b_zp), *m[1])) + p.out_zp
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


# ---------------------------------------------------------------- TIR kernel

def _element(a_value, b_value, p: BinaryParams, acc):
    """Statements computing one output value into ``acc[0]`` (int32), then the int8 result.
    Scaled operands go through a one-word accumulator instead of nested Lets (TVM's buffer
    analysis is slow on deep Let nests)."""
    from tvm import tirx
    from tvm.tirx.script.builder import ir as T

    from .fixed_point import requantize_expr

    m = p.multipliers()
    a32, b32 = a_value.astype("int32") - p.a_zp, b_value.astype("int32") - p.b_zp
    if p.op in ("add", "sub"):
        T.buffer_store(acc, requantize_expr(a32 * (1 << ADD_LEFT_SHIFT), *m[0]), [0])
        xb = requantize_expr(b32 * (1 << ADD_LEFT_SHIFT), *m[1])
        T.buffer_store(acc, acc[0] + xb if p.op == "add" else acc[0] - xb, [0])
        y = requantize_expr(acc[0], *m[2]) + p.out_zp
    elif p.op == "mul":
        T.buffer_store(acc, a32 * b32, [0])
        y = requantize_expr(acc[0], *m[0]) + p.out_zp
    else:
        T.buffer_store(acc, a32, [0])
        y = tirx.Select(acc[0] >= 0, requantize_expr(acc[0], *m[0]),
                        requantize_expr(acc[0] * b32, *m[1])) + p.out_zp
    return tirx.max(tirx.min(y, p.act_max), p.act_min).astype("int8")


def binary_int8(p: BinaryParams, name: str | None = None):
    """PrimFunc(a, b, out): one loop per output dimension, inputs read at broadcast offsets."""
    from tvm.script.ir_builder import IRBuilder
    from tvm.tirx.script.builder import ir as T

    out_shape = p.out_shape
    a_strides, b_strides = _strides(p.a_shape, out_shape), _strides(p.b_shape, out_shape)
    sizes = [int(np.prod(s, dtype=np.int64)) for s in (p.a_shape, p.b_shape, out_shape)]
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name or p.op)
            a = T.arg("a", T.buffer(tuple(p.a_shape), "int8"))
            b = T.arg("b" if p.op != "prelu" else "alpha", T.buffer(tuple(p.b_shape), "int8"))
            out = T.arg("out", T.buffer(tuple(out_shape), "int8"))
            a_flat = T.decl_buffer((sizes[0],), "int8", data=a.data)
            b_flat = T.decl_buffer((sizes[1],), "int8", data=b.data)
            out_flat = T.decl_buffer((sizes[2],), "int8", data=out.data)
            acc = T.alloc_buffer((1,), "int32")
            frames = [T.serial(0, d) for d in out_shape]
            idx = [f.__enter__() for f in frames]
            a_off = sum((i * s for i, s in zip(idx, a_strides) if s), 0)
            b_off = sum((i * s for i, s in zip(idx, b_strides) if s), 0)
            o_off, step = 0, 1
            for i, d in zip(reversed(idx), reversed(out_shape)):
                o_off = o_off + i * step
                step *= d
            T.buffer_store(out_flat, _element(a_flat[a_off], b_flat[b_off], p, acc), [o_off])
            for f in reversed(frames):
                f.__exit__(None, None, None)
    return hand_written(ib.get())
