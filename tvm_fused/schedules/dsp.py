"""Cortex-M7 DSP intrinsics as TIR ops, lowered per target.

The micro-kernels (gemm.py, depthwise.py) call these ops with ``tirx.call_intrin``.
TVM's ``LowerIntrin`` pass (run by both of our TIR pipelines) then rewrites each
call for the target being built:

- ``c`` (the generated C for the device): a call of a ``static inline`` function
  from ``tvm_fused_dsp.h`` (``HEADER`` below, shipped with the generated C). On a
  core with ``__ARM_FEATURE_DSP`` these are single instructions (SMLAD, SXTB16,
  SMLABB/SMLATT, SMULL); elsewhere (the host ASan build) a portable C fallback
  with the same integer semantics.
- ``llvm`` (the host reference build): plain TIR arithmetic with the same meaning,
  so the LLVM reference never sees the header and checks it independently.

Semantics (all int32, two's complement, wrapping like the instructions):

    load_s8x4(x[i])       = x[i] | x[i+1] << 8 | x[i+2] << 16 | x[i+3] << 24  (bytes, little endian)
    sxtb16(w)             = (int16) sext(byte0(w)) | (int16) sext(byte2(w)) << 16
    sxtb16_ror8(w)        = sxtb16(w ror 8): bytes 1 and 3
    smlad(a, b, acc)      = acc + lo16(a) * lo16(b) + hi16(a) * hi16(b)
    smlabb(a, b, acc)     = acc + lo16(a) * lo16(b)
    smlatt(a, b, acc)     = acc + hi16(a) * hi16(b)
    requantize(acc, M, s) = MultiplyByQuantizedMultiplier(acc, M, s)   (fixed_point.requantize_expr)
    max_s8x4(a, b)        = per byte k: max(sbyte_k(a), sbyte_k(b))       (SSUB8 then SEL(a, b))
    min_s8x4(a, b)        = per byte k: min(sbyte_k(a), sbyte_k(b))       (SSUB8 then SEL(b, a))
    sxtab16(acc, w)       = lanes (lo16(acc) + sbyte0(w), hi16(acc) + sbyte2(w)), each mod 2^16
    sxtab16_ror8(acc, w)  = sxtab16(acc, w ror 8): bytes 1 and 3
    lo16(v), hi16(v)      = the sign-extended 16-bit halves of v

``requantize`` in C computes TFLite's double rounding with one SMULL and 32-bit
shifts; ``tests/test_dsp_kernels.py`` checks it against fixed_point.py.
"""
from __future__ import annotations

import tvm
from tvm import tirx
from tvm.ir import _ffi_api as _ir_ffi

from .fixed_point import requantize_expr

HEADER_NAME = "tvm_fused_dsp.h"
_PURE, _READ_STATE = 1, 2

_I32 = "int32"


def _i32(v):
    return tirx.const(v, _I32) if isinstance(v, int) else v


# Sign extension by xor/subtract, not shift-left/shift-right: TVM folds constant shifts and
# rejects intermediate values outside int32.
def _lo16(v):
    return tirx.bitwise_xor(tirx.bitwise_and(v, _i32(0xFFFF)), _i32(0x8000)) - _i32(0x8000)


def _hi16(v):
    return tirx.shift_right(v, _i32(16))


def _sext8(v):
    return tirx.bitwise_xor(tirx.bitwise_and(v, _i32(0xFF)), _i32(0x80)) - _i32(0x80)


def _pack16(lo, hi):
    """(lo & 0xFFFF) | hi << 16 as int32."""
    return tirx.bitwise_or(tirx.bitwise_and(lo, _i32(0xFFFF)), tirx.shift_left(hi, _i32(16)))


def _llvm_load_s8x4(call):
    load = call.args[0]
    buf, (idx,) = load.source, load.indices
    word = None
    for k in range(4):
        byte = tvm.tirx.BufferLoad(buf, [idx + k]).astype(_I32)  # sign-extended int8
        term = tirx.bitwise_and(byte, _i32(0xFF)) if k < 3 else byte
        term = term if k == 0 else tirx.shift_left(term, _i32(8 * k))
        word = term if word is None else tirx.bitwise_or(word, term)
    return word


def _llvm_sxtb16(call):
    w = call.args[0]
    return _pack16(_sext8(w), _sext8(tirx.shift_right(w, _i32(16))))


def _llvm_sxtb16_ror8(call):
    w = call.args[0]
    return _pack16(_sext8(tirx.shift_right(w, _i32(8))), _sext8(tirx.shift_right(w, _i32(24))))


def _llvm_smlad(call):
    a, b, acc = call.args
    return acc + _lo16(a) * _lo16(b) + _hi16(a) * _hi16(b)


def _llvm_smlabb(call):
    a, b, acc = call.args
    return acc + _lo16(a) * _lo16(b)


def _llvm_smlatt(call):
    a, b, acc = call.args
    return acc + _hi16(a) * _hi16(b)


def _sbyte(v, k):
    """Byte k of int32 ``v``, sign-extended."""
    return tirx.shift_right(v, _i32(24)) if k == 3 else _sext8(v if k == 0 else tirx.shift_right(v, _i32(8 * k)))


def _pack8(values):
    """Four int32 values in [-128, 127] as the bytes of one int32 word (little endian)."""
    word = None
    for k, v in enumerate(values):
        term = tirx.bitwise_and(v, _i32(0xFF)) if k < 3 else v
        term = term if k == 0 else tirx.shift_left(term, _i32(8 * k))
        word = term if word is None else tirx.bitwise_or(word, term)
    return word


def _llvm_max_s8x4(call):
    a, b = call.args
    return _pack8([tirx.max(_sbyte(a, k), _sbyte(b, k)) for k in range(4)])


def _llvm_min_s8x4(call):
    a, b = call.args
    return _pack8([tirx.min(_sbyte(a, k), _sbyte(b, k)) for k in range(4)])


def _llvm_sxtab16(call):
    acc, w = call.args
    return _pack16(_lo16(acc) + _sbyte(w, 0), _hi16(acc) + _sbyte(w, 2))


def _llvm_sxtab16_ror8(call):
    acc, w = call.args
    return _pack16(_lo16(acc) + _sbyte(w, 1), _hi16(acc) + _sbyte(w, 3))


def _llvm_lo16(call):
    return _lo16(call.args[0])


def _llvm_hi16(call):
    return _hi16(call.args[0])


def _llvm_requantize(call):
    acc, mult, shift = call.args
    return requantize_expr(acc, mult, shift)


def _c_rule(c_name, address_arg=False):
    def rule(call):
        args = [tirx.address_of(call.args[0])] if address_arg else list(call.args)
        return tirx.call_pure_extern(_I32, c_name, *args)

    return rule


_OPS = {
    # name: (inputs, effect, llvm rule, C function)
    "load_s8x4": (1, _READ_STATE, _llvm_load_s8x4, "tvmf_load_s8x4"),
    "sxtb16": (1, _READ_STATE, _llvm_sxtb16, "tvmf_sxtb16"),
    "sxtb16_ror8": (1, _READ_STATE, _llvm_sxtb16_ror8, "tvmf_sxtb16_ror8"),
    "smlad": (3, _PURE, _llvm_smlad, "tvmf_smlad"),
    "smlabb": (3, _PURE, _llvm_smlabb, "tvmf_smlabb"),
    "smlatt": (3, _PURE, _llvm_smlatt, "tvmf_smlatt"),
    "requantize": (3, _PURE, _llvm_requantize, "tvmf_requantize"),
    "max_s8x4": (2, _READ_STATE, _llvm_max_s8x4, "tvmf_max_s8x4"),
    "min_s8x4": (2, _READ_STATE, _llvm_min_s8x4, "tvmf_min_s8x4"),
    "sxtab16": (2, _PURE, _llvm_sxtab16, "tvmf_sxtab16"),
    "sxtab16_ror8": (2, _PURE, _llvm_sxtab16_ror8, "tvmf_sxtab16_ror8"),
    "lo16": (1, _READ_STATE, _llvm_lo16, "tvmf_lo16"),
    "hi16": (1, _READ_STATE, _llvm_hi16, "tvmf_hi16"),
}
C_FUNCTIONS = tuple(v[3] for v in _OPS.values())


def _register():
    for short, (n_in, effect, llvm_rule, c_name) in _OPS.items():
        name = f"tvm_fused.{short}"
        if name not in tvm.ir.Op.list_op_names():
            _ir_ffi.RegisterOp(name, f"Cortex-M7 DSP intrinsic {c_name}")
        op = tvm.ir.Op.get(name)
        op.set_num_inputs(n_in)
        op.set_attr("TCallEffectKind", effect, plevel=20)
        op.set_attr("TScriptPrinterName", f"tvm_fused_{short}", plevel=20)
        tirx.register_intrin_lowering(name, target="c", f=_c_rule(c_name, short == "load_s8x4"), level=99)
        tirx.register_intrin_lowering(name, target="llvm", f=llvm_rule, level=99)


_register()


# ---------------------------------------------------------------- builders used by the kernels

def load_s8x4(load):
    """Four int8 at ``load`` and the next three addresses, as one little-endian int32 word."""
    return tirx.call_intrin(_I32, "tvm_fused.load_s8x4", load)


def sxtb16(w):
    return tirx.call_intrin(_I32, "tvm_fused.sxtb16", w)


def sxtb16_ror8(w):
    return tirx.call_intrin(_I32, "tvm_fused.sxtb16_ror8", w)


def smlad(a, b, acc):
    return tirx.call_intrin(_I32, "tvm_fused.smlad", a, b, acc)


def smlabb(a, b, acc):
    return tirx.call_intrin(_I32, "tvm_fused.smlabb", a, b, acc)


def smlatt(a, b, acc):
    return tirx.call_intrin(_I32, "tvm_fused.smlatt", a, b, acc)


def requantize(acc, mult, shift):
    """MultiplyByQuantizedMultiplier as one intrinsic (int32 PrimExprs or Python ints)."""
    return tirx.call_intrin(_I32, "tvm_fused.requantize", _i32(acc), _i32(int(mult)) if isinstance(mult, int)
                            else mult, _i32(int(shift)) if isinstance(shift, int) else shift)


def max_s8x4(a, b):
    """Byte-wise signed max of two words of four int8."""
    return tirx.call_intrin(_I32, "tvm_fused.max_s8x4", _i32(a), _i32(b))


def min_s8x4(a, b):
    """Byte-wise signed min of two words of four int8."""
    return tirx.call_intrin(_I32, "tvm_fused.min_s8x4", _i32(a), _i32(b))


def sxtab16(acc, w):
    """Add int8 bytes 0 and 2 of ``w`` to the two int16 lanes of ``acc`` (wrapping per lane)."""
    return tirx.call_intrin(_I32, "tvm_fused.sxtab16", acc, w)


def sxtab16_ror8(acc, w):
    """Add int8 bytes 1 and 3 of ``w`` to the two int16 lanes of ``acc`` (wrapping per lane)."""
    return tirx.call_intrin(_I32, "tvm_fused.sxtab16_ror8", acc, w)


def lo16(v):
    return tirx.call_intrin(_I32, "tvm_fused.lo16", v)


def hi16(v):
    return tirx.call_intrin(_I32, "tvm_fused.hi16", v)


def s8x4_word(value: int) -> int:
    """The int32 word holding ``value`` (an int8) in each of its four bytes."""
    b = value & 0xFF
    w = b | b << 8 | b << 16 | b << 24
    return w - (1 << 32) if w >= 1 << 31 else w


def uses_header(c_source: str) -> bool:
    return any(name + "(" in c_source for name in C_FUNCTIONS)


HEADER = r"""/* tvm_fused_dsp.h: Cortex-M7 DSP intrinsics used by the generated kernels (tvm-fused).
 * With __ARM_FEATURE_DSP each helper is one or two instructions; otherwise a portable C
 * fallback with identical integer semantics (wrapping int32), so host builds are bit-exact. */
#ifndef TVM_FUSED_DSP_H_
#define TVM_FUSED_DSP_H_
#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h>
#define TVMF_DSP 1
#endif

/* four int8 as one little-endian word (unaligned access is fine on Cortex-M7: one LDR) */
static inline int32_t tvmf_load_s8x4(const int8_t* p) {
  int32_t w;
  memcpy(&w, p, 4);
  return w;
}

/* sign-extended 16-bit halves (SXTH, ASR) */
static inline int32_t tvmf_lo16(int32_t v) { return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu); }
static inline int32_t tvmf_hi16(int32_t v) { return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> 16); }

#ifdef TVMF_DSP
static inline int32_t tvmf_sxtb16(int32_t w) { return (int32_t)__sxtb16((int8x4_t)w); }
static inline int32_t tvmf_sxtb16_ror8(int32_t w) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
  return r;
}
static inline int32_t tvmf_smlad(int32_t a, int32_t b, int32_t acc) {
  return __smlad((int16x2_t)a, (int16x2_t)b, acc);
}
static inline int32_t tvmf_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t tvmf_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
/* SSUB8 sets GE[k] where byte k of a >= byte k of b (signed); SEL picks per byte.
 * GCC models the GE flags of these ACLE intrinsics, so the pair is kept in order. */
static inline int32_t tvmf_max_s8x4(int32_t a, int32_t b) {
  (void)__ssub8((int8x4_t)a, (int8x4_t)b);
  return (int32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
}
static inline int32_t tvmf_min_s8x4(int32_t a, int32_t b) {
  (void)__ssub8((int8x4_t)a, (int8x4_t)b);
  return (int32_t)__sel((uint8x4_t)b, (uint8x4_t)a);
}
static inline int32_t tvmf_sxtab16(int32_t acc, int32_t w) { return (int32_t)__sxtab16((int16x2_t)acc, (int8x4_t)w); }
static inline int32_t tvmf_sxtab16_ror8(int32_t acc, int32_t w) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(w));
  return r;
}
#else
static inline int32_t tvmf_pack16(int32_t lo, int32_t hi) {
  return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}
static inline int32_t tvmf_sxtb16(int32_t w) {
  return tvmf_pack16((int8_t)(uint8_t)((uint32_t)w & 0xFFu), (int8_t)(uint8_t)(((uint32_t)w >> 16) & 0xFFu));
}
static inline int32_t tvmf_sxtb16_ror8(int32_t w) {
  return tvmf_pack16((int8_t)(uint8_t)(((uint32_t)w >> 8) & 0xFFu), (int8_t)(uint8_t)((uint32_t)w >> 24));
}
static inline int32_t tvmf_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmf_lo16(a) * tvmf_lo16(b)) + (uint32_t)(tvmf_hi16(a) * tvmf_hi16(b)));
}
static inline int32_t tvmf_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmf_lo16(a) * tvmf_lo16(b)));
}
static inline int32_t tvmf_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmf_hi16(a) * tvmf_hi16(b)));
}
static inline int32_t tvmf_sbyte(int32_t w, int k) { return (int8_t)(uint8_t)(((uint32_t)w >> (8 * k)) & 0xFFu); }
static inline int32_t tvmf_max_s8x4(int32_t a, int32_t b) {
  uint32_t r = 0;
  int k;
  for (k = 0; k < 4; ++k) {
    int32_t x = tvmf_sbyte(a, k), y = tvmf_sbyte(b, k);
    r |= ((uint32_t)(x > y ? x : y) & 0xFFu) << (8 * k);
  }
  return (int32_t)r;
}
static inline int32_t tvmf_min_s8x4(int32_t a, int32_t b) {
  uint32_t r = 0;
  int k;
  for (k = 0; k < 4; ++k) {
    int32_t x = tvmf_sbyte(a, k), y = tvmf_sbyte(b, k);
    r |= ((uint32_t)(x < y ? x : y) & 0xFFu) << (8 * k);
  }
  return (int32_t)r;
}
static inline int32_t tvmf_sxtab16(int32_t acc, int32_t w) {
  return tvmf_pack16(tvmf_lo16(acc) + tvmf_sbyte(w, 0), tvmf_hi16(acc) + tvmf_sbyte(w, 2));
}
static inline int32_t tvmf_sxtab16_ror8(int32_t acc, int32_t w) {
  return tvmf_pack16(tvmf_lo16(acc) + tvmf_sbyte(w, 1), tvmf_hi16(acc) + tvmf_sbyte(w, 3));
}
#endif

/* TFLite MultiplyByQuantizedMultiplier (double rounding), M in [0, 2^31), bit-exact with
 * tvm_fused/schedules/fixed_point.py. With p = acc * M and, for shift <= 0, e = -shift:
 *   e == 0: (p + 2^30) >> 31
 *   e >= 1: (p + 2^30 + 2^(30+e) - (p < 0 ? 2^31 : 0)) >> (31 + e)
 * i.e. SaturatingRoundingDoublingHighMul then RoundingDivideByPOT folded into one floor
 * division (floor(floor(y/a)/b) == floor(y/(ab)); TFLite's "x < 0" threshold bump only
 * matters where p < -2^30, and p < 0 gives the same floor there). For e >= 2 (almost every
 * conv channel) 2^(30+e) only touches the high word: SMULL, a 64-bit add, two 32-bit ops. */
static inline int32_t tvmf_requantize(int32_t acc, int32_t mult, int32_t shift) {
  int64_t p = (int64_t)acc * mult;
  if (__builtin_expect(shift <= -2, 1)) {
    int32_t e = -shift;
    /* + (p < 0 ? -2^30 : 2^30), branch-free: the sign word selects bit 31 of the addend */
    int32_t sign = (int32_t)(uint32_t)((uint64_t)p >> 32) >> 31;
    int32_t k = (int32_t)(0x40000000u | ((uint32_t)sign & 0x80000000u));
    uint64_t y = (uint64_t)p + (uint64_t)(int64_t)k;
    /* + 2^(30+e) then >> (31+e) == floor((floor(y / 2^(30+e)) + 1) / 2): two 32-bit shifts */
    return (((int32_t)(uint32_t)(y >> 32) >> (e - 2)) + 1) >> 1;
  }
  if (shift == 0) return (int32_t)((p + ((int64_t)1 << 30)) >> 31);
  if (shift == -1) {
    uint64_t add = ((uint64_t)1 << 30) + ((uint64_t)1 << 31) - (p < 0 ? ((uint64_t)1 << 31) : 0);
    return (int32_t)(((uint64_t)p + add) >> 32);
  }
  { /* shift > 0, rare: scale > 1; the reference's int64 formula, verbatim */
    int64_t prod = (int64_t)(((uint64_t)(int64_t)acc << shift) * (uint64_t)(int64_t)mult);
    int64_t nudge = prod >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((int64_t)((uint64_t)prod + (uint64_t)nudge) / ((int64_t)1 << 31));
  }
}

#endif
"""
