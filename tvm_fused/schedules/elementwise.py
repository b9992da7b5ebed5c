"""int8 elementwise kernels: residual add, requantize (reshape/copy).

Add follows TFLite's ``reference_integer_ops::Add`` (Prepare in ``add.cc``):
both inputs are shifted left by 20 bits, scaled to twice the larger input scale,
summed, then scaled to the output::

    a' = MBQM((a - za) << 20, Ma, sa);  b' = MBQM((b - zb) << 20, Mb, sb)
    y  = clamp(MBQM(a' + b', Mo, so) + zo)
"""
from __future__ import annotations

from dataclasses import dataclass

from tvm import te, tirx

from . import dsp
from .common import finish_prim_func, hand_written
from .fixed_point import quantize_multiplier, requantize_expr

ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class AddParams:
    """Quantization of a residual add of two same-shaped int8 tensors."""

    shape: tuple
    a_scale: float
    a_zp: int
    b_scale: float
    b_zp: int
    out_scale: float
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    def multipliers(self):
        """TFLite's add Prepare: (Ma, sa), (Mb, sb), (Mo, so), in double precision."""
        twice_max = 2.0 * max(self.a_scale, self.b_scale)
        ma = quantize_multiplier(self.a_scale / twice_max)
        mb = quantize_multiplier(self.b_scale / twice_max)
        mo = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * self.out_scale))
        return ma, mb, mo


def add_scaled_inputs(a_value, b_value, p: AddParams):
    """Both inputs rescaled to the common (twice the larger) scale, 20 bits up: int32 exprs."""
    (ma, sa), (mb, sb), _ = p.multipliers()
    # dsp.requantize: the same MultiplyByQuantizedMultiplier, one SMULL in C (not int64 TIR math)
    xa = dsp.requantize((a_value.astype("int32") - p.a_zp) * (1 << ADD_LEFT_SHIFT), ma, sa)
    xb = dsp.requantize((b_value.astype("int32") - p.b_zp) * (1 << ADD_LEFT_SHIFT), mb, sb)
    return xa, xb


def add_output(scaled_sum, p: AddParams):
    """int8 output from the sum of the scaled inputs."""
    _, _, (mo, so) = p.multipliers()
    y = dsp.requantize(scaled_sum, mo, so) + p.out_zp
    return tirx.max(tirx.min(y, p.act_max), p.act_min).astype("int8")


def add_expr(a_value, b_value, p: AddParams):
    """One output element of the add from two int8 input values."""
    xa, xb = add_scaled_inputs(a_value, b_value, p)
    # bind each scaled input once: nested Let definitions confuse TVM's bound analysis
    va, vb = tirx.Var("scaled_a", "int32"), tirx.Var("scaled_b", "int32")
    return tirx.Let(va, xa, tirx.Let(vb, xb, add_output(va + vb, p)))


def add_int8(p: AddParams, name: str = "add"):
    """PrimFunc(a, b, out), written as statements: the scaled inputs go through a one-word
    accumulator instead of nested Let expressions, which TVM's buffer analysis is slow on."""
    from tvm.script.ir_builder import IRBuilder
    from tvm.tirx.script.builder import ir as T

    size = 1
    for d in p.shape:
        size *= d
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            a = T.arg("a", T.buffer(tuple(p.shape), "int8"))
            b = T.arg("b", T.buffer(tuple(p.shape), "int8"))
            out = T.arg("out", T.buffer(tuple(p.shape), "int8"))
            a_flat = T.decl_buffer((size,), "int8", data=a.data)
            b_flat = T.decl_buffer((size,), "int8", data=b.data)
            out_flat = T.decl_buffer((size,), "int8", data=out.data)
            acc = T.alloc_buffer((1,), "int32")
            with T.serial(0, size) as i:
                xa, xb = add_scaled_inputs(a_flat[i], b_flat[i], p)
                T.buffer_store(acc, xa, [0])
                T.buffer_store(acc, acc[0] + xb, [0])
                T.buffer_store(out_flat, add_output(acc[0], p), [i])
    return hand_written(ib.get())


@dataclass(frozen=True)
class RequantizeParams:
    """int8 -> int8 with new quantization (TFLite's QUANTIZE int8->int8), or a plain copy."""

    in_shape: tuple
    out_shape: tuple
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    act_min: int = -128
    act_max: int = 127

    @property
    def is_copy(self) -> bool:
        return (self.in_scale == self.out_scale and self.in_zp == self.out_zp
                and self.act_min == -128 and self.act_max == 127)


def requantize_int8(p: RequantizeParams, name: str = "requantize"):
    """PrimFunc(x, out): out has ``out_shape`` (same element count, row-major reshape)."""
    x = te.placeholder(p.in_shape, "int8", name="x")
    mult, shift = quantize_multiplier(p.in_scale / p.out_scale)

    def body(*idx):
        v = _load_flat(x, p.in_shape, _flat_of(idx, p.out_shape))
        if p.is_copy:
            return v
        y = requantize_expr(v.astype("int32") - p.in_zp, mult, shift) + p.out_zp
        return tirx.max(tirx.min(y, p.act_max), p.act_min).astype("int8")

    out = te.compute(p.out_shape, body, name="out")
    return finish_prim_func(te.create_prim_func([x, out]), name)


def _flat_of(idx, shape):
    flat = 0
    for i, d in zip(idx, shape):
        flat = flat * d + i
    return flat


def _load_flat(buf, shape, flat):
    idx = []
    for d in reversed(shape):
        idx.append(tirx.floormod(flat, d))
        flat = tirx.floordiv(flat, d)
    return buf[tuple(reversed(idx))]
