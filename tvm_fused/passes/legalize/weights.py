"""Helpers for rules with constant operands: the int32 bias of conv / fully connected."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedModelError
from ...schedules.fixed_point import round_half_away
from ..quant_graph import DequantConst


def bias_vector(bias: DequantConst | None, channels: int, in_scale, w_scale) -> np.ndarray:
    """int32 bias per output channel: the quantized bias as is (zero point 0), or a float
    bias quantized with the accumulator scale ``round_half_away(b / (in_scale * w_scale[c]))``,
    as TFLite's converter would; zeros without a bias."""
    if bias is None:
        return np.zeros(channels, np.int32)
    values = bias.values.reshape(-1)
    if values.size != channels:
        raise UnsupportedModelError(f"bias of {values.size} values for {channels} channels")
    if values.dtype.kind in "iu":
        if np.any(bias.zero_point != 0):
            raise UnsupportedModelError("a quantized bias must have zero point 0")
        return values.astype(np.int32)
    return round_half_away(bias.float_values().reshape(-1) / (in_scale * w_scale)).astype(np.int32)
