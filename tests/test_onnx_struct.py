"""ONNX QDQ data-movement ops, as ``onnxruntime.quantization.quantize_static`` writes them,
against onnxruntime with graph optimizations off (float math between the Q/DQ nodes).

Tolerance, and why: ops that only move or compare values (MaxPool, Transpose, Split,
Slice, Reshape, nearest Resize, and Concat of inputs sharing the output's quantization)
involve no rounding, so they must match exactly (0 units). Where a tensor changes scale
(Concat of an input quantized differently, AveragePool's division), onnxruntime computes
``round_half_even(real / s_out)`` in float while we use TFLite's fixed-point requantize and
round-half-away division, so a value on or near a rounding tie may differ by 1 int8 unit.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import tvm_fused
from tvm_fused.models.quantize import quantize_qdq


def _model(nodes, in_shape, out_shapes, inits=(), opset=13):
    """``nodes`` (reading "x") quantized by ``quantize_static``. It only wraps an op in Q/DQ when
    the op's input is already quantized, so a 1x1 Conv is put in front for the quantizer and
    removed afterwards: the graph input then feeds the QuantizeLinear that followed the Conv,
    and what remains is exactly what quantize_static wrote around the ops under test."""
    from onnx import numpy_helper as nh

    c = in_shape[1]
    w = nh.from_array(np.random.default_rng(0).normal(0, 0.5, (c, c, 1, 1)).astype(np.float32), "conv_w")
    conv = helper.make_node("Conv", ["x_in", "conv_w"], ["x"], name="front_conv")
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, s) for i, s in enumerate(out_shapes)]
    g = helper.make_graph([conv, *nodes], "struct",
                          [helper.make_tensor_value_info("x_in", TensorProto.FLOAT, in_shape)], outs,
                          [w, *inits])
    qdq = quantize_qdq(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), num_samples=4)
    graph = qdq.graph
    front = [n for n in graph.node if n.op_type == "Conv"]
    assert len(front) == 1
    producer = {o: n for n in graph.node for o in n.output}
    doomed, todo = [], [front[0]]
    while todo:  # the Conv and everything that only feeds it (input Q/DQ, weight DQ)
        n = todo.pop()
        if n not in doomed:
            doomed.append(n)
            todo += [producer[i] for i in n.input if i in producer]
    for n in doomed:
        graph.node.remove(n)
    graph.input.pop()
    graph.input.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape))
    onnx.checker.check_model(qdq)
    return qdq


def _compare(qdq, tolerance, seed=0):
    """Max |ours - onnxruntime| in int8 units of each output, and assert it is within ``tolerance``."""
    cm = tvm_fused.compile(qdq, progress=False, codegen=False)
    spec = cm.io["inputs"][0]
    q = np.random.default_rng(seed).integers(-128, 128, spec["shape"], dtype=np.int8)
    real = (np.float32(spec["scale"]) * (q.astype(np.float32) - spec["zero_point"])).astype(np.float32)
    x = real.transpose(0, 3, 1, 2) if len(spec["shape"]) == 4 else real  # ONNX is NCHW
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(qdq.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x})
    ours = cm.reference(q)
    ours = ours if isinstance(ours, list) else [ours]
    assert len(ours) == len(ref)
    worst = []
    for o, r, out_spec in zip(ours, ref, cm.io["outputs"]):
        r = r.transpose(0, 2, 3, 1) if r.ndim == 4 else r
        r_q = np.round(r / np.float32(out_spec["scale"])).astype(np.int32) + out_spec["zero_point"]
        diff = np.abs(o.astype(np.int32).reshape(r_q.shape) - r_q)
        worst.append(int(diff.max()))
    assert max(worst) <= tolerance, worst
    return cm, worst


def test_maxpool():
    nodes = [helper.make_node("MaxPool", ["x"], ["y0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    _compare(_model(nodes, [1, 4, 9, 10], [[1, 4, 5, 5]]), 0)


def test_average_pool():
    nodes = [helper.make_node("AveragePool", ["x"], ["y0"], kernel_shape=[2, 3], strides=[2, 1])]
    _compare(_model(nodes, [1, 3, 8, 7], [[1, 3, 4, 5]]), 1)


def test_transpose_reshape():
    shape = helper.make_tensor("s", TensorProto.INT64, [3], [1, 6, 20])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t", "s"], ["y0"])]
    _compare(_model(nodes, [1, 4, 6, 5], [[1, 6, 20]], [shape]), 0)


def test_split_two_outputs():
    split = helper.make_tensor("sp", TensorProto.INT64, [2], [2, 4])
    nodes = [helper.make_node("Split", ["x", "sp"], ["y0", "y1"], axis=1)]
    cm, _ = _compare(_model(nodes, [1, 6, 5, 4], [[1, 2, 5, 4], [1, 4, 5, 4]], [split]), 0)
    assert [o["name"] for o in cm.io["outputs"]] == ["y0", "y1"]


def test_slice():
    inits = [helper.make_tensor(n, TensorProto.INT64, [2], v)
             for n, v in (("st", [1, 7]), ("en", [5, -100]), ("ax", [2, 3]), ("sp", [2, -2]))]
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y0"])]
    _compare(_model(nodes, [1, 3, 6, 9], [[1, 3, 2, 4]], inits), 0)


@pytest.mark.parametrize("mode,nearest", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                          ("align_corners", "round_prefer_ceil")])
def test_resize_nearest(mode, nearest):
    inits = [helper.make_tensor("roi", TensorProto.FLOAT, [0], []),
             helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 3, 11, 8])]
    nodes = [helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y0"], mode="nearest",
                              coordinate_transformation_mode=mode, nearest_mode=nearest)]
    _compare(_model(nodes, [1, 3, 5, 4], [[1, 3, 11, 8]], inits), 0)


def test_concat_of_differently_quantized_inputs():
    """Concat(x, AveragePool(x)): the pooled branch has a smaller range, hence its own scale."""
    nodes = [helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                              count_include_pad=0),
             helper.make_node("Concat", ["x", "p"], ["y0"], axis=1)]
    qdq = _model(nodes, [1, 3, 6, 6], [[1, 6, 6, 6]])
    scales = {i.name: float(onnx.numpy_helper.to_array(i)) for i in qdq.graph.initializer
              if "scale" in i.name and not i.dims}
    assert len(set(scales.values())) >= 2, scales  # the two inputs really are quantized differently
    _compare(qdq, 1)

