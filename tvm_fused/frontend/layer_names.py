"""Name the imported Relax bindings after the source model's layers.

TVM's ONNX and TFLite frontends name every binding ``lv``, ``lv1``, ... and drop
the node and tensor names. The later stages (error messages, the legalized
kernels' binding names, generated C identifiers) read better with the model's
own names, so this module imports through the frontends' converters, records
which Relax expression each source node produced, and renames the bindings:

- the binding of each node's output is *labelled* with that node's layer; a binding
  no node claims (an inner step of a node's expression, such as the ``conv2d`` under
  a bias ``add``) takes the layer of its first user;
- ONNX ``QuantizeLinear``/``DequantizeLinear`` nodes take the layer of the node
  whose output they (de)quantize, so ``conv_1 -> Q -> DQ`` is one layer ``conv_1``;
- TFLite tensor names (``model/block_3_expand_relu/Relu6;model/block_3_expand/convolution;...``)
  are reduced to the layer scope of their main op (``block_3_expand``), the part after the
  model scope;
- in each layer the int8 result (its last ``quantize``, or ``astype`` to int8) gets the
  plain layer name, which the legalizer gives the kernel it emits there; the layer's other
  bindings get ``<layer>__<op>``. Names are unique within ``main`` and depend only on the model.
"""
from __future__ import annotations

import re

import tvm
from tvm import relax

# TFLite: the last scope part that marks the op a fused tensor name is about.
_TFLITE_MAIN_OPS = ("convolution", "depthwise", "Conv2D", "DepthwiseConv2dNative", "MatMul", "BiasAdd")
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def identifier(name: str, fallback: str = "layer") -> str:
    """``"model/block_3 expand:0"`` -> ``"model_block_3_expand_0"`` (letters, digits, ``_``)."""
    ident = re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]+", "_", str(name))).strip("_")
    if not ident:
        return fallback
    return f"{fallback}_{ident}" if ident[0].isdigit() else ident


# ---------------------------------------------------------------- ONNX

def import_onnx_named(proto) -> tvm.IRModule:
    """``relax.frontend.onnx.from_onnx(proto)`` with bindings named after the ONNX nodes."""
    from tvm.relax.frontend.onnx.onnx_frontend import ONNXGraphImporter

    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    importer = ONNXGraphImporter({}, "float32", keep_params_in_input=False, sanitize=True)
    mod = importer.from_onnx(proto.graph, opset)
    # the importer's table of ONNX tensor name -> Relax expression (not public API; if a
    # TVM release renames it, the model still imports, only with TVM's own names)
    produced = getattr(importer, "_nodes", {})
    layer_of_tensor: dict[str, str] = {}
    labels: dict = {}
    taken: set[str] = set()
    for node in proto.graph.node:
        if node.op_type in _QDQ and node.input and node.input[0] in layer_of_tensor:
            layer = layer_of_tensor[node.input[0]]
        else:
            layer = _unique(_onnx_layer(node), taken)
        for out in node.output:
            layer_of_tensor[out] = layer
            expr = produced.get(out)
            if isinstance(expr, relax.Expr) and not isinstance(expr, tvm.ir.Constant):
                labels.setdefault(expr, layer)
    return name_bindings(mod, labels)


def _onnx_layer(node) -> str:
    name = node.name or (node.output[0] if node.output else node.op_type)
    parts = [p for p in name.split("/") if p]
    if len(parts) > 1 and parts[-1] == node.op_type:  # PyTorch: /features/features.3/conv/Conv
        parts = parts[:-1]
    return identifier("_".join(parts))


# ---------------------------------------------------------------- TFLite

def import_tflite_named(model, converter=None) -> tvm.IRModule:
    """``relax.frontend.tflite.from_tflite(model, op_converter=converter)`` with bindings named
    after the layers (``converter``: an ``OperatorConverter`` subclass, ``TvmFusedTfliteConverter`` by default)."""
    from tvm.relax.frontend.tflite import tflite_frontend

    from .tflite_converter import TvmFusedTfliteConverter

    seen = {}

    class _Recording(converter or TvmFusedTfliteConverter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["converter"] = self

    result = tflite_frontend.from_tflite(model, op_converter=_Recording)
    mod = result[0] if isinstance(result, tuple) else result
    converter = seen.get("converter")
    if converter is None:
        return mod
    graph = model.Subgraphs(0)
    tensor_names = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        tensor_names += [graph.Tensors(op.Outputs(j)).Name().decode() for j in range(op.OutputsLength())]
    layers = _tflite_layers(tensor_names)
    labels = {}
    for tensor in tensor_names:
        expr = converter.exp_tab.exprs.get(tensor)
        if isinstance(expr, relax.Expr) and not isinstance(expr, tvm.ir.Constant):
            labels.setdefault(expr, layers[tensor])
    return name_bindings(mod, labels)


def _tflite_layers(tensor_names) -> dict[str, str]:
    """Tensor name -> layer name: the layer scope of the tensor's main op (the part after the
    model scope: ``model/block_3_expand/convolution``, ``model/upsample/resize/ResizeNearestNeighbor``).

    Keras 3 exports add a call suffix to every scope (``block_3_expand_1``); when every
    scoped name has one, it is dropped (``block_3_expand``)."""
    scopes = {}
    for tensor in tensor_names:
        parts = []
        for component in tensor.split(";"):
            parts = [p for p in component.split("/") if p]
            if parts and parts[-1] in _TFLITE_MAIN_OPS:
                break
        else:
            parts = [p for p in tensor.split(";")[0].split("/") if p]
        # model/layer/op[/...] (Keras): the part after the model scope is the layer
        scopes[tensor] = parts[1] if len(parts) >= 3 else (parts[0] if len(parts) == 2 else None)
    scoped = [s for s in scopes.values() if s]
    strip = bool(scoped) and all(re.search(r"_\d+$", s) for s in scoped)
    layers, taken = {}, set()
    for tensor, scope in scopes.items():
        if scope is None:
            layer = identifier(tensor.split(";")[0].split(":")[0])
        else:
            layer = identifier(re.sub(r"_\d+$", "", scope) if strip else scope)
        layers[tensor] = _unique(layer, taken)  # a layer called twice: name, name_2
    return layers


def _unique(name: str, taken: set) -> str:
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


# ---------------------------------------------------------------- renaming

def name_bindings(mod: tvm.IRModule, labels: dict) -> tvm.IRModule:
    """Rename ``main``'s bindings from ``labels`` (Relax expression -> layer name), see the module doc."""
    func = mod["main"]
    bindings = [b for block in func.body.blocks for b in block.bindings]
    layer_of: dict = {}
    for b in bindings:
        layer = labels.get(b.var) or labels.get(b.value)
        if layer is not None:
            layer_of[b.var] = layer
    # a binding no node claims (an inner step of a node's expression) belongs to the
    # layer of its first user that has one
    first_user: dict = {}
    for b in bindings:
        for var in relax.analysis.free_vars(b.value):
            first_user.setdefault(var, b.var)
    for b in reversed(bindings):
        if b.var not in layer_of and first_user.get(b.var) in layer_of:
            layer_of[b.var] = layer_of[first_user[b.var]]
    primary, last = {}, {}
    for b in bindings:
        if b.var in layer_of:
            last[layer_of[b.var]] = b.var
            if _is_int8_result(b.value):
                primary[layer_of[b.var]] = b.var
    used = {p.name for p in func.params}
    names = {}
    for b in bindings:
        layer = layer_of.get(b.var)
        if layer is None:
            continue
        hint = layer if primary.get(layer, last[layer]).same_as(b.var) else f"{layer}__{_op_short(b.value)}"
        names[b.var] = _unique(hint, used)
    if not names:
        return mod
    mod = mod.shallow_copy() if hasattr(mod, "shallow_copy") else tvm.IRModule(dict(mod.functions))
    mod["main"] = _Renamer(names).visit_expr(func)
    return mod


def _is_int8_result(value) -> bool:
    if not isinstance(value, relax.Call) or not isinstance(value.op, tvm.ir.Op):
        return False
    if value.op.name == "relax.quantize":
        return True
    return value.op.name == "relax.astype" and str(value.attrs.dtype) == "int8"


def _op_short(value) -> str:
    if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
        return value.op.name.rsplit(".", 1)[-1]
    return type(value).__name__.lower()


@relax.expr_functor.mutator
class _Renamer(relax.PyExprMutator):
    """Re-emits each renamed binding with a fresh variable of the new name."""

    def __init__(self, names: dict):
        super().__init__()
        self.names = names

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        value = self.visit_expr(binding.value)
        old = binding.var
        name = self.names.get(old, old.name)
        cls = relax.DataflowVar if isinstance(old, relax.DataflowVar) else relax.Var
        new = cls(name, old.ty)
        self.builder_.emit_normalized(relax.VarBinding(new, value))
        self.set_var_remap(old, new)
