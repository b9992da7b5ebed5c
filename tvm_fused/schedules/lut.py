"""int8 -> int8 elementwise ops as a 256-entry lookup table, filled at compile time.

Any op whose output element depends only on the same input element (and constant
quantization parameters) is a function of 256 possible int8 values. We evaluate
TFLite's own integer (or float-LUT) arithmetic for all 256 inputs at compile time,
in numpy, and the kernel is one load per element::

    out[i] = table[x[i] + 128]            (table: const int8[256], in flash)

so the device runs exactly the bits the table holds, and the table holds exactly
what TFLite's reference kernel computes (checked against BUILTIN_REF in
tests/test_ops_tflite.py). Table builders, each following the TFLite kernel that
``OpResolverType.BUILTIN_REF`` runs for int8 (``tflite/kernels/activations.cc``,
``quantize.cc`` and ``kernels/internal/reference/*``):

- LOGISTIC, TANH: ``LUTPopulate<int8_t>`` (float32):
  ``q = clamp(round(f(s_in * (v - z_in)) * (1 / s_out)) + z_out)``, with
  ``f = 1 / (1 + expf(-x))`` or ``tanhf``. Float32 throughout; ``expf``/``tanhf`` are
  the C library's (TFLite calls them), so we call the same libm through ctypes.
- HARD_SWISH: ``reference_ops::HardSwish`` int16 fixed point (see ``hard_swish_table``).
- LEAKY_RELU: ``reference_ops::QuantizeLeakyRelu``: ``z_out + MBQM(v - z_in, M_id, s_id)``
  for ``v >= z_in``, else ``z_out + MBQM(v - z_in, M_alpha, s_alpha)``; multipliers from
  ``s_in * alpha / s_out`` and ``s_in / s_out`` computed in float32.
- RELU, RELU6, RELU_N1_TO_1 (standalone): ``ReluX``: ``clamp(z_out + MBQM(v - z_in, M, s),
  lo, hi)`` with ``M`` from ``s_in / s_out`` in float32 and ``lo = z_out + roundf(min / s_out)``.
- QUANTIZE int8 -> int8: ``reference_ops::Requantize``: ``clamp(z_out + MBQM(v - z_in, M, s))``
  with ``M`` from ``double(s_in) / double(s_out)``.

(``MBQM`` = MultiplyByQuantizedMultiplier, ``tvm_fused/schedules/fixed_point.py``.)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
from dataclasses import dataclass

import numpy as np
from tvm import te

from .common import finish_prim_func
from .fixed_point import multiply_by_quantized_multiplier, quantize_multiplier

INT8_VALUES = np.arange(-128, 128, dtype=np.int64)


# ---------------------------------------------------------------- kernel

@dataclass(frozen=True)
class LutParams:
    """A table-lookup op over an int8 tensor of ``shape`` (the table is a const argument)."""

    shape: tuple
    op: str  # what the table computes, e.g. "logistic"


def lut_int8(p: LutParams, name: str = "lut"):
    """PrimFunc(x, table, out): ``out[i] = table[x[i] + 128]``."""
    x = te.placeholder(p.shape, "int8", name="x")
    table = te.placeholder((256,), "int8", name="table")
    out = te.compute(p.shape, lambda *i: table[x[i].astype("int32") + 128], name="out")
    return finish_prim_func(te.create_prim_func([x, table, out]), name)


def lut_per_channel_int8(p: LutParams, name: str = "lut_per_channel"):
    """PrimFunc(x, tables, out) with one table per channel (the last axis):
    ``out[..., c] = tables[c, x[..., c] + 128]`` (ONNX PRelu with a per-channel float slope)."""
    channels = p.shape[-1]
    x = te.placeholder(p.shape, "int8", name="x")
    tables = te.placeholder((channels, 256), "int8", name="tables")
    out = te.compute(p.shape, lambda *i: tables[i[-1], x[i].astype("int32") + 128], name="out")
    return finish_prim_func(te.create_prim_func([x, tables, out]), name)


def apply_table(x, table) -> np.ndarray:
    """numpy golden of the kernel."""
    return np.asarray(table, np.int8)[np.asarray(x, np.int64) + 128]


# ---------------------------------------------------------------- float32 helpers

def _libm():
    name = ctypes.util.find_library("m")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    for fn in ("expf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    return lib


_LIBM = _libm()


def _f32(x) -> np.float32:
    return np.float32(x)


def _expf(x: np.float32) -> np.float32:
    if _LIBM is not None:
        return np.float32(_LIBM.expf(float(x)))
    return np.exp(np.float32(x))


def _tanhf(x: np.float32) -> np.float32:
    if _LIBM is not None:
        return np.float32(_LIBM.tanhf(float(x)))
    return np.tanh(np.float32(x))


def _round_half_away_f32(x: np.float32) -> np.float32:
    """TfLiteRound on float: std::round (halves away from zero), exact in float32."""
    return np.float32(math.copysign(math.floor(abs(float(x)) + 0.5), float(x)))


def float_lut(transform, in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """TFLite ``LUTPopulateInt8``: the table of ``transform`` (float32 -> float32)."""
    in_scale, out_scale = _f32(in_scale), _f32(out_scale)
    inverse_scale = np.float32(1.0) / out_scale
    table = np.empty(256, np.int8)
    with np.errstate(over="ignore"):
        for k, v in enumerate(INT8_VALUES):
            dequantized = in_scale * np.float32(v - in_zp)
            transformed = np.float32(transform(np.float32(dequantized)))
            rescaled = _round_half_away_f32(np.float32(transformed * inverse_scale))
            quantized = int(np.float32(rescaled + np.float32(out_zp)))
            table[k] = min(127, max(-128, quantized))
    return table


def logistic_table(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """LOGISTIC: ``1.0f / (1.0f + std::exp(-x))`` through ``LUTPopulate<int8_t>``."""
    one = np.float32(1.0)
    return float_lut(lambda x: one / (one + _expf(-x)), in_scale, in_zp, out_scale, out_zp)


def tanh_table(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """TANH: ``std::tanh(x)`` through ``LUTPopulate<int8_t>``."""
    return float_lut(_tanhf, in_scale, in_zp, out_scale, out_zp)


# ---------------------------------------------------------------- integer tables

def _clamp8(v) -> np.ndarray:
    return np.clip(v, -128, 127).astype(np.int8)


def _quantize_f32_ratio(num, den):
    """TFLite Prepare code that divides float fields (``float / float`` -> double)."""
    return quantize_multiplier(float(np.float32(num) / np.float32(den)))


def requantize_table(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """QUANTIZE int8 -> int8 (``quantize.cc``: multiplier from double(s_in) / double(s_out))."""
    m, s = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    return _clamp8(out_zp + multiply_by_quantized_multiplier(INT8_VALUES - in_zp, m, s))


def relu_table(in_scale, in_zp, out_scale, out_zp, act_min: float = 0.0, act_max: float = math.inf):
    """Standalone RELU (0, inf), RELU6 (0, 6), RELU_N1_TO_1 (-1, 1): ``QuantizedReluX``."""
    m, s = _quantize_f32_ratio(in_scale, out_scale)
    out_scale = _f32(out_scale)
    lo = max(-128, out_zp + int(_round_half_away_f32(_f32(act_min) / out_scale)))
    hi = 127 if math.isinf(act_max) else min(127, out_zp + int(_round_half_away_f32(_f32(act_max) / out_scale)))
    y = out_zp + multiply_by_quantized_multiplier(INT8_VALUES - in_zp, m, s)
    return np.clip(y, lo, hi).astype(np.int8)


def leaky_relu_table(in_scale, in_zp, out_scale, out_zp, alpha) -> np.ndarray:
    """LEAKY_RELU (``QuantizeLeakyRelu``); a negative alpha keeps its sign outside the multiplier."""
    alpha_real = float(_f32(in_scale) * _f32(alpha) / _f32(out_scale))
    m_a, s_a = quantize_multiplier(abs(alpha_real))
    m_id, s_id = _quantize_f32_ratio(in_scale, out_scale)
    v = INT8_VALUES - in_zp
    identity = multiply_by_quantized_multiplier(v, m_id, s_id)
    scaled_alpha = multiply_by_quantized_multiplier(v, m_a, s_a)
    negative = -scaled_alpha if alpha_real < 0 else scaled_alpha
    return _clamp8(out_zp + np.where(v >= 0, identity, negative))


# ---- HARD_SWISH (reference_ops::HardSwish, int16 gemmlowp arithmetic)

def _i16(v: int) -> int:
    """static_cast<int16_t>: wrap to 16 bits."""
    return ((int(v) + 0x8000) & 0xFFFF) - 0x8000


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int16."""
    if a == b == -32768:
        return 32767
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else (1 - (1 << 14))
    return _i16(int((ab + nudge) / (1 << 15)))  # C division truncates toward zero


def _sdhm16(a: int, b: int) -> int:
    """TFLite's non-rounding SaturatingDoublingHighMul (hard_swish.h)."""
    if a == b == -32768:
        return 32767
    return _i16(int((a * b) / (1 << 15)))


def _rdbypot16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT on int16 (round half away from zero). The mask is
    ``int16((1 << exponent) - 1)``, so exponents >= 16 give -1 / +1 as the C++ does."""
    mask = _i16((1 << exponent) - 1)
    remainder = x & mask
    threshold = _i16((mask >> 1) + (1 if x < 0 else 0))
    return _i16((x >> exponent) + (1 if remainder > threshold else 0))


def _saturating_left_shift16(v: int, amount: int) -> int:
    return max(-32768, min(32767, v * (1 << amount)))


def _downscale_to_int16(m32: int) -> int:
    """TFLite ``DownScaleInt32ToInt16Multiplier``."""
    if m32 >= (2**31 - 1) - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def hard_swish_params(in_scale, out_scale):
    """``HardSwishPrepare``: (output multiplier int16, exponent, reluish multiplier int16, exponent)."""
    hires_input_scale = np.float32(1.0 / 128.0) * _f32(in_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires_input_scale / _f32(out_scale)))
    rel_m, rel_e = quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_e > 0:
        raise ValueError("HARD_SWISH needs output_scale >= input_scale / 128 (TFLite requires it too)")
    return _downscale_to_int16(out_m), out_e, _downscale_to_int16(rel_m), rel_e


def hard_swish_table(in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """HARD_SWISH, int16 fixed point (``reference_ops::HardSwish``):

    x' = (v - z_in) << 7;  pre = SRDHM16(x', M_out)
    r = SRDHM16(x' << max(e_rel - 1, 0) saturating, M_rel), then << 1 if e_rel > 0
        or RoundingDivideByPOT(r, -e_rel) if e_rel < 0;  r = (r + 32768) >> 1  (relu6(x+3)/6 in Q0.15)
    y = clamp(RoundingDivideByPOT(SDHM16(r, pre), -e_out) + z_out)
    """
    out_m, out_e, rel_m, rel_e = hard_swish_params(in_scale, out_scale)
    table = np.empty(256, np.int8)
    for k, v in enumerate(INT8_VALUES):
        value = _i16(int(v) - in_zp)
        hires = _i16(value * (1 << 7))
        preshift = _srdhm16(hires, out_m)
        reluish = hires
        if rel_e > 0:
            reluish = _saturating_left_shift16(reluish, rel_e - 1)
        reluish = _srdhm16(reluish, rel_m)
        if rel_e > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if rel_e < 0:
            reluish = _rdbypot16(reluish, -rel_e)
        reluish = _i16((reluish + (1 << 15)) >> 1)
        pre_out = _sdhm16(reluish, preshift)
        out = _i16(_rdbypot16(pre_out, -out_e) + out_zp)
        table[k] = min(127, max(-128, out))
    return table


# ---------------------------------------------------------------- ONNX QDQ semantics

def qdq_float_table(transform, in_scale, in_zp, out_scale, out_zp) -> np.ndarray:
    """``QuantizeLinear(f(DequantizeLinear(v)))`` for every int8 ``v``, as onnxruntime computes
    it with graph optimizations off: float32 ``(v - z_in) * s_in``, ``f`` in float32,
    ``saturate(round_half_even(y / s_out) + z_out)``. ``transform`` maps a float32 array to
    a float32 array. onnxruntime's own ``f`` (MLAS polynomial approximations for sigmoid,
    tanh) may differ from numpy's by an ulp, so an entry can differ by one unit at a tie."""
    x = (INT8_VALUES - in_zp).astype(np.float32) * np.float32(in_scale)
    with np.errstate(over="ignore"):
        y = np.asarray(transform(x), np.float32) / np.float32(out_scale)
    return _clamp8(np.rint(y).astype(np.int64) + out_zp)


def clamp_table(table, act_min: int, act_max: int) -> np.ndarray:
    """A folded activation (clip/relu after the op) applied to the table's entries."""
    return np.clip(np.asarray(table, np.int64), act_min, act_max).astype(np.int8)
