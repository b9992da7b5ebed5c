"""PAD / ONNX Pad -> ``pad_int8`` (spatial, with the zero point), folded into a following conv."""
from __future__ import annotations

import math

from ...errors import UnsupportedModelError
from ...schedules import PadParams, pad_int8
from .core import Match, QTensor, prim_value
from .registry import register_rule


@register_rule(
    "relax.nn.pad",
    tflite={"PAD": "spatial (H, W) only; same quantization in and out"},
    onnx={"Pad": "constant mode, value 0, spatial axes only; same quantization in and out"},
)
def pad(ctx, m: Match) -> QTensor:
    """``quantize(pad(dequantize(x), 0))`` -> int8 spatial pad with the zero point::

        y[n, h, w, c] = x[n, h - top, w - left, c] inside, x_zp outside

    The result remembers its source (``QTensor.padded_from``): a convolution reading it
    adds the pads to its own padding and reads ``x`` directly, so the pad kernel is
    dead code unless something else uses it.

    Before::

        y = R.quantize(R.nn.pad(R.dequantize(x, s, z), pad_width=[0, 0, 0, 0, 1, 1, 1, 1]), s, z)

    After::

        y = R.call_tir(pad, (x,), R.Tensor((1, H + 2, W + 2, C), "int8"))
    """
    call, out = m.call, m.out
    data = ctx.input(call.args[0], "pad")
    attrs = call.attrs
    widths = [int(v) for v in attrs.pad_width]
    if len(data.shape) != 4 or str(getattr(attrs, "pad_mode", "constant")) != "constant":
        raise UnsupportedModelError("only constant spatial padding of 4-D tensors is supported")
    pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(4)]
    if data.src_layout == "NCHW":
        h, w, others = pairs[2], pairs[3], (pairs[0], pairs[1])
    else:
        h, w, others = pairs[1], pairs[2], (pairs[0], pairs[3])
    pad_value = prim_value(call.args[1]) if len(call.args) > 1 else float(getattr(attrs, "pad_value", 0.0))
    if any(o != (0, 0) for o in others) or pad_value != 0.0:
        raise UnsupportedModelError("only spatial zero padding is supported")
    if not math.isclose(out.scale, data.scale, rel_tol=1e-6) or out.zero_point != data.zero_point:
        raise UnsupportedModelError("pad must keep the quantization of its input")
    p = PadParams(data.shape, (h[0], w[0], h[1], w[1]), data.zero_point)
    tensor = ctx.emit("pad", pad_int8(p), [data.var], p.out_shape, out.scale, out.zero_point, data.src_layout,
                      p, macs=0)
    tensor.padded_from = (data, p.padding)
    return tensor
