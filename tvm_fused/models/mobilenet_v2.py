"""MobileNetV2-like float ONNX graphs, built from seeded numpy weights (no downloads).

The zoo needs models of real MobileNetV2 shape (so memory plans and fusion chains are
realistic) without fetching trained weights; accuracy is irrelevant, only the graph
structure and sane int8 activation ranges matter.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13          # per-channel DequantizeLinear (axis) needs opset >= 13
IR_VERSION = 8      # readable by every onnxruntime / TVM we care about

# (expand ratio t, output channels c, repeats n, first stride s), MobileNetV2 paper, Table 2.
# t=None means "the model's expand_ratio"; the first block always has t=1.
_BLOCKS = [(1, 16, 1, 1), (None, 24, 2, 2), (None, 32, 3, 2), (None, 64, 4, 2),
           (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1)]
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of `divisor`, never going down by more than 10%.

    Same rule as the reference MobileNetV2 implementations (`_make_divisible`), so
    channel counts match published width-multiplier variants.
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def check_params(width, resolution, num_classes, expand_ratio, dw_kernel, num_blocks) -> None:
    if width not in (0.35, 0.5, 0.75, 1.0):
        raise ValueError(f"width must be one of 0.35, 0.5, 0.75, 1.0, got {width}")
    # Multiples of 16 (not only 32) so the common 144 variant exists; the last stride-2
    # stage then sees an odd size, which symmetric padding handles like TF's 'same'.
    if resolution % 16 or not 96 <= resolution <= 480:
        raise ValueError(f"resolution must be a multiple of 16 in 96..480, got {resolution}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if expand_ratio < 1:
        raise ValueError(f"expand_ratio must be >= 1, got {expand_ratio}")
    if dw_kernel not in (3, 5, 7):
        raise ValueError(f"dw_kernel must be 3, 5 or 7, got {dw_kernel}")
    total = sum(n for _, _, n, _ in _BLOCKS)
    if num_blocks is not None and not 1 <= num_blocks <= total:
        raise ValueError(f"num_blocks must be in 1..{total} or None, got {num_blocks}")


class _GraphBuilder:
    """Accumulates nodes and initializers; names are stable so output bytes are deterministic."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, groups: int = 1,
             act: bool = True, gain: float = 1.0) -> str:
        """Conv (+bias, i.e. BatchNorm already folded) and optional ReLU6.

        He-normal weights keep the activation variance roughly constant through ReLU
        layers; linear (projection) layers use a smaller gain because their outputs
        are summed on the residual path.
        """
        name = self._name("conv")
        fan_in = (cin // groups) * k * k
        std = gain * np.sqrt((2.0 if act else 1.0) / fan_in)
        w = (self.rng.standard_normal((cout, cin // groups, k, k)) * std).astype(np.float32)
        # Positive-leaning biases keep most ReLU6 units alive; small so they don't dominate.
        b = (self.rng.standard_normal(cout) * 0.1 + (0.1 if act else 0.0)).astype(np.float32)
        y = f"{name}_out"
        self.nodes.append(helper.make_node(
            "Conv", [x, self._const(f"{name}.weight", w), self._const(f"{name}.bias", b)], [y],
            name=name, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4,
            dilations=[1, 1], group=groups))
        if not act:
            return y
        return self.relu6(y)

    def relu6(self, x: str) -> str:
        name = self._name("relu6")
        lo = self._const(f"{name}.min", np.array(0.0, np.float32))
        hi = self._const(f"{name}.max", np.array(6.0, np.float32))
        y = f"{name}_out"
        self.nodes.append(helper.make_node("Clip", [x, lo, hi], [y], name=name))
        return y

    def add(self, a: str, b: str) -> str:
        name = self._name("add")
        y = f"{name}_out"
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=name))
        return y

    def head(self, x: str, cin: int, num_classes: int) -> str:
        gap, flat = self._name("gap"), self._name("flatten")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [f"{gap}_out"], name=gap))
        self.nodes.append(helper.make_node("Flatten", [f"{gap}_out"], [f"{flat}_out"], name=flat,
                                           axis=1))
        name = self._name("fc")
        w = (self.rng.standard_normal((num_classes, cin)) * np.sqrt(1.0 / cin)).astype(np.float32)
        b = (self.rng.standard_normal(num_classes) * 0.1).astype(np.float32)
        self.nodes.append(helper.make_node(
            "Gemm", [f"{flat}_out", self._const(f"{name}.weight", w), self._const(f"{name}.bias", b)],
            ["output"], name=name, transB=1))
        return "output"

    def model(self, resolution: int, num_classes: int, graph_name: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, resolution, resolution])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, num_classes])],
            initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="tvm_fused.models")
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def block_config(width: float, expand_ratio: int, num_blocks: int | None):
    """Yield (expand_ratio, out_channels, stride) for each inverted-residual block."""
    blocks = []
    for t, c, n, s in _BLOCKS:
        for i in range(n):
            blocks.append((expand_ratio if t is None else t, make_divisible(c * width), s if i == 0 else 1))
    return blocks if num_blocks is None else blocks[:num_blocks]


def mobilenet_v2_float(width: float = 0.35, resolution: int = 96, num_classes: int = 10,
                       expand_ratio: int = 6, dw_kernel: int = 3, num_blocks: int | None = None,
                       seed: int = 0, *, last_channels: int | None = None) -> onnx.ModelProto:
    """Float32 MobileNetV2 (BN folded into conv biases), NCHW input `input`, logits `output`.

    `num_blocks` truncates the inverted-residual stack (small test models);
    `last_channels` overrides the 1280-channel final 1x1 conv (default: 1280, scaled by
    width when width > 1, as in the paper).
    """
    check_params(width, resolution, num_classes, expand_ratio, dw_kernel, num_blocks)
    g = _GraphBuilder(seed)
    cin = make_divisible(_STEM_CHANNELS * width)
    x = g.conv("input", 3, cin, 3, 2)
    for t, cout, stride in block_config(width, expand_ratio, num_blocks):
        hidden = cin * t
        y = x
        if t != 1:
            y = g.conv(y, cin, hidden, 1, 1)
        y = g.conv(y, hidden, hidden, dw_kernel, stride, groups=hidden)
        # The residual doubles the variance of the sum; damp the projection so deep
        # stacks of residual blocks don't grow their activation range.
        y = g.conv(y, hidden, cout, 1, 1, act=False, gain=0.7 if stride == 1 and cin == cout else 1.0)
        if stride == 1 and cin == cout:
            y = g.add(x, y)
        x, cin = y, cout
    if last_channels is None:
        last_channels = make_divisible(_LAST_CHANNELS * width) if width > 1.0 else _LAST_CHANNELS
    x = g.conv(x, cin, last_channels, 1, 1)
    g.head(x, last_channels, num_classes)
    return g.model(resolution, num_classes, f"mobilenet_v2_w{width}_r{resolution}")
