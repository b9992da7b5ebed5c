"""Write the ONNX QDQ model-family fixtures of issue 8 into tests/fixtures/families/ (run by hand, rarely).

The ONNX counterparts of tools/make_tflite_fixtures.py's families: float graphs built with
`onnx.helper` from seeded numpy weights (NCHW, as ONNX exporters write them), then quantized
with onnxruntime's `quantize_static` in QDQ format, exactly as the zoo is
(`tvm_fused.models.quantize.quantize_qdq`: int8 activations, per-channel int8 weights, MinMax
calibration on seeded uniform[-1, 1] inputs). Needs only the project's venv (onnx, onnxruntime):

    PYTHONPATH=. .venv/bin/python tools/make_onnx_fixtures.py [--out tests/fixtures/families] [NAME ...]

- classifier_softmax: Conv 3x3 s2 + Relu, MaxPool 2x2, depthwise Conv 3x3 (group = C) + Relu,
  Conv 1x1 + Relu, GlobalAveragePool, Flatten, Gemm, Softmax.
- mbv3_block: Conv 3x3 s2 + HardSwish, Conv 1x1 + HardSwish, depthwise Conv 3x3 + HardSwish,
  squeeze-excite (GlobalAveragePool, Conv 1x1 + Relu, Conv 1x1 + HardSigmoid, Mul broadcast over
  H and W), Conv 1x1, residual Add, GlobalAveragePool, Flatten, Gemm.
- yolo_head: Conv 3x3 + LeakyRelu(0.1) and MaxPool 2x2 down to 8x8, coarse head (Conv 1x1,
  Reshape to [1, 3, 7, 64], Sigmoid), Conv 1x1 + LeakyRelu, Resize nearest x2, Concat with the
  16x16 route, Conv 3x3 + LeakyRelu, fine head (Reshape to [1, 3, 7, 256], Sigmoid). Two outputs.

onnxruntime's QDQ quantizer has no rule for HardSwish / HardSigmoid: they stay float ops between
a DequantizeLinear and a QuantizeLinear, which is the QDQ form a compiler must recognize.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tvm_fused.models.quantize import quantize_qdq  # noqa: E402

OPSET = 13           # as the zoo; mbv3_block needs 14 (HardSwish)
IR_VERSION = 8
SEED = 0


class Graph:
    """Seeded float graph builder; `conv` folds a random BatchNorm into He-scaled weights."""

    def __init__(self, name: str, input_shape, opset: int = OPSET):
        self.name, self.opset = name, opset
        self.rng = np.random.default_rng(SEED)
        self.nodes, self.inits, self.outputs = [], [], []
        self.input = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))
        self.shapes = {"input": list(input_shape)}
        self._n = 0

    def _name(self, op):
        self._n += 1
        return f"{op.lower()}_{self._n}"

    def const(self, array, name=None):
        name = name or self._name("const")
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, shape, **attrs):
        out = self._name(op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = list(shape)
        return out

    def conv(self, x, cout, k, stride=1, group=1, act=None):
        n, cin, h, w = self.shapes[x]
        fan_in = cin // group * k * k
        wgt = (self.rng.standard_normal((cout, cin // group, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        bias = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        pad = k // 2
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        y = self.node("Conv", [x, self.const(wgt), self.const(bias)], [n, cout, oh, ow], kernel_shape=[k, k],
                      strides=[stride, stride], pads=[pad] * 4, group=group)
        if act == "relu":
            y = self.node("Relu", [y], self.shapes[y])
        elif act == "leaky":
            y = self.node("LeakyRelu", [y], self.shapes[y], alpha=0.1)
        elif act == "hswish":
            y = self.node("HardSwish", [y], self.shapes[y])
        elif act == "hsigmoid":
            y = self.node("HardSigmoid", [y], self.shapes[y], alpha=1.0 / 6.0, beta=0.5)
        return y

    def maxpool(self, x):
        n, c, h, w = self.shapes[x]
        return self.node("MaxPool", [x], [n, c, h // 2, w // 2], kernel_shape=[2, 2], strides=[2, 2])

    def gap(self, x):
        n, c, _, _ = self.shapes[x]
        return self.node("GlobalAveragePool", [x], [n, c, 1, 1])

    def dense(self, x, units):
        n, c = self.shapes[x][0], int(np.prod(self.shapes[x][1:]))
        flat = self.node("Flatten", [x], [n, c], axis=1)
        wgt = (self.rng.standard_normal((c, units)) * np.sqrt(1.0 / c)).astype(np.float32)
        bias = (self.rng.standard_normal(units) * 0.1).astype(np.float32)
        return self.node("Gemm", [flat, self.const(wgt), self.const(bias)], [n, units])

    def output(self, x, name):
        """Make the node that produces `x` a graph output called `name`."""
        producer = next(n for n in self.nodes if x in n.output)
        producer.output[list(producer.output).index(x)] = name
        for n in self.nodes:
            n.input[:] = [name if i == x else i for i in n.input]
        self.shapes[name] = self.shapes[x]
        x = name
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shapes[x]))

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, [self.input], self.outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name="tvm-fused")
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m, full_check=True)
        return m


def classifier_softmax() -> onnx.ModelProto:
    g = Graph("classifier_softmax", (1, 3, 32, 32))
    x = g.conv("input", 16, 3, stride=2, act="relu")
    x = g.maxpool(x)
    x = g.conv(x, 16, 3, group=16, act="relu")
    x = g.conv(x, 32, 1, act="relu")
    x = g.dense(g.gap(x), 10)
    g.output(g.node("Softmax", [x], g.shapes[x], axis=-1), "probs")
    return g.model()


def mbv3_block() -> onnx.ModelProto:
    g = Graph("mbv3_block", (1, 3, 32, 32), opset=14)
    x = g.conv("input", 16, 3, stride=2, act="hswish")
    y = g.conv(x, 48, 1, act="hswish")
    y = g.conv(y, 48, 3, group=48, act="hswish")
    s = g.conv(g.gap(y), 12, 1, act="relu")
    s = g.conv(s, 48, 1, act="hsigmoid")
    y = g.node("Mul", [y, s], g.shapes[y])
    y = g.conv(y, 16, 1)
    x = g.node("Add", [x, y], g.shapes[x])
    g.output(g.dense(g.gap(x), 10), "logits")
    return g.model()


def yolo_head() -> onnx.ModelProto:
    g = Graph("yolo_head", (1, 3, 64, 64))
    x = g.maxpool(g.conv("input", 8, 3, act="leaky"))          # 32
    x = g.maxpool(g.conv(x, 16, 3, act="leaky"))               # 16
    route = g.conv(x, 24, 3, act="leaky")
    x = g.conv(g.maxpool(route), 32, 3, act="leaky")           # 8

    def head(t, name):
        t = g.conv(t, 3 * 7, 1)
        n, c, h, w = g.shapes[t]
        t = g.node("Reshape", [t, g.const(np.array([n, 3, 7, h * w], np.int64))], [n, 3, 7, h * w])
        g.output(g.node("Sigmoid", [t], g.shapes[t]), name)

    head(x, "coarse")
    u = g.conv(x, 16, 1, act="leaky")
    n, c, h, w = g.shapes[u]
    u = g.node("Resize", [u, "", g.const(np.array([1, 1, 2, 2], np.float32))], [n, c, 2 * h, 2 * w],
               mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    f = g.node("Concat", [u, route], [n, c + g.shapes[route][1], 2 * h, 2 * w], axis=1)
    head(g.conv(f, 24, 3, act="leaky"), "fine")
    return g.model()


FIXTURES = {"classifier_softmax": classifier_softmax, "mbv3_block": mbv3_block, "yolo_head": yolo_head}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "families"))
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"fixtures to write (default: all): {', '.join(FIXTURES)}")
    args = ap.parse_args()
    unknown = sorted(set(args.names) - set(FIXTURES))
    if unknown:
        ap.error(f"unknown fixture(s) {', '.join(unknown)}; choose from {', '.join(FIXTURES)}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or FIXTURES:
        qdq = quantize_qdq(FIXTURES[name](), num_samples=16, seed=SEED + 1)
        path = os.path.join(args.out, f"{name}.onnx")
        onnx.save(qdq, path)
        ops = sorted({n.op_type for n in qdq.graph.node} - {"QuantizeLinear", "DequantizeLinear"})
        print(f"{path}: {os.path.getsize(path)} bytes; ops besides Q/DQ: {', '.join(ops)}")


if __name__ == "__main__":
    main()
