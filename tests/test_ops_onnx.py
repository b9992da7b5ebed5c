"""ONNX QDQ forms of Softmax, Sigmoid, Tanh, HardSwish, HardSigmoid, LeakyRelu, PRelu, Mul, Sub, Add (broadcast),
as ``onnxruntime.quantization.quantize_static`` writes them, against onnxruntime.

Tolerance: **1 int8 unit** per output. A QDQ graph means dequantize -> float op -> quantize;
onnxruntime (graph optimizations off) evaluates exactly that in float32 with its own
function approximations (MLAS sigmoid/tanh polynomials) and round-half-even. Our kernels are
integer: table lookups evaluated from the same float formula at compile time (an input can
land on the other side of a rounding tie when onnxruntime's float differs by an ulp), and
fixed-point softmax / multiply / add / subtract, which round once more than float math near
ties. Each of these single-op models is checked in isolation, so differences cannot
accumulate: every output must be within one unit, and almost all equal.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh

from tvm_fused.models.quantize import quantize_qdq

C, H, W = 8, 5, 6


def _model(nodes, inits=(), in_shape=(1, C, H, W), out_shape=(1, C, H, W)):
    """Float model ``x -> nodes (input "a", output "z") -> y``, quantized by quantize_static
    (QDQ, int8 activations, MinMax calibration on seeded random inputs)."""
    nodes = [helper.make_node("Identity", ["x"], ["a"]), *nodes, helper.make_node("Identity", ["z"], ["y"])]
    graph = helper.make_graph(nodes, "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return quantize_qdq(model, num_samples=4, seed=0)


def _qdq_by_hand(nodes, inits=(), out_scale=0.02, out_zp=0):
    """What quantize_static writes around an op it does not quantize itself (Tanh, HardSwish,
    Sub, PRelu are not in its QDQ registry; PRelu's slope stays float): the op runs in float between the DequantizeLinear of its
    producer and the QuantizeLinear of its consumer. ``x -> Q -> DQ -> nodes(a) -> z -> Q -> DQ -> y``."""
    shape = (1, C, H, W)
    # calibration-like scales: round ones (0.03 - 0.01 -> / 0.04) would make exact ties, where
    # onnxruntime rounds half to even and TFLite's fixed point half away from zero
    qp = [nh.from_array(np.array(0.0307, np.float32), "xs"), nh.from_array(np.array(-3, np.int8), "xz"),
          nh.from_array(np.array(out_scale, np.float32), "ys"), nh.from_array(np.array(out_zp, np.int8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["a"]), *nodes,
             helper.make_node("QuantizeLinear", ["z", "ys", "yz"], ["zq"]),
             helper.make_node("DequantizeLinear", ["zq", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [*qp, *inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _int8_const(name, shape, seed, scale=0.0113, zp=5):
    """A quantized initializer and its DequantizeLinear (output ``name``)."""
    q = np.random.default_rng(seed).integers(-128, 128, shape, dtype=np.int8)
    inits = [nh.from_array(q, name + "_q"), nh.from_array(np.array(scale, np.float32), name + "_s"),
             nh.from_array(np.array(zp, np.int8), name + "_z")]
    return helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"], [name]), inits


def _const(name, shape, seed):
    return nh.from_array(np.random.default_rng(seed).uniform(-1.5, 1.5, shape).astype(np.float32), name)


MODELS = {
    "Softmax": lambda: _model([helper.make_node("Softmax", ["a"], ["z"], axis=1)], in_shape=(1, 40),
                              out_shape=(1, 40)),
    "Softmax4d": lambda: _model([helper.make_node("Softmax", ["a"], ["z"], axis=1)]),
    "Sigmoid": lambda: _model([helper.make_node("Sigmoid", ["a"], ["z"])]),
    "Tanh": lambda: _qdq_by_hand([helper.make_node("Tanh", ["a"], ["z"])], out_scale=1 / 128),
    "HardSigmoid": lambda: _qdq_by_hand([helper.make_node("HardSigmoid", ["a"], ["z"], alpha=0.2, beta=0.5)],
                                        out_scale=1 / 255, out_zp=-128),
    "HardSwish": lambda: _qdq_by_hand([helper.make_node("HardSwish", ["a"], ["z"])], out_scale=0.025, out_zp=-110),
    "LeakyRelu": lambda: _model([helper.make_node("LeakyRelu", ["a"], ["z"], alpha=0.1)]),
    "PRelu": lambda: _qdq_by_hand([helper.make_node("PRelu", ["a", "slope"], ["z"])],
                                  [_const("slope", (C, 1, 1), 4)], out_scale=0.017, out_zp=-40),
    "PReluShared": lambda: _qdq_by_hand([helper.make_node("PRelu", ["a", "slope"], ["z"])],
                                        [nh.from_array(np.array([0.25], np.float32), "slope")], out_scale=0.017,
                                        out_zp=-40),
    "Mul": lambda: _model([helper.make_node("Mul", ["a", "k"], ["z"])], [_const("k", (C, 1, 1), 1)]),
    "Sub": lambda: _qdq_by_hand([_int8_const("k", (1, C, H, W), 2)[0], helper.make_node("Sub", ["a", "k"], ["z"])],
                                _int8_const("k", (1, C, H, W), 2)[1], out_scale=0.0419),
    "Add": lambda: _model([helper.make_node("Add", ["a", "k"], ["z"])], [_const("k", (C, 1, 1), 3)]),
    # squeeze-excite: x * sigmoid(mean(x)), two int8 tensors broadcast [1,C,H,W] * [1,C,1,1]
    "MulSE": lambda: _model([helper.make_node("GlobalAveragePool", ["a"], ["g"]),
                             helper.make_node("Sigmoid", ["g"], ["s"]),
                             helper.make_node("Mul", ["a", "s"], ["z"])]),
}


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_qdq_op_within_one_unit_of_onnxruntime(tmp_path, name):
    import tvm_fused

    model = MODELS[name]()
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    cm = tvm_fused.compile(str(path), progress=False, codegen=False)
    inp, out = cm.io["inputs"][0], cm.io["outputs"][0]
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    worst, differing, total = 0, 0, 0
    for _ in range(3):
        q = rng.integers(-128, 128, shape, dtype=np.int8)
        x = ((q.astype(np.float32) - inp["zero_point"]) * np.float32(inp["scale"])).astype(np.float32)
        want = np.rint(_ort(model, x) / np.float32(out["scale"])).astype(np.int64) + out["zero_point"]
        ours_in = q.transpose(0, 2, 3, 1) if q.ndim == 4 else q
        got = cm.reference(ours_in).astype(np.int64)
        if got.ndim == 4:
            got = got.transpose(0, 3, 1, 2)
        diff = np.abs(got - want)
        worst = max(worst, int(diff.max()))
        differing += int((diff > 0).sum())
        total += diff.size
    assert worst <= 1, f"{name}: off by {worst} units"
    assert differing <= max(2, total // 20), f"{name}: {differing}/{total} outputs differ by one unit"
