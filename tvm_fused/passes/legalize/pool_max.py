"""MAX_POOL_2D / ONNX MaxPool -> ``max_pool_int8``."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedModelError
from ...schedules.pool_max import MaxPoolParams, max_pool_int8
from .core import Match, QTensor
from .layout import int8_out, qdq_in, requantize_to
from .registry import register_rule


def _max_pool(ctx, call, data: QTensor, act) -> QTensor:
    attrs = call.attrs
    if str(attrs.layout) != (data.src_layout or "NCHW"):
        raise UnsupportedModelError(f"max_pool2d layout {attrs.layout} differs from its input's")
    if bool(attrs.ceil_mode) or any(int(d) != 1 for d in attrs.dilation):
        raise UnsupportedModelError("max pooling with ceil_mode or dilation is not supported")
    p = MaxPoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(s) for s in attrs.strides),
                      tuple(int(v) for v in attrs.padding), *act)
    return ctx.emit("max_pool2d", max_pool_int8(p), [data.var], p.out_shape, data.scale, data.zero_point,
                    data.src_layout, p, macs=int(np.prod(p.out_shape)) * p.kernel[0] * p.kernel[1])


@register_rule(
    "relax.nn.max_pool2d", domain="int8",
    tflite={"MAX_POOL_2D": "same quantization in and out (TFLite requires it); fused activation as a clamp"},
)
def max_pool2d_int8(ctx, m: Match) -> QTensor | None:
    """TFLite's int8 MAX_POOL_2D, applied to the int8 tensor (``reference_integer_ops::MaxPool``)::

        y[n, oy, ox, c] = clamp(max_{kh, kw} x[n, oy * sh + kh - pad_top, ox * sw + kw - pad_left, c],
                                act_min, act_max)

    the max over the taps inside the input only (padded taps skipped; -128 is max's identity),
    ``act_min/act_max`` from a fused RELU/RELU6 (else -128, 127); no rescale (same quantization).

    Before::

        y = R.nn.max_pool2d(x, pool_size=[2, 2], strides=[2, 2], layout="NHWC")     # x: int8

    After::

        y = R.call_tir(max_pool2d, (x,), R.Tensor((1, H/2, W/2, C), "int8"))
    """
    data, act = int8_out(ctx, m)
    return None if data is None else _max_pool(ctx, m.call, data, act)


@register_rule(
    "relax.nn.max_pool2d",
    onnx={"MaxPool": "2-D; no dilation, no ceil_mode; requantized after if the output quantization differs"},
)
def max_pool2d(ctx, m: Match) -> QTensor:
    """``quantize(max_pool2d(dequantize(x)))``: the max pool at x's quantization (max commutes with
    the monotone requantization), then a requantize if the output's differs (see ``layout.requantize_to``)::

        m[n, oy, ox, c] = max_{kh, kw} x[n, oy * sh + kh - pad_top, ox * sw + kw - pad_left, c]
                          (taps inside the input only)
        y = m                                            (same quantization)
        y = clamp(MBQM(m - x_zp, M, s) + y_zp, act_min, act_max)    otherwise, M * 2^s = x_scale / y_scale

    Before::

        y = R.quantize(R.nn.max_pool2d(R.dequantize(x, s, z), pool_size=[3, 3], padding=[1, 1, 1, 1]), s, z)

    After::

        y = R.call_tir(max_pool2d, (x,), R.Tensor((1, H, W, C), "int8"))
    """
    data = qdq_in(ctx, m)
    return requantize_to(ctx, _max_pool(ctx, m.call, data, (-128, 127)), m.out)
