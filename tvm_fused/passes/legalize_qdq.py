"""Rewrite dequantize -> float op -> quantize into integer kernels (int8 NHWC)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from ..schedules import (
    AddParams,
    Conv2DParams,
    DenseParams,
    PadParams,
    PoolParams,
    RequantizeParams,
    add_int8,
    avg_pool_int8,
    conv2d_nhwc_int8,
    dense_int8,
    mean_params,
    pad_int8,
    quantize_multipliers,
    requantize_int8,
)
from ..schedules.fixed_point import round_half_away
from .quant_graph import DequantConst, QuantGraph, const_value, op_name, scalar

# Float ops that may sit between dequantize and quantize (anything else is reported).
SUPPORTED_FLOAT_OPS = {
    "relax.nn.conv2d", "relax.add", "relax.matmul", "relax.permute_dims", "relax.reshape",
    "relax.mean", "relax.nn.avg_pool2d", "relax.nn.pad", "relax.clip", "relax.nn.relu",
    "relax.nn.relu6", "relax.quantize", "relax.dequantize", "relax.expand_dims", "relax.squeeze",
    "relax.flatten", "relax.astype",
}

IO_ATTR = "tvm_fused.io"
OP_ATTR = "tvm_fused.op"
PARAMS_ATTR = "tvm_fused.params"
MACS_ATTR = "tvm_fused.macs"


@dataclass
class QTensor:
    """An int8 tensor of the legalized function: NHWC if 4-D."""

    var: relax.Var
    shape: tuple
    scale: float
    zero_point: int
    src_layout: str  # layout of the same tensor in the imported model ("NCHW", "NHWC" or "")


def _nhwc(shape, layout):
    if len(shape) == 4 and layout == "NCHW":
        n, c, h, w = shape
        return (n, h, w, c)
    return tuple(shape)


def _shape_of(expr) -> tuple:
    return tuple(int(d) for d in expr.ty.shape)


def _prim(value) -> float:
    inner = getattr(value, "value", None)
    if isinstance(inner, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return float(inner.value)
    if isinstance(value, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return float(value.value)
    const = const_value(value)
    if const is not None:
        return float(const.reshape(-1)[0])
    raise UnsupportedModelError(f"clip bound {value} is not a constant")


class _Legalizer:
    """One pass over the imported main function, emitting the integer one."""

    def __init__(self, mod: tvm.IRModule, layout_hint: str | None):
        self.mod = mod
        self.graph = QuantGraph(mod["main"])
        self.layout_hint = layout_hint
        self.tensors: dict[relax.Var, QTensor] = {}  # quantize outputs (old var -> new tensor)
        self.dq_tensors: dict[relax.Var, QTensor] = {}  # float vars that are dequantized tensors
        self.dq_consts: dict[relax.Var, DequantConst] = {}
        self.pad_source: dict[relax.Var, tuple[QTensor, tuple]] = {}  # new pad var -> (input, pads)
        self.bb = relax.BlockBuilder()
        self.io = {"inputs": [], "outputs": []}
        self.folded_clips: set[str] = set()
        self.layer: str | None = None  # name of the imported binding being lowered (its layer)
        self.users_of: dict[str, list] = {}
        for v, c in self.graph.bindings:
            if isinstance(c, relax.Call):
                for a in c.args:
                    if isinstance(a, relax.Var):
                        self.users_of.setdefault(a.name, []).append((v, c))

    # ------------------------------------------------------------------ driver
    def run(self) -> tvm.IRModule:
        self._check_ops()
        params = self._make_inputs()
        bb = self.bb
        with bb.function("main", [t.var for t in params]):
            with bb.dataflow():
                for var, value in self.graph.bindings:
                    self._visit(var, value)
                out = self._output()
                gv = bb.emit_output(out.var)
            bb.emit_func_output(gv)
        mod = bb.get()
        main = mod["main"].with_attr(IO_ATTR, json.dumps(self.io))
        mod["main"] = main
        return relax.transform.DeadCodeElimination(["main"])(mod)

    def _check_ops(self):
        bad = {}
        for var, value in self.graph.bindings:
            name = op_name(value)
            if name is None:
                continue
            if name not in SUPPORTED_FLOAT_OPS:
                bad.setdefault(name, []).append(var.name)
        if bad:
            listing = "; ".join(f"{op} (at {', '.join(v[:5])})" for op, v in sorted(bad.items()))
            raise UnsupportedModelError(
                f"the model uses operators tvm-fused cannot lower to int8 kernels: {listing}. "
                "Supported: conv2d (regular/depthwise/pointwise), add, average pool, mean, "
                "fully connected, pad, reshape/flatten, relu/relu6/clip.")

    def _make_inputs(self) -> list[QTensor]:
        inputs = []
        for param in self.graph.func.params:
            users = [(v, c) for v, c in self.graph.bindings
                     if isinstance(c, relax.Call) and any(a.same_as(param) for a in c.args)]
            kinds = {op_name(c) for _, c in users}
            if len(users) == 0:
                continue
            if kinds != {"relax.quantize"} and kinds != {"relax.dequantize"}:
                raise UnsupportedModelError(
                    f"model input '{param.name}' is not quantized to int8 (used by {sorted(kinds)}); "
                    "tvm-fused compiles int8 models only: quantize it (QDQ) first")
            call = users[0][1]
            scale = scalar(call.args[1], f"scale of input '{param.name}'")
            zp = int(scalar(call.args[2], f"zero point of input '{param.name}'"))
            src_shape = _shape_of(param)
            layout = self._layout(len(src_shape))
            shape = _nhwc(src_shape, layout)
            new = relax.Var(param.name, relax.TensorType(shape, "int8"))
            tensor = QTensor(new, shape, scale, zp, layout)
            for var, c in users:
                if op_name(c) == "relax.quantize":
                    self._check_same_q(c, tensor, var)
                    self.tensors[var] = tensor
                else:
                    self.dq_tensors[var] = tensor
            self.io["inputs"].append(self._io_entry(param.name, tensor))
            inputs.append(tensor)
        if not inputs:
            raise UnsupportedModelError("the model has no quantized input")
        return inputs

    def _layout(self, rank):
        if rank != 4:
            return ""
        return self.layout_hint or "NCHW"

    @staticmethod
    def _io_entry(name, t: QTensor):
        return {"name": name, "shape": list(t.shape), "dtype": "int8", "scale": t.scale,
                "zero_point": t.zero_point, "layout": "NHWC" if len(t.shape) == 4 else ""}

    def _check_same_q(self, call, tensor, var):
        scale = scalar(call.args[1], "quantize scale")
        zp = int(scalar(call.args[2], "quantize zero point"))
        if not math.isclose(scale, tensor.scale, rel_tol=1e-6) or zp != tensor.zero_point:
            raise UnsupportedModelError(f"{var.name}: re-quantizing a model input is not supported")

    def _output(self) -> QTensor:
        result = self.graph.result
        for table in (self.dq_tensors, self.tensors):
            if isinstance(result, relax.Var) and result in table:
                tensor = table[result]
                self.io["outputs"].append(self._io_entry("output", tensor))
                return tensor
        raise UnsupportedModelError(
            "the model output is not an int8 tensor (or its dequantized value); "
            f"it is produced by {op_name(self.graph.producer(result)) or result}. "
            "Float post-processing (e.g. softmax) must be removed or run on the host.")

    # ------------------------------------------------------------------ visitors
    def _visit(self, var, value):
        name = op_name(value)
        self.layer = var.name  # a kernel emitted here is named after this binding
        if var in self.tensors or var in self.dq_tensors:
            return  # model input handled in _make_inputs
        if name == "relax.dequantize":
            self._visit_dequantize(var, value)
        elif name == "relax.quantize":
            self.tensors[var] = self._lower_quantize(var, value)
        elif name == "relax.clip" and isinstance(value.args[0], relax.Var) and value.args[0] in self.tensors:
            self._visit_int_clip(var, value)
        elif name == "relax.astype" and str(value.attrs.dtype) == "int8":
            self.tensors[var] = self._lower_int_avg_pool(var, value)
        # other float ops are consumed when a quantize reaches them

    def _visit_int_clip(self, var, call):
        """TFLite's fused activation arrives as clip on the int8 output; it must have been
        folded into the producing kernel's clamp (see ``_lower_quantize``)."""
        tensor = self.tensors[call.args[0]]
        if var.name not in self.folded_clips:
            raise UnsupportedModelError(f"{var.name}: int8 clip that cannot be folded into its producer")
        self.tensors[var] = tensor

    def _int_clip_user(self, var):
        """The int8 clip that is the only user of ``var``, with its integer bounds, or None."""
        users = self.users_of.get(var.name, [])
        if len(users) != 1:
            return None
        user_var, user = users[0]
        if op_name(user) != "relax.clip":
            return None
        return user_var, int(_prim(user.args[1])), int(_prim(user.args[2]))

    def _lower_int_avg_pool(self, var, call):
        """TFLite pools int8 in the integer domain: astype(int32) -> avg_pool2d -> astype(int8)."""
        pool = self.graph.producer(call.args[0])
        inner = self.graph.producer(pool.args[0]) if op_name(pool) == "relax.nn.avg_pool2d" else None
        if inner is None or op_name(inner) != "relax.astype" or inner.args[0] not in self.tensors:
            raise UnsupportedModelError(f"{var.name}: cast to int8 of something other than an integer pool")
        data = self.tensors[inner.args[0]]
        attrs = pool.attrs
        p = PoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(v) for v in attrs.strides),
                       tuple(int(v) for v in attrs.padding), data.scale, data.zero_point, data.scale,
                       data.zero_point)
        out = (data.scale, data.zero_point, (-128, 127))
        return self._emit("avg_pool2d", avg_pool_int8(p), [data.var], p.out_shape, out, data.src_layout, p,
                          macs=int(np.prod(p.out_shape)) * p.kernel[0] * p.kernel[1])

    def _visit_dequantize(self, var, call):
        src = call.args[0]
        values = self._const_eval(src)
        if values is not None:
            scale = const_value(call.args[1])
            zp = const_value(call.args[2])
            if scale is None or zp is None:
                raise UnsupportedModelError(f"{var.name}: dequantize with non-constant parameters")
            self.dq_consts[var] = DequantConst(values, np.asarray(scale, np.float32),
                                               np.asarray(zp), int(call.attrs.axis))
            return
        tensor = self.tensors.get(src)
        if tensor is None:
            raise UnsupportedModelError(f"{var.name}: dequantize of a value that is not an int8 tensor")
        scale = scalar(call.args[1], f"{var.name} scale")
        zp = int(scalar(call.args[2], f"{var.name} zero point"))
        if not math.isclose(scale, tensor.scale, rel_tol=1e-6) or zp != tensor.zero_point:
            raise UnsupportedModelError(f"{var.name}: dequantize parameters differ from the quantize ones")
        self.dq_tensors[var] = tensor

    def _const_eval(self, expr):
        """numpy value of a constant, possibly through permute_dims/reshape (TFLite FC weights)."""
        value = const_value(expr)
        if value is not None:
            return value
        prod = self.graph.producer(expr)
        kind = op_name(prod)
        if kind == "relax.permute_dims":
            inner = self._const_eval(prod.args[0])
            if inner is not None:
                axes = [int(a) for a in prod.attrs.axes] if prod.attrs.axes is not None else None
                return inner.transpose(axes)
        if kind == "relax.reshape":
            inner = self._const_eval(prod.args[0])
            if inner is not None:
                return inner.reshape(_shape_of(prod))
        return None

    # ------------------------------------------------------------------ patterns
    def _lower_quantize(self, var, call) -> QTensor:
        out_scale = scalar(call.args[1], f"{var.name} scale (per-channel activations are unsupported)")
        out_zp = int(scalar(call.args[2], f"{var.name} zero point"))
        out_src_shape = _shape_of(var)
        node = call.args[0]
        lo, hi = -math.inf, math.inf
        while True:
            prod = self.graph.producer(node)
            kind = op_name(prod)
            if kind == "relax.clip":
                lo, hi = max(lo, _prim(prod.args[1])), min(hi, _prim(prod.args[2]))
            elif kind == "relax.nn.relu":
                lo = max(lo, 0.0)
            elif kind == "relax.nn.relu6":
                lo, hi = max(lo, 0.0), min(hi, 6.0)
            else:
                break
            node = prod.args[0]
        act = self._act_range(lo, hi, out_scale, out_zp)
        int_clip = self._int_clip_user(var)
        if int_clip is not None:  # TFLite fused activation: clamp in the kernel
            clip_var, clip_lo, clip_hi = int_clip
            act = (max(act[0], clip_lo), min(act[1], clip_hi))
            self.folded_clips.add(clip_var.name)
        out = (out_scale, out_zp, act)
        dq = self._dq_tensor(node)
        if dq is not None:  # quantize(dequantize(x)): requantize
            return self._emit_requantize(dq, out_src_shape, out)
        kind = op_name(prod)
        if kind == "relax.add":
            return self._lower_add(prod, out, out_src_shape)
        if kind == "relax.nn.conv2d":
            return self._lower_conv(prod, None, out)
        if kind == "relax.matmul":
            return self._lower_dense(prod, None, out)
        if kind == "relax.mean":
            return self._lower_mean(prod, out, out_src_shape)
        if kind == "relax.nn.avg_pool2d":
            return self._lower_avg_pool(prod, out)
        if kind in ("relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims"):
            src = self._require_dq(prod.args[0], kind)
            return self._emit_requantize(src, out_src_shape, out)
        if kind == "relax.nn.pad":
            return self._lower_pad(prod, out)
        raise UnsupportedModelError(
            f"{var.name}: cannot lower '{kind}' feeding this quantize to an integer kernel")

    @staticmethod
    def _act_range(lo, hi, scale, zp):
        act_min, act_max = -128, 127
        if lo > -math.inf:
            act_min = max(act_min, zp + int(round_half_away(lo / scale)))
        if hi < math.inf:
            act_max = min(act_max, zp + int(round_half_away(hi / scale)))
        return act_min, act_max

    def _dq_tensor(self, expr) -> QTensor | None:
        if isinstance(expr, relax.Var):
            return self.dq_tensors.get(expr)
        return None

    def _require_dq(self, expr, what) -> QTensor:
        tensor = self._dq_tensor(expr)
        if tensor is None:
            raise UnsupportedModelError(f"{what}: its input is not a dequantized int8 tensor")
        return tensor

    def _const(self, expr) -> DequantConst | None:
        """A dequantized constant, looking through permute_dims/reshape/expand_dims."""
        if isinstance(expr, relax.Var) and expr in self.dq_consts:
            return self.dq_consts[expr]
        if isinstance(expr, tvm.ir.Constant):
            values = const_value(expr)
            return DequantConst(values, np.ones(1, np.float32), np.zeros(1), 0) if values.dtype.kind == "f" else None
        prod = self.graph.producer(expr)
        kind = op_name(prod)
        if kind == "relax.permute_dims":
            inner = self._const(prod.args[0])
            if inner is None:
                return None
            axes = [int(a) for a in prod.attrs.axes] if prod.attrs.axes is not None else \
                list(reversed(range(inner.values.ndim)))
            axis = axes.index(inner.axis) if inner.per_channel else 0
            return DequantConst(inner.values.transpose(axes), inner.scale, inner.zero_point, axis)
        if kind in ("relax.reshape", "relax.expand_dims", "relax.squeeze"):
            inner = self._const(prod.args[0])
            if inner is None:
                return None
            shape = _shape_of(prod)
            axis = 0
            if inner.per_channel:
                size = inner.values.shape[inner.axis]
                matches = [i for i, d in enumerate(shape) if d == size]
                if len(matches) != 1:
                    raise UnsupportedModelError("cannot follow a per-channel scale through a reshape")
                axis = matches[0]
            return DequantConst(inner.values.reshape(shape), inner.scale, inner.zero_point, axis)
        return None

    # ---- conv / dense with optional bias
    def _lower_add(self, add, out, out_src_shape):
        a, b = add.args
        for main, other in ((a, b), (b, a)):
            bias = self._const(other)
            inner = op_name(self.graph.producer(main))
            if bias is not None and inner in ("relax.nn.conv2d", "relax.matmul"):
                lower = self._lower_conv if inner == "relax.nn.conv2d" else self._lower_dense
                return lower(self.graph.producer(main), bias, out)
        ta, tb = self._dq_tensor(a), self._dq_tensor(b)
        if ta is None or tb is None:
            raise UnsupportedModelError("add: expected a bias add after conv/matmul, or two int8 tensors")
        if ta.shape != tb.shape:
            raise UnsupportedModelError(f"add with broadcasting ({ta.shape} + {tb.shape}) is not supported")
        scale, zp, (act_min, act_max) = out
        p = AddParams(ta.shape, ta.scale, ta.zero_point, tb.scale, tb.zero_point, scale, zp, act_min, act_max)
        func = add_int8(p)
        return self._emit("add", func, [ta.var, tb.var], ta.shape, out, ta.src_layout, p, macs=0)

    def _bias_vector(self, bias: DequantConst | None, channels, in_scale, w_scale) -> np.ndarray:
        if bias is None:
            return np.zeros(channels, np.int32)
        values = bias.values.reshape(-1)
        if values.size != channels:
            raise UnsupportedModelError(f"bias of {values.size} values for {channels} channels")
        if values.dtype.kind in "iu":
            if np.any(bias.zero_point != 0):
                raise UnsupportedModelError("a quantized bias must have zero point 0")
            return values.astype(np.int32)
        # float bias: quantize with the accumulator scale, as TFLite's converter would
        return round_half_away(bias.float_values().reshape(-1) / (in_scale * w_scale)).astype(np.int32)

    def _lower_conv(self, conv, bias, out):
        attrs = conv.attrs
        data = self._require_dq(conv.args[0], "conv2d")
        weight = self._const(conv.args[1])
        if weight is None or weight.values.dtype != np.int8:
            raise UnsupportedModelError("conv2d weights must be int8 constants (quantize_static per_channel)")
        if any(int(d) != 1 for d in attrs.dilation):
            raise UnsupportedModelError("dilated convolutions are not supported")
        data_layout, kernel_layout = str(attrs.data_layout), str(attrs.kernel_layout)
        if data_layout not in ("NCHW", "NHWC"):
            raise UnsupportedModelError(f"conv2d data layout {data_layout} is not supported")
        if data.src_layout and data.src_layout != data_layout:
            raise UnsupportedModelError(f"conv2d on {data_layout} data imported as {data.src_layout}")
        pad_src = self.pad_source.get(data.var)
        padding = tuple(int(p) for p in attrs.padding)  # top, left, bottom, right
        if pad_src is not None:  # fold an explicit zero-point pad into the convolution
            data, pads = pad_src
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
        scale, zp, (act_min, act_max) = out
        p = Conv2DParams(data.shape, cout, (kh, kw), tuple(int(s) for s in attrs.strides), padding,
                         depthwise, data.zero_point, zp, act_min, act_max)
        mult, shift = quantize_multipliers((data.scale * w_scale) / scale)
        w = np.ascontiguousarray(w_hwio[:, :, 0, :] if depthwise else w_hwio).astype(np.int8)
        b = self._bias_vector(bias, cout, data.scale, w_scale)
        kind = "depthwise_conv2d" if depthwise else ("conv2d_1x1" if (kh, kw) == (1, 1) else "conv2d")
        func = conv2d_nhwc_int8(p)
        consts = [relax.const(w), relax.const(b), relax.const(mult), relax.const(shift)]
        return self._emit(kind, func, [data.var, *consts], p.out_shape, out, data_layout, p, macs=p.macs)

    def _lower_dense(self, matmul, bias, out):
        data = self._require_dq(matmul.args[0], "matmul")
        weight = self._const(matmul.args[1])
        if weight is None or weight.values.dtype != np.int8 or weight.values.ndim != 2:
            raise UnsupportedModelError("fully connected weights must be 2-D int8 constants")
        if len(data.shape) != 2:
            raise UnsupportedModelError(f"fully connected on a {len(data.shape)}-D input; flatten first")
        k, m = weight.values.shape
        w_scale = weight.scale_along(1, m)
        scale, zp, (act_min, act_max) = out
        p = DenseParams(data.shape[0], k, m, data.zero_point, zp, act_min, act_max)
        mult, shift = quantize_multipliers((data.scale * w_scale) / scale)
        b = self._bias_vector(bias, m, data.scale, w_scale)
        consts = [relax.const(np.ascontiguousarray(weight.values)), relax.const(b),
                  relax.const(mult), relax.const(shift)]
        return self._emit("dense", dense_int8(p), [data.var, *consts], (p.batch, m), out, "", p, macs=p.macs)

    # ---- pooling, reshape, pad
    def _lower_mean(self, mean, out, out_src_shape):
        data = self._require_dq(mean.args[0], "mean")
        axes = sorted(int(a) % len(data.shape) for a in mean.attrs.axis)
        spatial = [2, 3] if data.src_layout == "NCHW" else [1, 2]
        if len(data.shape) != 4 or axes != spatial:
            raise UnsupportedModelError(f"mean over axes {axes} is not supported (only spatial mean)")
        scale, zp, (act_min, act_max) = out
        p = mean_params(data.shape, data.scale, data.zero_point, scale, zp)
        tflite = self.layout_hint == "NHWC"  # TFLite import: follow its MEAN arithmetic
        p = PoolParams(**{**asdict(p), "act_min": act_min, "act_max": act_max, "tflite_mean": tflite})
        n, _, _, c = data.shape
        shape = (n, 1, 1, c) if len(out_src_shape) == 4 else (n, c)
        func = avg_pool_int8(p, flatten=len(shape) == 2)
        return self._emit("mean", func, [data.var], shape, out, data.src_layout if len(shape) == 4 else "", p,
                          macs=int(np.prod(data.shape)))

    def _lower_avg_pool(self, pool, out):
        data = self._require_dq(pool.args[0], "avg_pool2d")
        attrs = pool.attrs
        if str(attrs.layout) != (data.src_layout or "NCHW"):
            raise UnsupportedModelError(f"avg_pool2d layout {attrs.layout} differs from its input's")
        if bool(attrs.count_include_pad) and any(int(p) for p in attrs.padding):
            raise UnsupportedModelError("average pooling that counts padding is not supported")
        if bool(attrs.ceil_mode):
            raise UnsupportedModelError("average pooling with ceil_mode is not supported")
        scale, zp, (act_min, act_max) = out
        p = PoolParams(data.shape, tuple(int(k) for k in attrs.pool_size), tuple(int(s) for s in attrs.strides),
                       tuple(int(v) for v in attrs.padding), data.scale, data.zero_point, scale, zp,
                       act_min, act_max)
        return self._emit("avg_pool2d", avg_pool_int8(p), [data.var], p.out_shape, out, data.src_layout, p,
                          macs=int(np.prod(p.out_shape)) * p.kernel[0] * p.kernel[1])

    def _emit_requantize(self, src: QTensor, out_src_shape, out):
        scale, zp, (act_min, act_max) = out
        layout = src.src_layout if len(out_src_shape) == 4 else ""
        shape = _nhwc(out_src_shape, layout)
        if int(np.prod(shape)) != int(np.prod(src.shape)):
            raise UnsupportedModelError(f"reshape {src.shape} -> {shape} changes the element count")
        if src.src_layout == "NCHW" and len(src.shape) == 4 and shape != src.shape:
            n, h, w, c = src.shape
            if h * w != 1 and c != 1:
                raise UnsupportedModelError(
                    f"reshape of an NCHW tensor {src.shape} with spatial extent needs a transpose; not supported")
        p = RequantizeParams(src.shape, shape, src.scale, src.zero_point, scale, zp, act_min, act_max)
        kind = "reshape" if p.is_copy else "requantize"
        return self._emit(kind, requantize_int8(p), [src.var], shape, out, layout, p, macs=0)

    def _lower_pad(self, pad, out):
        data = self._require_dq(pad.args[0], "pad")
        attrs = pad.attrs
        widths = [int(v) for v in attrs.pad_width]
        if len(data.shape) != 4 or str(getattr(attrs, "pad_mode", "constant")) != "constant":
            raise UnsupportedModelError("only constant spatial padding of 4-D tensors is supported")
        pairs = [(widths[2 * i], widths[2 * i + 1]) for i in range(4)]
        if data.src_layout == "NCHW":
            h, w, others = pairs[2], pairs[3], (pairs[0], pairs[1])
        else:
            h, w, others = pairs[1], pairs[2], (pairs[0], pairs[3])
        pad_value = _prim(pad.args[1]) if len(pad.args) > 1 else float(getattr(attrs, "pad_value", 0.0))
        scale, zp, _ = out
        if any(o != (0, 0) for o in others) or pad_value != 0.0:
            raise UnsupportedModelError("only spatial zero padding is supported")
        if not math.isclose(scale, data.scale, rel_tol=1e-6) or zp != data.zero_point:
            raise UnsupportedModelError("pad must keep the quantization of its input")
        p = PadParams(data.shape, (h[0], w[0], h[1], w[1]), data.zero_point)
        tensor = self._emit("pad", pad_int8(p), [data.var], p.out_shape, out, data.src_layout, p, macs=0)
        self.pad_source[tensor.var] = (data, p.padding)
        return tensor

    # ------------------------------------------------------------------ emission
    def _emit(self, kind, func, args, shape, out, layout, params, macs) -> QTensor:
        scale, zp, _ = out
        func = func.with_attrs({OP_ATTR: kind, MACS_ATTR: int(macs),
                                PARAMS_ATTR: json.dumps(_jsonable(asdict(params)))})
        # no global_symbol: identical kernels are then shared (add_func deduplicates)
        gv = self.bb.add_func(func.without_attr("global_symbol"), kind)
        call = relax.call_tir(gv, args, relax.TensorType(tuple(shape), "int8"))
        var = self.bb.emit(call, name_hint=self.layer or kind)
        return QTensor(var, tuple(shape), scale, zp, layout)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj


@tvm.transform.module_pass(opt_level=0, name="LegalizeQDQ")
class LegalizeQDQ:
    """Rewrite an imported QDQ int8 model into integer kernels.

    Precondition: the module comes straight from ``relax.frontend.onnx`` or
    ``relax.frontend.tflite``: ``main`` is one dataflow block of dequantize ->
    float op -> quantize. Afterwards ``main`` takes and returns int8 tensors
    (NHWC for images) and every op is a ``call_tir`` of a kernel from
    ``tvm_fused.schedules``; kernels carry ``tvm_fused.op``/``params``/``macs``
    attributes that the fusion pass and the backend read. Runs before fusion
    and memory planning.
    """

    def __init__(self, layout_hint: str | None = None):
        self.layout_hint = layout_hint

    def transform_module(self, mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return _Legalizer(mod, self.layout_hint).run()
