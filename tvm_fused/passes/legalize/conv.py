"""CONV_2D / DEPTHWISE_CONV_2D / ONNX Conv -> ``conv2d_int8`` (regular, depthwise, 1x1)."""
from __future__ import annotations

import numpy as np
from tvm import relax

from ...errors import UnsupportedModelError
from ...schedules import Conv2DParams, conv2d_int8, quantize_multipliers
from .core import Match, QTensor
from .registry import register_rule
from .weights import bias_vector


@register_rule(
    "relax.nn.conv2d", bias=True,
    tflite={"CONV_2D": "int8 per-channel symmetric weights; no dilation; fused RELU/RELU6",
            "DEPTHWISE_CONV_2D": "channel multiplier 1; no dilation"},
    onnx={"Conv": "int8 per-channel symmetric weights (QDQ); group 1 or depthwise (group = channels, "
                  "multiplier 1); no dilation; NCHW"},
)
def conv2d(ctx, m: Match) -> QTensor:
    """``quantize(conv2d(dequantize(x), dequantize(w)) [+ bias])`` -> int8 NHWC convolution.

    For output channel ``c`` (``acc`` int32; weights symmetric, zero point 0)::

        acc[c] = bias_q[c] + sum_{kh,kw,ci} (x[h*s+kh-pad, w*s+kw-pad, ci] - x_zp) * w[kh, kw, ci, c]
        y[c]   = clamp(MultiplyByQuantizedMultiplier(acc[c], M[c], shift[c]) + y_zp, act_min, act_max)

    with ``M[c] * 2^shift[c] = x_scale * w_scale[c] / y_scale`` (double precision, as TFLite's
    ``PopulateConvolutionQuantizationParams``), ``bias_q`` the int32 bias (a float bias is
    quantized with ``x_scale * w_scale[c]``), padded taps reading ``x_zp``. A zero pad made by
    the ``pad`` rule right before is folded into ``pad``. Kinds: ``conv2d``, ``conv2d_1x1``,
    ``depthwise_conv2d`` (groups = channels, multiplier 1).

    Before::

        lv = R.dequantize(x, R.const(0.02), R.const(-3))                  # x: int8 NCHW
        w = R.dequantize(R.const(w_int8), R.const(w_scales), R.const(0), axis=0)
        c = R.nn.conv2d(lv, w, padding=[1, 1, 1, 1])
        y = R.quantize(R.clip(c + b, 0, 6), R.const(0.05), R.const(-128))

    After::

        y = R.call_tir(conv2d, (x_nhwc, w8, table), R.Tensor((1, H, W, C), "int8"))  # depthwise: [w8,] w32, table

    with the constants laid out for the micro-kernel (``schedules/weight_layout.py``): OHWI (HWC and
    channel pairs if depthwise) weights, table = [bias - z_in * sum(w), M, shift] per channel.
    """
    call, out = m.call, m.out
    attrs = call.attrs
    data = ctx.input(call.args[0], "conv2d")
    weight = ctx.const(call.args[1])
    if weight is None or weight.values.dtype != np.int8:
        raise UnsupportedModelError("conv2d weights must be int8 constants (quantize_static per_channel)")
    if any(int(d) != 1 for d in attrs.dilation):
        raise UnsupportedModelError("dilated convolutions are not supported")
    data_layout, kernel_layout = str(attrs.data_layout), str(attrs.kernel_layout)
    if data_layout not in ("NCHW", "NHWC"):
        raise UnsupportedModelError(f"conv2d data layout {data_layout} is not supported")
    if data.src_layout and data.src_layout != data_layout:
        raise UnsupportedModelError(f"conv2d on {data_layout} data imported as {data.src_layout}")
    padding = tuple(int(p) for p in attrs.padding)  # top, left, bottom, right
    if data.padded_from is not None:  # fold an explicit zero-point pad into the convolution
        data, pads = data.padded_from
        padding = tuple(a + b for a, b in zip(padding, pads))
    w_hwio = weight.values.transpose([kernel_layout.index(c) for c in "HWIO"])
    o_axis = kernel_layout.index("O")
    kh, kw, cin_per_group, cout = w_hwio.shape
    groups = int(attrs.groups)
    channels = data.shape[3]
    depthwise = groups > 1
    if depthwise and not (groups == channels == cout and cin_per_group == 1):
        raise UnsupportedModelError(
            f"grouped convolution (groups={groups}, {channels}->{cout} channels) is not supported; "
            "only depthwise with channel multiplier 1")
    if not depthwise and cin_per_group != channels:
        raise UnsupportedModelError("conv2d weight does not match the input channels")
    w_scale = weight.scale_along(o_axis, cout)
    if np.any(np.asarray(weight.zero_point) != 0):
        raise UnsupportedModelError("conv2d weights must be symmetric (zero point 0)")
    p = Conv2DParams(data.shape, cout, (kh, kw), tuple(int(s) for s in attrs.strides), padding,
                     depthwise, data.zero_point, out.zero_point, out.act_min, out.act_max)
    mult, shift = quantize_multipliers((data.scale * w_scale) / out.scale)
    w = np.ascontiguousarray(w_hwio[:, :, 0, :] if depthwise else w_hwio).astype(np.int8)
    b = bias_vector(m.bias, cout, data.scale, w_scale)
    kind = "depthwise_conv2d" if depthwise else ("conv2d_1x1" if (kh, kw) == (1, 1) else "conv2d")
    func, packed = conv2d_int8(p, w, b, mult, shift)  # constants in the micro-kernel's layout
    consts = [relax.const(c) for c in packed]
    return ctx.emit(kind, func, [data.var, *consts], p.out_shape, out.scale, out.zero_point,
                    data_layout, p, macs=p.macs)
