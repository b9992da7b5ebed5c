"""The legalizer's core: walk the imported graph, keep int8 tensors, dispatch to per-op rules, emit.

The core knows nothing about any particular kernel. It

- turns the model inputs into int8 parameters (NHWC for images) and records ``io`` entries;
- tracks which float values are dequantized int8 tensors (``QTensor``) or dequantized
  constants (``DequantConst``);
- at each ``quantize``, folds the float activations (``clip``/``relu``/``relu6``, and a
  following int8 ``clip``, TFLite's fused activation) into an output range, finds the op
  producing the quantized value and calls the rule registered for it (``registry``);
- calls the ``int8``-domain rule of any other op, if one is registered;
- emits what the rules ask for (``emit``): a ``call_tir`` of a kernel with its attributes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from ...attrs import (INPUT_QUANT_ATTR, IO_ATTR, MACS_ATTR, OP_ATTR, OUTPUT_NAMES_ATTR, PARAMS_ATTR, KernelParams,
                      ModelIO, plain)
from ...errors import UnsupportedModelError
from ...schedules.fixed_point import round_half_away
from ..quant_graph import DequantConst, QuantGraph, const_value, op_name, scalar
from . import registry


# Relax ops the core itself handles (no rule): quantization bookkeeping and folded activations.
CORE_RELAX_OPS = ("relax.quantize", "relax.dequantize", "relax.clip", "relax.nn.relu", "relax.nn.relu6",
                  "relax.permute_dims")
_ACTIVATIONS = ("relax.clip", "relax.nn.relu", "relax.nn.relu6")


@dataclass
class QTensor:
    """An int8 tensor of the legalized function: NHWC if 4-D."""

    var: relax.Var
    shape: tuple
    scale: float
    zero_point: int
    src_layout: str  # layout of the same tensor in the imported model ("NCHW", "NHWC" or "")
    padded_from: tuple | None = None  # (input QTensor, (top, left, bottom, right)) if a zero pad made it


@dataclass(frozen=True)
class OutputQuant:
    """Quantization of a rule's output: what the quantize asks for, clamped by folded activations."""

    scale: float
    zero_point: int
    act_min: int  # clamp bounds in the int8 domain (folded relu/relu6/clip, or -128..127)
    act_max: int
    src_shape: tuple  # shape of the output in the imported model (its source layout)


@dataclass(frozen=True)
class Match:
    """What a rule receives besides the context.

    For a ``quantize``-domain rule: ``var = quantize(activation*(value))`` with
    ``value = call(...)``; ``out`` is the output quantization; ``bias`` is set when an
    ``add`` rule folded a constant bias add into this call (rules registered with ``bias=True``).
    For an ``int8``-domain rule: ``var = call(...)``, ``quantize`` and ``out`` are None.
    A tuple-valued op (split) is matched at each ``TupleGetItem`` of its result: ``index``
    is the field, ``var`` the item's variable (the op's own binding is visited with ``index=None``).
    """

    var: relax.Var
    call: relax.Call
    quantize: relax.Call | None = None
    value: relax.Expr | None = None
    out: OutputQuant | None = None
    bias: DequantConst | None = None
    index: int | None = None  # for a tuple-valued op (split): which field ``var`` is

    @property
    def layer(self) -> str:
        """The layer's name: the name of the value it produces in the imported model."""
        return self.var.name

    @property
    def op(self) -> str:
        return op_name(self.call)


def nhwc(shape, layout) -> tuple:
    """``shape`` in the legalized layout (NHWC for a 4-D NCHW source tensor)."""
    if len(shape) == 4 and layout == "NCHW":
        n, c, h, w = shape
        return (n, h, w, c)
    return tuple(shape)


def shape_of(expr) -> tuple:
    return tuple(int(d) for d in expr.ty.shape)


def prim_value(value) -> float:
    """A Relax PrimValue / constant as a float (clip bounds, pad values)."""
    inner = getattr(value, "value", None)
    if isinstance(inner, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return float(inner.value)
    if isinstance(value, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return float(value.value)
    const = const_value(value)
    if const is not None:
        return float(const.reshape(-1)[0])
    raise UnsupportedModelError(f"clip bound {value} is not a constant")


def act_range(lo: float, hi: float, scale: float, zp: int, half_even: bool = False) -> tuple[int, int]:
    """Float activation bounds -> int8 clamp: ``zp + round(bound / scale)``, within -128..127.

    The division is in float32, as TFLite's ``CalculateActivationRangeQuantized`` and
    onnxruntime's QuantizeLinear do it (in double, 6 / 0.8f is 7.4999999, not 7.5); halves go
    away from zero (TFLite) or to even (``half_even``: ONNX QuantizeLinear).
    """
    def bound(value):
        q = np.float32(value) / np.float32(scale)
        return zp + int(np.rint(q) if half_even else round_half_away(q))

    act_min, act_max = -128, 127
    if lo > -math.inf:
        act_min = max(act_min, bound(lo))
    if hi < math.inf:
        act_max = min(act_max, bound(hi))
    return act_min, act_max


class Legalizer:
    """One walk over the imported ``main`` function, emitting the integer one.

    Rules receive the legalizer as ``ctx`` and use only its public methods:
    ``input``, ``dequantized``, ``int8``, ``const``, ``producer``, ``lower``, ``take_int_clip``,
    ``emit`` and the attributes ``layout_hint`` / ``source_format``.
    """

    def __init__(self, mod: tvm.IRModule, layout_hint: str | None):
        self.mod = mod
        self.graph = QuantGraph(mod["main"])
        self.layout_hint = layout_hint
        self.source_format = "tflite" if layout_hint == "NHWC" else "onnx"
        self.tensors: dict[relax.Var, QTensor] = {}  # int8 values (old var -> new tensor)
        self.dq_tensors: dict[relax.Var, QTensor] = {}  # float vars that are dequantized tensors
        self.dq_consts: dict[relax.Var, DequantConst] = {}
        self.bb = relax.BlockBuilder()
        self.io = {"inputs": [], "outputs": []}
        self.folded_clips: set[str] = set()
        self.layer: str | None = None  # name of the imported binding being lowered (its layer)
        attrs = mod["main"].attrs
        # set by the frontends: int8 inputs' quantization (TFLite) and the model's output names
        self.input_quant = plain(attrs.get(INPUT_QUANT_ATTR) if attrs else None, {})
        self.output_names = plain(attrs.get(OUTPUT_NAMES_ATTR) if attrs else None, [])
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
        self.inputs = params
        bb = self.bb
        try:
            with bb.function("main", [t.var for t in params]):
                with bb.dataflow():
                    for var, value in self.graph.bindings:
                        self._visit(var, value)
                    outs = self._outputs()
                    gv = bb.emit_output(outs[0].var if len(outs) == 1 else relax.Tuple([t.var for t in outs]))
                bb.emit_func_output(gv)
        except BaseException:
            # a rule refused: close the block the dataflow scope left open, or TVM prints
            # "BlockBuilder destroyed with remaining blocks!" under the user's one-line error
            try:
                bb._end_block()
            except Exception:  # noqa: BLE001 (no block open: nothing to close)
                pass
            raise
        mod = bb.get()
        main = mod["main"].with_attr(IO_ATTR, ModelIO.of(self.io))
        mod["main"] = main
        return relax.transform.DeadCodeElimination(["main"])(mod)

    def _check_ops(self):
        from ...frontend import ops

        known = ops.relax_ops()
        bad: dict[str, list[str]] = {}
        for var, value in self.graph.bindings:
            name = op_name(value)
            if name is not None and name not in known:
                bad.setdefault(name, []).append(var.name)
        if bad:
            raise UnsupportedModelError(ops.unsupported_message(
                "Relax", {op: (len(v), v[0]) for op, v in bad.items()}, "the imported model"))

    def _make_inputs(self) -> list[QTensor]:
        inputs = []
        for param in self.graph.func.params:
            users = [(v, c) for v, c in self.graph.bindings
                     if isinstance(c, relax.Call) and any(a.same_as(param) for a in c.args)]
            kinds = {op_name(c) for _, c in users}
            if len(users) == 0:
                continue
            int8_input = str(param.ty.dtype) == "int8"
            if not int8_input and kinds != {"relax.quantize"}:
                raise UnsupportedModelError(
                    f"model input '{param.name}' is not quantized to int8 (used by {sorted(kinds)}); "
                    "tvm-fused compiles int8 models only: quantize it (QDQ) first")
            qdq = [c for _, c in users if op_name(c) in ("relax.quantize", "relax.dequantize")]
            if qdq:
                scale = scalar(qdq[0].args[1], f"scale of input '{param.name}'")
                zp = int(scalar(qdq[0].args[2], f"zero point of input '{param.name}'"))
            elif param.name in self.input_quant:  # read by int8 data-movement ops only (TFLite)
                scale, zp = self.input_quant[param.name]
            else:
                raise UnsupportedModelError(f"model input '{param.name}': int8 without quantization parameters")
            src_shape = shape_of(param)
            layout = self._layout(len(src_shape))
            shape = nhwc(src_shape, layout)
            new = relax.Var(param.name, relax.TensorType(shape, "int8"))
            tensor = QTensor(new, shape, scale, zp, layout)
            for var, c in users:
                if op_name(c) == "relax.quantize":
                    self._check_same_q(c, tensor, var)
                    self.tensors[var] = tensor
                elif op_name(c) == "relax.dequantize":
                    self._check_same_q(c, tensor, var)
                    self.dq_tensors[var] = tensor
            if int8_input:
                self.tensors[param] = tensor  # int8 ops may read it directly (TFLite data movement)
            self.io["inputs"].append(self._io_entry(param.name, tensor, str(param.ty.dtype)))
            inputs.append(tensor)
        if not inputs:
            raise UnsupportedModelError("the model has no quantized input")
        return inputs

    def _layout(self, rank):
        if rank != 4:
            return ""
        return self.layout_hint or "NCHW"

    @staticmethod
    def _io_entry(name, t: QTensor, model_dtype: str = "int8"):
        """``dtype`` is what the generated C takes/returns (always int8); ``model_dtype`` what the
        source model does (float32 for a QUANTIZE at the entry / DEQUANTIZE at the exit)."""
        return {"name": name, "shape": list(t.shape), "dtype": "int8", "scale": t.scale,
                "zero_point": t.zero_point, "layout": "NHWC" if len(t.shape) == 4 else "",
                "model_dtype": model_dtype}

    def _check_same_q(self, call, tensor, var):
        scale = scalar(call.args[1], "quantize scale")
        zp = int(scalar(call.args[2], "quantize zero point"))
        if not math.isclose(scale, tensor.scale, rel_tol=1e-6) or zp != tensor.zero_point:
            raise UnsupportedModelError(f"{var.name}: re-quantizing a model input is not supported")

    def _outputs(self) -> list[QTensor]:
        """The int8 tensor behind each model output (a tuple result gives several), in order."""
        result = self.graph.result
        prod = self.graph.producer(result)
        fields = list(prod.fields) if isinstance(prod, relax.Tuple) else [result]
        names = self.output_names if len(self.output_names) == len(fields) else \
            (["output"] if len(fields) == 1 else [f"output_{i}" for i in range(len(fields))])
        outs, seen = [], set()
        for name, field in zip(names, fields):
            tensor, model_dtype = None, "int8"
            for table, dtype in ((self.dq_tensors, "float32"), (self.tensors, "int8")):
                if isinstance(field, relax.Var) and field in table:
                    tensor, model_dtype = table[field], dtype
            if tensor is None:
                raise UnsupportedModelError(
                    f"model output '{name}' is not an int8 tensor (or its dequantized value); "
                    f"it is produced by {op_name(self.graph.producer(field)) or field}. "
                    "Float post-processing (e.g. softmax) must be removed or run on the host.")
            if any(tensor.var.same_as(t.var) for t in self.inputs) or tensor.var in seen:
                tensor = self._copy(tensor)  # every output needs its own buffer
            seen.add(tensor.var)
            self.io["outputs"].append(self._io_entry(name, tensor, model_dtype))
            outs.append(tensor)
        return outs

    def _copy(self, tensor: QTensor) -> QTensor:
        from .requantize import emit_requantize

        src_shape = tensor.shape if tensor.src_layout != "NCHW" else \
            tuple(tensor.shape[i] for i in (0, 3, 1, 2))
        return emit_requantize(self, tensor, OutputQuant(tensor.scale, tensor.zero_point, -128, 127, src_shape))

    # ------------------------------------------------------------------ walk
    def _visit(self, var, value):
        name = op_name(value)
        self.layer = var.name  # a kernel emitted here is named after this binding (frontend.layer_names)
        if var in self.tensors or var in self.dq_tensors:
            return  # model input handled in _make_inputs
        if isinstance(value, relax.TupleGetItem):  # a field of an int8 tuple-valued op (TFLite SPLIT)
            call = self.graph.producer(value.tuple_value)
            rule = registry.get_rule(op_name(call), "int8") if op_name(call) else None
            if rule is not None and self.int8(call.args[0]) is not None:
                self.tensors[var] = rule.lower(self, Match(var, call, index=int(value.index)))
            return
        if name == "relax.dequantize":
            self._visit_dequantize(var, value)
        elif name == "relax.quantize":
            self.tensors[var] = self._visit_quantize(var, value)
        elif name == "relax.clip" and isinstance(value.args[0], relax.Var) and value.args[0] in self.tensors:
            self._visit_int_clip(var, value)
        elif name is not None:
            rule = registry.get_rule(name, "int8")
            if rule is not None:
                tensor = rule.lower(self, Match(var, value))
                if tensor is not None:
                    self.tensors[var] = tensor
            elif any(isinstance(a, relax.Var) and a in self.tensors for a in value.args):
                raise UnsupportedModelError(
                    f"{var.name}: '{name}' applied to an int8 tensor has no integer rule; see docs/adding_an_op.md")
        # other float ops are consumed when a quantize reaches them

    def _visit_int_clip(self, var, call):
        """TFLite's fused activation arrives as clip on the int8 output; it must have been
        folded into the producing kernel's clamp (see ``take_int_clip``)."""
        tensor = self.tensors[call.args[0]]
        if var.name not in self.folded_clips:
            raise UnsupportedModelError(f"{var.name}: int8 clip that cannot be folded into its producer")
        self.tensors[var] = tensor

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
                return inner.reshape(shape_of(prod))
        return None

    def _visit_quantize(self, var, call) -> QTensor:
        out_scale = scalar(call.args[1], f"{var.name} scale (per-channel activations are unsupported)")
        out_zp = int(scalar(call.args[2], f"{var.name} zero point"))
        node = call.args[0]
        lo, hi = -math.inf, math.inf
        while True:
            prod = self.graph.producer(node)
            kind = op_name(prod)
            if kind == "relax.clip":
                lo, hi = max(lo, prim_value(prod.args[1])), min(hi, prim_value(prod.args[2]))
            elif kind == "relax.nn.relu":
                lo = max(lo, 0.0)
            elif kind == "relax.nn.relu6":
                lo, hi = max(lo, 0.0), min(hi, 6.0)
            else:
                break
            node = prod.args[0]
        act_min, act_max = act_range(lo, hi, out_scale, out_zp, half_even=self.source_format == "onnx")
        int_clip = self.take_int_clip(var)
        if int_clip is not None:  # TFLite fused activation: clamp in the kernel
            act_min, act_max = max(act_min, int_clip[0]), min(act_max, int_clip[1])
        out = OutputQuant(out_scale, out_zp, act_min, act_max, shape_of(var))
        if isinstance(prod, relax.TupleGetItem):  # quantize(split(...)[i]): the rule makes field i
            tuple_call = self.graph.producer(prod.tuple_value)
            if isinstance(tuple_call, relax.Call):
                return self.lower(Match(var, tuple_call, call, node, out, index=int(prod.index)))
        if not isinstance(prod, relax.Call):
            raise UnsupportedModelError(f"{var.name}: quantize of a constant or parameter is not supported")
        return self.lower(Match(var, prod, call, node, out))

    # ------------------------------------------------------------------ API for rules
    def lower(self, match: Match) -> QTensor:
        """Run the ``quantize``-domain rule registered for ``match.call``'s op."""
        kind = match.op
        rule = registry.get_rule(kind, "quantize")
        if rule is None:
            raise UnsupportedModelError(
                f"{match.layer}: cannot lower '{kind}' feeding this quantize to an integer kernel")
        if match.bias is not None and not rule.bias:
            raise UnsupportedModelError(f"{match.layer}: '{kind}' takes no bias")
        return rule.lower(self, match)

    def producer(self, expr):
        """The Call or Constant behind ``expr`` (looking through variables)."""
        return self.graph.producer(expr)

    def dequantized(self, expr) -> QTensor | None:
        """The int8 tensor whose dequantized value ``expr`` is, or None."""
        if isinstance(expr, relax.Var):
            return self.dq_tensors.get(expr)
        return None

    def input(self, expr, what: str) -> QTensor:
        """Like ``dequantized`` but an error (naming ``what``) if ``expr`` is not one."""
        tensor = self.dequantized(expr)
        if tensor is None:
            raise UnsupportedModelError(f"{what}: its input is not a dequantized int8 tensor")
        return tensor

    def int8(self, expr) -> QTensor | None:
        """The int8 tensor ``expr`` is (for ``int8``-domain rules), or None."""
        if isinstance(expr, relax.Var):
            return self.tensors.get(expr)
        return None

    def take_int_clip(self, var) -> tuple[int, int] | None:
        """If the only user of ``var`` is an int8 clip (TFLite's fused activation), claim it:
        return its integer bounds; the rule must apply them as its output clamp."""
        users = self.users_of.get(var.name, [])
        if len(users) != 1:
            return None
        user_var, user = users[0]
        if op_name(user) != "relax.clip":
            return None
        self.folded_clips.add(user_var.name)
        return int(prim_value(user.args[1])), int(prim_value(user.args[2]))

    def const(self, expr) -> DequantConst | None:
        """A dequantized constant, looking through permute_dims/reshape/expand_dims."""
        if isinstance(expr, relax.Var) and expr in self.dq_consts:
            return self.dq_consts[expr]
        if isinstance(expr, tvm.ir.Constant):
            values = const_value(expr)
            return DequantConst(values, np.ones(1, np.float32), np.zeros(1), 0) if values.dtype.kind == "f" else None
        prod = self.graph.producer(expr)
        kind = op_name(prod)
        if kind == "relax.permute_dims":
            inner = self.const(prod.args[0])
            if inner is None:
                return None
            axes = [int(a) for a in prod.attrs.axes] if prod.attrs.axes is not None else \
                list(reversed(range(inner.values.ndim)))
            axis = axes.index(inner.axis) if inner.per_channel else 0
            return DequantConst(inner.values.transpose(axes), inner.scale, inner.zero_point, axis)
        if kind in ("relax.reshape", "relax.expand_dims", "relax.squeeze"):
            inner = self.const(prod.args[0])
            if inner is None:
                return None
            shape = shape_of(prod)
            axis = 0
            if inner.per_channel:
                size = inner.values.shape[inner.axis]
                matches = [i for i, d in enumerate(shape) if d == size]
                if len(matches) != 1:
                    raise UnsupportedModelError("cannot follow a per-channel scale through a reshape")
                axis = matches[0]
            return DequantConst(inner.values.reshape(shape), inner.scale, inner.zero_point, axis)
        return None

    def emit(self, kind: str, func: tvm.tirx.PrimFunc, args: list, shape, scale: float, zero_point: int,
             layout: str, params, macs: int) -> QTensor:
        """Emit ``call_tir(func, args)`` producing an int8 tensor of ``shape``; return it.

        ``kind`` names the kernel (``tvm_fused.op``, read by fusion, planning and reports);
        ``params`` is the kernel's parameter dataclass (``tvm_fused.params``, stored as a typed
        ``attrs.KernelParams``); ``macs`` its
        multiply-accumulates; ``layout`` the source layout of the result ("" if not 4-D).
        """
        func = func.with_attrs({OP_ATTR: kind, MACS_ATTR: int(macs), PARAMS_ATTR: KernelParams.of(kind, params)})
        # no global_symbol: identical kernels are then shared (add_func deduplicates); the
        # "_kernel" suffix keeps kernel names from renaming a layer of the same name ("add")
        gv = self.bb.add_func(func.without_attr("global_symbol"), f"{kind}_kernel")
        call = relax.call_tir(gv, args, relax.TensorType(tuple(shape), "int8"))
        var = self.bb.emit(call, name_hint=self.layer or kind)
        return QTensor(var, tuple(shape), scale, zero_point, layout)


def _declare_core_ops():
    from ...frontend import ops

    ops.declare(
        provider=f"{__name__}.Legalizer", relax_ops=CORE_RELAX_OPS,
        tflite={"DEQUANTIZE": "int8 input; at the model output, or read by the next op as float"},
        onnx={"QuantizeLinear": "int8, per-tensor for activations",
              "DequantizeLinear": "int8; per-channel (axis of the output channels) for weights",
              "Identity": "-"})


_declare_core_ops()
