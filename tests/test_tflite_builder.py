"""The test-model writer (tests/tflite_builder.py) makes models the interpreter and TVM read."""
import numpy as np
import tflite
import tvm
from tvm.relax.frontend.tflite import from_tflite

from tflite_builder import ModelBuilder, run_reference, single_op_model


def _q(shape, scale, zp, **kw):
    return dict(shape=shape, dtype="int8", scale=scale, zero_point=zp, **kw)


def test_single_op_softmax_runs_in_reference_interpreter():
    buf = single_op_model("SOFTMAX", [_q([1, 10], 0.1, 3)], [_q([1, 10], 1 / 256, -128)],
                          "SoftmaxOptions", beta=1.0)
    x = np.arange(-5, 5, dtype=np.int8).reshape(1, 10) * 7
    (y,) = run_reference(buf, [x])
    # reference: softmax of the dequantized input, quantized to 1/256 (within one unit)
    real = (x.astype(np.float64) - 3) * 0.1
    p = np.exp(real - real.max()) / np.exp(real - real.max()).sum()
    assert np.abs(y.astype(int) - (np.round(p * 256) - 128)).max() <= 1
    assert y.dtype == np.int8 and y.shape == (1, 10)


def test_constants_per_channel_options_and_two_outputs():
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.tensor([1, 4, 4, 3], "int8", 0.05, -2)
    w = b.tensor([5, 1, 1, 3], "int8", scale=[0.01, 0.02, 0.03, 0.04, 0.05], zero_point=0,
                 data=rng.integers(-127, 128, (5, 1, 1, 3)))
    bias = b.tensor([5], "int32", scale=[0.05 * s for s in (0.01, 0.02, 0.03, 0.04, 0.05)], zero_point=0,
                    data=rng.integers(-100, 100, 5))
    c = b.tensor([1, 4, 4, 5], "int8", 0.1, 1)
    b.op("CONV_2D", [x, w, bias], [c], "Conv2DOptions", version=3, padding=0, stride_w=1, stride_h=1,
         fused_activation_function="RELU6")
    k = b.tensor([1, 1, 1, 5], "int8", 0.02, 0, data=rng.integers(-128, 128, (1, 1, 1, 5)))
    s = b.tensor([1, 4, 4, 5], "int8", 0.12, -5)
    b.op("ADD", [c, k], [s], "AddOptions", fused_activation_function="NONE")
    r = b.tensor([1, 80], "int8", 0.1, 1)
    b.op("RESHAPE", [c], [r], "ReshapeOptions", new_shape=[1, 80])
    buf = b.build([x], [s, r])
    xin = rng.integers(-128, 128, (1, 4, 4, 3), dtype=np.int8)
    s_out, r_out = run_reference(buf, [xin])
    assert s_out.shape == (1, 4, 4, 5) and r_out.shape == (1, 80)
    assert len(np.unique(r_out)) > 3  # not saturated: the per-channel conv really ran
    mod = from_tflite(tflite.Model.GetRootAsModel(buf, 0))
    assert isinstance(mod, tvm.IRModule)
    assert len(mod["main"].params) == 1
