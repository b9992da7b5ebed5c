"""The fixed-point requantizer: one definition, checked against exact integer math."""
import numpy as np
import pytest
import tvm
from tvm import te

from tvm_fused.schedules.fixed_point import (multiply_by_quantized_multiplier, quantize_multiplier,
                                              requantize_expr)


def _mbqm_exact(x, m, shift):
    """TFLite's MultiplyByQuantizedMultiplier on Python ints (gemmlowp semantics, spelled out)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = x * (1 << left)
    ab = a * m
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    q = abs(ab + nudge) // (1 << 31)
    high = q if ab + nudge >= 0 else -q
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


class TestQuantizeMultiplier:
    def test_known_values(self):
        assert quantize_multiplier(0.5) == (1 << 30, 0)
        assert quantize_multiplier(0.25) == (1 << 30, -1)
        assert quantize_multiplier(1.0) == (1 << 30, 1)
        assert quantize_multiplier(0.0) == (0, 0)

    def test_reconstructs_the_real_multiplier(self, rng):
        for real in rng.uniform(1e-6, 4.0, size=200):
            m, s = quantize_multiplier(float(real))
            assert (1 << 30) <= m < (1 << 31)
            assert abs(m * 2.0 ** (s - 31) - real) <= real * 2 ** -30

    def test_rejects_negative(self):
        with pytest.raises(ValueError):
            quantize_multiplier(-0.1)


def test_numpy_reference_matches_exact_integer_math(rng):
    xs = rng.integers(-(2**24), 2**24, size=300)
    for real in [0.0007, 0.013, 0.49, 0.5, 0.9999, 1.7, 3.2]:
        m, s = quantize_multiplier(real)
        got = multiply_by_quantized_multiplier(xs, m, s)
        want = [_mbqm_exact(int(x), m, s) for x in xs]
        assert got.tolist() == want


def test_tie_rounding_is_gemmlowps():
    """Ties in the doubling high-mul round up for positives and toward zero for negatives;
    ties in the final right shift round away from zero (RoundingDivideByPOT)."""
    m, s = quantize_multiplier(0.5)
    assert multiply_by_quantized_multiplier([3, -3, 5, -5], m, s).tolist() == [2, -1, 3, -2]
    m, s = quantize_multiplier(0.25)
    assert multiply_by_quantized_multiplier([6, -6, 2, -2], m, s).tolist() == [2, -2, 1, -1]


@pytest.mark.parametrize("per_channel", [False, True])
def test_tir_requantize_matches_numpy(rng, per_channel):
    n = 64
    reals = rng.uniform(0.0005, 2.5, size=n)
    pairs = [quantize_multiplier(float(r)) for r in reals]
    mult = np.array([p[0] for p in pairs], np.int32)
    shift = np.array([p[1] for p in pairs], np.int32)
    acc = te.placeholder((n,), "int32", name="acc")
    if per_channel:
        mb = te.placeholder((n,), "int32", name="m")
        sb = te.placeholder((n,), "int32", name="s")
        out = te.compute((n,), lambda i: requantize_expr(acc[i], mb[i], sb[i]), name="out")
        args = [acc, mb, sb, out]
    else:
        mult[:], shift[:] = mult[0], shift[0]
        out = te.compute((n,), lambda i: requantize_expr(acc[i], int(mult[0]), int(shift[0])), name="out")
        args = [acc, out]
    f = tvm.compile(te.create_prim_func(args), target="llvm")
    x = rng.integers(-(2**22), 2**22, size=n).astype(np.int32)
    dev = tvm.cpu()
    bufs = [tvm.runtime.tensor(x, dev)]
    if per_channel:
        bufs += [tvm.runtime.tensor(mult, dev), tvm.runtime.tensor(shift, dev)]
    y = tvm.runtime.tensor(np.zeros(n, np.int32), dev)
    f(*bufs, y)
    assert y.numpy().tolist() == multiply_by_quantized_multiplier(x, mult, shift).tolist()
