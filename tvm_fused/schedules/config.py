"""The schedule space of the micro-kernels: one small typed config per kernel family.

Every knob has a default that is already fast on Cortex-M7 (measured on QEMU
mps2-an500, see benchmarks/kernels.py); a tuner may search the space given by
``space()``. Knobs change only the loop structure, never the arithmetic, so every
point of the space is bit-exact with every other.
"""
from __future__ import annotations

from contextlib import contextmanager
import contextvars
from dataclasses import dataclass, fields
import itertools


@dataclass(frozen=True)
class GemmConfig:
    """Regular conv / fully connected as a GEMM: output pixels x output channels x taps.

    pixel_block x channel_block int32 accumulators stay in registers; each 4-tap word of
    input and weights is sign-extended once (SXTB16) and used by pixel_block or
    channel_block SMLADs. ``unroll_words``: taps loops of at most this many 4-byte words
    are unrolled fully (no loop overhead), longer ones stay loops. ``channels_outer``: loop
    order, channel blocks outside pixel blocks (weight-stationary; the default streams pixels
    outside, input-stationary). Same instructions give or take loop overhead, but on a board a
    different order of flash (weights) and SRAM (inputs) traffic: a knob for cycles."""

    # 2x2: 4 accumulators + 4 unpacked input pairs fit the registers; 2x4 spills (measured on
    # mbv2_035_96, QEMU: 2x2x4 31.6 M instructions, 4x2x4 33.0 M, 1x4x4 33.2 M, 2x4x16 32.6 M)
    pixel_block: int = 2
    channel_block: int = 2
    unroll_words: int = 4
    channels_outer: bool = False

    @staticmethod
    def space():
        return {"pixel_block": [1, 2, 4], "channel_block": [1, 2, 4], "unroll_words": [0, 2, 4, 8, 16],
                "channels_outer": [False, True]}


@dataclass(frozen=True)
class DepthwiseConfig:
    """Depthwise conv: 4 channels per SXTB16 pair, one SMLABB/SMLATT per channel and tap.

    ``unroll_groups``: channel groups of 4 computed per loop iteration (their taps interleave
    for the scheduler; 1 = a plain loop over groups). ``pixel_block``: interior output pixels
    computed together (2: each tap's weights loaded once for both, and with stride 1 the shared
    input words loaded and unpacked once; 8 accumulators per group)."""

    # measured per task on QEMU by benchmarks/knobs.py (mbv2_035_96's ten depthwise shapes):
    # unroll_groups 2 beats 1 on every one (1.6-3.7%; whole model 31.52 M -> 31.30 M instructions);
    # pixel_block 2 loses on all but the 6x6 ones (registers spill), so it is left to the tuner
    unroll_groups: int = 2
    pixel_block: int = 1

    @staticmethod
    def space():
        return {"unroll_groups": [1, 2], "pixel_block": [1, 2]}


def candidates(config_cls):
    """Every point of a config's space (for a tuner)."""
    space = config_cls.space()
    names = [f.name for f in fields(config_cls)]
    for values in itertools.product(*(space[n] for n in names)):
        yield config_cls(**dict(zip(names, values)))


# The active tuning (tvm_fused.tune): a callable ``params -> config or None`` consulted by each
# kernel built without an explicit config (unfused kernels and fused row kernels alike).
_CHOOSER = contextvars.ContextVar("tvm_fused_schedule_chooser", default=None)


def chosen(params):
    """The config the active tuning picks for a kernel's params (Conv2DParams, DenseParams), or None."""
    chooser = _CHOOSER.get()
    return chooser(params) if chooser is not None else None


@contextmanager
def use_configs(chooser):
    """Within this block, kernels without an explicit config take ``chooser(params)`` (None = default)."""
    token = _CHOOSER.set(chooser)
    try:
        yield
    finally:
        _CHOOSER.reset(token)
