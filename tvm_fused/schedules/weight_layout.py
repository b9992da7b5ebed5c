"""Offline constant layouts: what each micro-kernel reads, prepared at compile time.

Every conv-like kernel takes those of these constants it reads (flash, ``conv_constants``):

- ``w8``  int8: regular conv OHWI (each output channel's taps contiguous, so 4 taps are
  one word for SXTB16/SMLAD); fully connected (out, in); depthwise HWC (tail channels).
- ``w32`` int32: depthwise only: per group of 4 channels and per tap, two words of int16
  pairs ``(w[c0] | w[c2] << 16, w[c1] | w[c3] << 16)``, the order SXTB16 unpacks inputs in.
- ``table`` int32: ``[bias', multiplier, shift]``, C_out each, where the input zero
  point is folded into the bias (padded taps read the zero point, so this is exact):

      sum_t (x_t - z) w_t + b = sum_t x_t w_t + (b - z * sum_t w_t)

All int32 values wrap modulo 2**32 like the accumulators do.
"""
from __future__ import annotations

import numpy as np


def _wrap_i32(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    return ((v + 2**31) % 2**32 - 2**31).astype(np.int32)


def folded_bias(bias, weight_sums, in_zp) -> np.ndarray:
    """``b - z_in * sum_t w_t`` per output channel, wrapped to int32."""
    return _wrap_i32(np.asarray(bias, np.int64) - int(in_zp) * np.asarray(weight_sums, np.int64))


def folded_table(bias, weight_sums, in_zp, mult, shift) -> np.ndarray:
    bias_f = folded_bias(bias, weight_sums, in_zp)
    return np.concatenate([bias_f, np.asarray(mult, np.int32), np.asarray(shift, np.int32)]).astype(np.int32)


def pack_depthwise_pairs(w_tc: np.ndarray) -> np.ndarray:
    """(taps, C) int8 -> int32 words [C // 4][taps][2] of int16 pairs (c0, c2), (c1, c3)."""
    taps, c = w_tc.shape
    groups = c // 4
    if groups == 0:
        return np.zeros(0, np.int32)
    w = w_tc[:, :groups * 4].astype(np.int64).reshape(taps, groups, 4).transpose(1, 0, 2)
    lo = np.stack([w[..., 0], w[..., 1]], axis=-1) & 0xFFFF
    hi = np.stack([w[..., 2], w[..., 3]], axis=-1)
    return _wrap_i32(lo | (hi << 16)).reshape(-1)


def conv_constants(p) -> list[str]:
    """Which constants a conv kernel takes, in order: only those its micro-kernels read
    (an unused pointer parameter would be a compiler warning)."""
    c = p.in_shape[3]
    if not p.depthwise:
        return ["w8", "table"]
    return (["w8"] if c % 4 else []) + (["w32"] if c >= 4 else []) + ["table"]


def pack_conv(p, weight, bias, mult, shift) -> list[np.ndarray]:
    """Conv2DParams + HWIO (HWC if depthwise) int8 weights -> the arrays ``conv_constants(p)`` names."""
    weight = np.asarray(weight, np.int8)
    if p.depthwise:
        kh, kw, c = weight.shape
        w_tc = weight.reshape(kh * kw, c)
        sums = w_tc.astype(np.int64).sum(axis=0)
        arrays = {"w8": np.ascontiguousarray(w_tc.reshape(-1)), "w32": pack_depthwise_pairs(w_tc),
                  "table": folded_table(bias, sums, p.in_zp, mult, shift)}
        return [arrays[n] for n in conv_constants(p)]
    ohwi = np.ascontiguousarray(weight.transpose(3, 0, 1, 2))
    sums = ohwi.astype(np.int64).reshape(ohwi.shape[0], -1).sum(axis=1)
    return [ohwi.reshape(-1), folded_table(bias, sums, p.in_zp, mult, shift)]


def pack_dense(p, weight, bias, mult, shift) -> list[np.ndarray]:
    """DenseParams + (in, out) int8 weights -> [w8 (out, in), table]."""
    w_oi = np.ascontiguousarray(np.asarray(weight, np.int8).T)
    sums = w_oi.astype(np.int64).sum(axis=1)
    return [w_oi.reshape(-1), folded_table(bias, sums, p.in_zp, mult, shift)]
