"""TFLite's fixed-point requantization: the one definition used everywhere.

The integer kernels, the generated C and the Python reference all follow
``MultiplyByQuantizedMultiplier`` from TFLite (``kernels/internal/common.h``,
double rounding, the default build):

    left  = max(shift, 0); right = max(-shift, 0)
    y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2**left, M), right)

``M`` is a Q31 multiplier in [2**30, 2**31) (or 0) and ``shift`` follows TFLite's
sign convention: positive = shift left, negative = shift right. Multipliers are
computed once, at compile time, in double precision (``quantize_multiplier``),
like TFLite's Prepare step.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _round_half_away(x: float) -> float:
    """TfLiteRound / std::round: halves go away from zero (numpy rounds to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: real -> (Q31 multiplier, shift)."""
    if real_multiplier == 0.0:
        return 0, 0
    if real_multiplier < 0:
        raise ValueError(f"negative requantization scale {real_multiplier}")
    q, shift = math.frexp(real_multiplier)
    q_fixed = int(_round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        # TFLite clamps here too; such a scale means a broken model.
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def quantize_multipliers(real_multipliers) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``quantize_multiplier``: arrays of int32 multipliers and shifts."""
    pairs = [quantize_multiplier(float(m)) for m in np.asarray(real_multipliers, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


# ---------------------------------------------------------------- numpy reference

def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """Vectorised reference of TFLite's MultiplyByQuantizedMultiplier (int64 math, int32 result)."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    a = x * (np.int64(1) << left)
    ab = a * m
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _trunc_div(ab + nudge, np.int64(1 << 31))
    high = np.where((a == INT32_MIN) & (m == INT32_MIN), INT32_MAX, high)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return ((high >> right) + (remainder > threshold)).astype(np.int64)


def _trunc_div(a, b):
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


# ---------------------------------------------------------------- TIR expression

def requantize_expr(acc, multiplier, shift):
    """The same arithmetic as a TIR expression (int32 ``acc`` -> int32 result).

    ``multiplier`` and ``shift`` may be Python ints (per-tensor, folded into the
    code) or int32 PrimExprs loaded from per-channel tables. All intermediate
    math is int64, so nothing can overflow; C's ``>>`` on a negative int64 is an
    arithmetic shift on every compiler we target (gcc, clang, LLVM). Named
    ``Let`` bindings keep the generated C readable.
    """
    from tvm import tirx  # local: keep numpy-only users free of TVM import cost

    i64 = "int64"
    zero, one = tirx.const(0, i64), tirx.const(1, i64)
    if isinstance(shift, int):
        left = tirx.const(1 << max(shift, 0), i64)
        right = tirx.const(max(-shift, 0), i64)
        m = tirx.const(int(multiplier), i64)
    else:
        left = tirx.shift_left(one, tirx.max(shift.astype(i64), zero))
        right = tirx.max(zero - shift.astype(i64), zero)
        m = multiplier.astype(i64)
    # Fixed names, no global counter, so that two compiles emit identical C: TIR tells
    # variables apart by identity, and the C code generator makes repeated names unique
    # per function (rq_prod, rq_prod_1, ...) in a deterministic order.
    v_prod = tirx.Var("rq_prod", i64)
    v_high = tirx.Var("rq_high", i64)
    v_right = tirx.Var("rq_right", i64)
    v_mask = tirx.Var("rq_mask", i64)
    # SaturatingRoundingDoublingHighMul (the INT32_MIN * INT32_MIN case cannot occur: M >= 0)
    nudge = tirx.Select(v_prod >= zero, tirx.const(1 << 30, i64), tirx.const(1 - (1 << 30), i64))
    high = tirx.truncdiv(v_prod + nudge, tirx.const(1 << 31, i64))
    # RoundingDivideByPOT
    rem = tirx.bitwise_and(v_high, v_mask)
    threshold = tirx.shift_right(v_mask, one) + tirx.Select(v_high < zero, one, zero)
    result = tirx.shift_right(v_high, v_right) + tirx.Select(rem > threshold, one, zero)
    body = tirx.Let(v_mask, tirx.shift_left(one, v_right) - one, result)
    body = tirx.Let(v_right, right, body)
    body = tirx.Let(v_high, high, body)
    body = tirx.Let(v_prod, acc.astype(i64) * left * m, body)
    return body.astype("int32")


def round_half_away(x) -> np.ndarray:
    """numpy version of TfLiteRound, for quantizing float constants the TFLite way."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)
