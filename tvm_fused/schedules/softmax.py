"""int8 softmax over the last axis, bit-exact to TFLite's ``reference_ops::Softmax``.

TFLite (``activations.cc``, kReference, int8 in/out; TFLM and CMSIS-NN compute the same)
prepares ``(M, left_shift) = QuantizeMultiplierGreaterThanOne(min(beta * s_in * 2**26,
2**31 - 1))`` and ``diff_min = -floor(31 * 2**26 / 2**left_shift)``, then per row::

    d      = x - max(row)                                  (in [-255, 0])
    e(d)   = exp_on_negative_values(Q5.26: SRDHM(d << left_shift, M))   if d >= diff_min, else 0
    sum    = sum_row RoundingDivideByPOT(e(d), 12)         (Q12.19 accumulator)
    k      = clz(sum); scale = one_over_one_plus_x_for_x_in_0_1((sum << k) - 2**31)  (Newton-Raphson)
    y      = clamp(RoundingDivideByPOT(SRDHM(scale, e(d)), (12 - k) + 31 - 8) - 128)

``e(d)`` depends only on ``d``, which takes 256 values, so we compute it at compile
time (gemmlowp's fixed-point exp, exactly, in Python integers) into a const int32[256]
table; the kernel does the row max, the sum, the reciprocal and the output in integer
TIR. ``SRDHM`` is gemmlowp's SaturatingRoundingDoublingHighMul.

TFLite requires ``s_out = 1/256, z_out = -128``. Other output quantizations (ONNX QDQ)
take the probability with 16 fractional bits instead of 8 and requantize it with
``MultiplyByQuantizedMultiplier(p16, 2**-16 / s_out) + z_out``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import hand_written
from .fixed_point import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


# ---------------------------------------------------------------- gemmlowp, scalar Python ints

def _wrap32(x: int) -> int:
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul (int32)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def saturating_mul_by_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term, one_third = 1895147668, 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), one_third) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
           (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> int:
    """gemmlowp ``exp_on_negative_values``: Q(integer_bits) raw ``a <= 0`` -> Q0.31 raw."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = _wrap32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp Newton-Raphson reciprocal: Q0.31 ``a`` -> Q0.31 ``1 / (1 + a)``."""
    half_denominator = _trunc_div(a + INT32_MAX + 1, 2)  # RoundingHalfSum(a, F0::One())
    x = _wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = _wrap32((1 << 29) - srdhm(half_denominator, x))
        x = _wrap32(x + saturating_mul_by_pot(srdhm(x, one_minus), 2))
    return saturating_mul_by_pot(x, 1)


# ---------------------------------------------------------------- Prepare

@dataclass(frozen=True)
class SoftmaxParams:
    """Softmax over the last axis of an int8 tensor; the exp table is a const argument."""

    shape: tuple
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    beta: float = 1.0

    @property
    def tflite_output(self) -> bool:
        """TFLite's own output quantization (1/256, -128): no requantization step."""
        return self.out_zp == -128 and abs(self.out_scale * 256 - 1) <= 1e-3

    @property
    def prob_bits(self) -> int:
        return 8 if self.tflite_output else 16

    def input_scaling(self) -> tuple[int, int, int]:
        """``PreprocessSoftmaxScaling`` + ``CalculateInputRadius``: (M, left_shift, diff_min)."""
        real = min(float(self.beta) * float(np.float32(self.in_scale)) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)),
                   float(INT32_MAX))
        mult, shift = quantize_multiplier(real)
        if shift < 0:  # TFLite's QuantizeMultiplierGreaterThanOne asserts this
            raise ValueError(f"softmax input scale {self.in_scale} * beta {self.beta} is too small")
        radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << shift)
        return mult, shift, -int(math.floor(radius))

    def output_requant(self) -> tuple[int, int]:
        """(M, shift) taking the 16-bit probability to the output scale (non-TFLite outputs)."""
        return quantize_multiplier(2.0 ** -self.prob_bits / float(np.float32(self.out_scale)))

    def exp_table(self) -> np.ndarray:
        """int32[256]: entry ``k`` is ``e(-k)``, the Q0.31 exp of the rescaled difference ``-k``."""
        mult, shift, diff_min = self.input_scaling()
        table = np.zeros(256, np.int32)
        for k in range(256):
            d = -k
            if d >= diff_min:
                table[k] = exp_on_negative_values(srdhm(d * (1 << shift), mult))
        return table


# ---------------------------------------------------------------- numpy golden

def softmax_reference(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """The kernel's arithmetic in Python integers (the golden model of the TIR kernel)."""
    table = p.exp_table()
    rows = np.asarray(x, np.int64).reshape(-1, p.shape[-1])
    out = np.empty(rows.shape, np.int8)
    req = None if p.tflite_output else p.output_requant()
    for r, row in enumerate(rows):
        e = [int(table[int(row.max() - v)]) for v in row]
        total = sum(rounding_divide_by_pot(v, ACCUMULATION_INTEGER_BITS) for v in e)
        clz = 32 - total.bit_length()
        scale = one_over_one_plus_x_for_x_in_0_1(_wrap32((total << clz) - (1 << 31)))
        exponent = (ACCUMULATION_INTEGER_BITS - clz) + 31 - p.prob_bits
        for c, v in enumerate(e):
            prob = rounding_divide_by_pot(srdhm(scale, v), exponent)
            if req is None:
                y = prob - 128
            else:
                y = int(multiply_by_quantized_multiplier(prob, *req)) + p.out_zp
            out[r, c] = min(127, max(-128, y))
    return out.reshape(x.shape)


# ---------------------------------------------------------------- TIR kernel

def _srdhm_expr(a, b):
    """SRDHM on int64 exprs holding int32 values (no INT32_MIN * INT32_MIN here: b >= 0 or
    a constant other than INT32_MIN)."""
    from tvm import tirx

    ab = a * b
    nudge = tirx.Select(ab >= 0, tirx.const(1 << 30, "int64"), tirx.const(1 - (1 << 30), "int64"))
    return tirx.truncdiv(ab + nudge, tirx.const(1 << 31, "int64"))


def _rdbypot_expr(x, exponent):
    """RoundingDivideByPOT on int64 exprs (``exponent`` may be an expr)."""
    from tvm import tirx

    one = tirx.const(1, "int64")
    mask = tirx.shift_left(one, exponent) - one
    remainder = tirx.bitwise_and(x, mask)
    threshold = tirx.shift_right(mask, one) + tirx.Select(x < 0, one, tirx.const(0, "int64"))
    return tirx.shift_right(x, exponent) + tirx.Select(remainder > threshold, one, tirx.const(0, "int64"))


def _sat_shift_left_expr(x, exponent: int):
    from tvm import tirx

    threshold = (1 << (31 - exponent)) - 1
    return tirx.Select(x > threshold, tirx.const(INT32_MAX, "int64"),
                       tirx.Select(x < -threshold, tirx.const(INT32_MIN, "int64"),
                                   x * (1 << exponent)))


def softmax_int8(p: SoftmaxParams, name: str = "softmax"):
    """PrimFunc(x, exp_table, out), rows of ``shape[-1]`` elements.

    int32 bound: a row sum adds at most 2**19 (e(0) / 2**12) per element, so rows of up to
    4095 elements fit; longer rows are rejected (TFLite has the same accumulator).
    """
    from tvm.script.ir_builder import IRBuilder
    from tvm.tirx.script.builder import ir as T
    from tvm import tirx

    depth = int(p.shape[-1])
    if depth > 4095:
        raise ValueError(f"softmax over {depth} elements could overflow TFLite's Q12 accumulator")
    rows = int(np.prod(p.shape[:-1], dtype=np.int64))
    req = None if p.tflite_output else p.output_requant()
    i64 = "int64"
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            x = T.arg("x", T.buffer(tuple(p.shape), "int8"))
            table = T.arg("exp_table", T.buffer((256,), "int32"))
            out = T.arg("out", T.buffer(tuple(p.shape), "int8"))
            xf = T.decl_buffer((rows * depth,), "int8", data=x.data)
            of = T.decl_buffer((rows * depth,), "int8", data=out.data)
            row_max = T.alloc_buffer((1,), "int32")
            total = T.alloc_buffer((1,), i64)
            clz = T.alloc_buffer((1,), i64)
            recip = T.alloc_buffer((2,), i64)  # [half_denominator, x]
            with T.serial(0, rows) as r:
                base = r * depth
                T.buffer_store(row_max, -128, [0])
                with T.serial(0, depth) as c:
                    T.buffer_store(row_max, tirx.max(row_max[0], xf[base + c].astype("int32")), [0])
                T.buffer_store(total, tirx.const(0, i64), [0])
                with T.serial(0, depth) as c:
                    e = table[row_max[0] - xf[base + c].astype("int32")].astype(i64)
                    T.buffer_store(total, total[0] + _rdbypot_expr(e, tirx.const(ACCUMULATION_INTEGER_BITS, i64)),
                                   [0])
                # count leading zeros of the (positive) 32-bit sum by binary search
                T.buffer_store(clz, tirx.const(0, i64), [0])
                for bits in (16, 8, 4, 2, 1):
                    limit = tirx.const(1 << (32 - bits), i64)
                    with T.If(total[0] < limit):
                        with T.Then():
                            T.buffer_store(clz, clz[0] + bits, [0])
                            T.buffer_store(total, total[0] * (1 << bits), [0])
                # total is now sum << clz, in [2**31, 2**32): Newton-Raphson for 1 / (1 + a)
                T.buffer_store(recip, tirx.truncdiv(total[0] - (1 << 31) + INT32_MAX + 1, 2), [0])
                T.buffer_store(recip, 1515870810 + _srdhm_expr(recip[0], tirx.const(-1010580540, i64)), [1])
                for _ in range(3):
                    one_minus = tirx.const(1 << 29, i64) - _srdhm_expr(recip[0], recip[1])
                    T.buffer_store(recip, recip[1] + _sat_shift_left_expr(_srdhm_expr(recip[1], one_minus), 2),
                                   [1])
                T.buffer_store(recip, _sat_shift_left_expr(recip[1], 1), [1])
                exponent = (ACCUMULATION_INTEGER_BITS - clz[0]) + (31 - p.prob_bits)
                with T.serial(0, depth) as c:
                    e = table[row_max[0] - xf[base + c].astype("int32")].astype(i64)
                    prob = _rdbypot_expr(_srdhm_expr(recip[1], e), exponent).astype("int32")
                    if req is None:
                        y = prob - 128
                    else:
                        from .fixed_point import requantize_expr
                        y = requantize_expr(prob, int(req[0]), int(req[1])) + p.out_zp
                    T.buffer_store(of, tirx.max(tirx.min(y, 127), -128).astype("int8"), [base + c])
    return hand_written(ib.get())
