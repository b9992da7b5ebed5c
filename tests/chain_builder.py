"""Build random legalized modules (chains of int8 convs and residual adds) directly,
without an ONNX/TFLite round trip, for property-based fusion tests."""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
from tvm import relax

from tvm_fused.passes.legalize_qdq import IO_ATTR, MACS_ATTR, OP_ATTR, PARAMS_ATTR
from tvm_fused.schedules import AddParams, Conv2DParams, add_int8, conv2d_int8, quantize_multipliers


def same_padding(size, k, s):
    """TF 'SAME': output ceil(size / s); extra padding goes to the bottom/right."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _emit(bb, kind, func, args, shape, params, macs):
    func = func.with_attrs({OP_ATTR: kind, MACS_ATTR: int(macs),
                            PARAMS_ATTR: json.dumps(_plain(asdict(params)))})
    gv = bb.add_func(func.without_attr("global_symbol"), kind)
    return bb.emit(relax.call_tir(gv, args, relax.TensorType(tuple(shape), "int8")), kind)


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def build_chain_module(in_shape, layers, seed=0):
    """``layers``: dicts {"op": "conv", "k", "stride", "pad": "same"|"valid", "out", "depthwise"}
    or {"op": "add"} (adds the most recent earlier tensor of the same shape, if any).
    Returns (module, list of kernel call names in the chain)."""
    rng = np.random.default_rng(seed)
    x = relax.Var("input", relax.TensorType(tuple(in_shape), "int8"))
    bb = relax.BlockBuilder()
    names = []
    with bb.function("main", [x]):
        with bb.dataflow():
            tensors = [(x, tuple(in_shape), int(rng.integers(-20, 20)), float(rng.uniform(0.01, 0.05)))]
            for spec in layers:
                cur, shape, zp, scale = tensors[-1]
                if spec["op"] == "add":
                    partner = next((t for t in reversed(tensors[:-1]) if t[1] == shape), None)
                    if partner is None:
                        continue
                    out_zp, out_scale = int(rng.integers(-20, 20)), float(rng.uniform(0.02, 0.08))
                    p = AddParams(shape, scale, zp, partner[3], partner[2], out_scale, out_zp)
                    var = _emit(bb, "add", add_int8(p), [cur, partner[0]], shape, p, 0)
                    tensors.append((var, shape, out_zp, out_scale))
                    names.append(var.name)
                    continue
                n, h, w, c = shape
                k, s = spec["k"], spec["stride"]
                if spec["pad"] == "same" or h < k or w < k:  # valid needs the kernel to fit
                    pt, pb = same_padding(h, k, s)
                    pl, pr = same_padding(w, k, s)
                else:
                    pt = pb = pl = pr = 0
                depthwise = spec.get("depthwise", False)
                oc = c if depthwise else spec["out"]
                out_zp = int(rng.integers(-30, 30))
                act = (-128, 127) if rng.random() < 0.5 else (out_zp, 127)  # sometimes a ReLU clamp
                p = Conv2DParams(shape, oc, (k, k), (s, s), (pt, pl, pb, pr), depthwise, zp, out_zp, *act)
                taps = k * k * (1 if depthwise else c)
                weight = rng.integers(-127, 128, size=p.weight_shape, dtype=np.int8)
                bias = rng.integers(-2000, 2000, size=oc).astype(np.int32)
                real = rng.uniform(0.5, 2.0, size=oc) / (127.0 * np.sqrt(taps) * 2)
                mult, shift = quantize_multipliers(real)
                func, packed = conv2d_int8(p, weight, bias, mult, shift)
                consts = [relax.const(c) for c in packed]
                kind = "depthwise_conv2d" if depthwise else ("conv2d_1x1" if k == 1 else "conv2d")
                var = _emit(bb, kind, func, [cur, *consts], p.out_shape, p, p.macs)
                tensors.append((var, p.out_shape, out_zp, float(rng.uniform(0.02, 0.08))))
                names.append(var.name)
            gv = bb.emit_output(tensors[-1][0])
        bb.emit_func_output(gv)
    mod = bb.get()
    io = {"inputs": [{"name": "input", "shape": list(in_shape), "dtype": "int8", "scale": 1.0,
                      "zero_point": 0, "layout": "NHWC"}],
          "outputs": [{"name": "output", "shape": [int(d) for d in tensors[-1][1]], "dtype": "int8",
                       "scale": 1.0, "zero_point": 0, "layout": "NHWC"}]}
    mod["main"] = mod["main"].with_attr(IO_ATTR, json.dumps(io))
    return mod, names
