"""TVM's TFLite operator converter, extended for int8 data movement and static shapes.

Two changes to ``tvm.relax.frontend.tflite.OperatorConverter``:

* Data-movement ops on int8 tensors (MAX_POOL_2D, PAD, RESIZE_NEAREST_NEIGHBOR,
  TRANSPOSE, SPLIT, STRIDED_SLICE, SQUEEZE, EXPAND_DIMS, PACK, ...) are accepted:
  TVM's converter applies the Relax op to the int8 tensor itself, which is exact for
  ops that only move or compare values (input and output quantization are equal,
  as TFLite requires for them). ``tvm_fused.passes`` lowers them to int8 kernels.
* PRELU on int8 tensors, which TVM's importer refuses, is imported in QDQ form:
  ``quantize(where(x >= 0, x, x * alpha))`` with ``x`` and ``alpha`` dequantized (``alpha``
  broadcasts against ``x`` with numpy rules, as TFLite's BroadcastPrelu4DSlow), so the
  legalizer's rule sees the usual pattern.
* Shape-only subgraphs are folded at import: the TFLite converter computes reshape
  targets with SHAPE -> STRIDED_SLICE -> PACK (and sometimes CONCATENATION, GATHER,
  arithmetic) on int32 tensors. With static shapes their values are known, so they
  are evaluated here with numpy and never reach the IR; the consuming RESHAPE sees a
  constant shape, as if the converter had folded it.
"""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter, get_tensor_name

# int8 ops that only move or compare values: exact when applied to the int8 tensor.
DATA_MOVEMENT_OPS = frozenset({
    "MAX_POOL_2D", "PAD", "PADV2", "RESIZE_NEAREST_NEIGHBOR", "TRANSPOSE", "SPLIT", "SPLIT_V",
    "STRIDED_SLICE", "SLICE", "SQUEEZE", "EXPAND_DIMS", "PACK", "SHAPE", "RESHAPE", "CONCATENATION",
})

# ops the shape folder can evaluate when all their (integer) inputs are known
_INT_TYPES = ("int32", "int64")


class TvmFusedTfliteConverter(OperatorConverter):
    """``from_tflite(..., op_converter=TvmFusedTfliteConverter)``."""

    _SUPPORTED_QUANTIZED_OPS = OperatorConverter._SUPPORTED_QUANTIZED_OPS | DATA_MOVEMENT_OPS | {"PRELU"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.folded: dict[int, np.ndarray] = {}  # tensor index -> value known at compile time
        self.folded_ops: set[int] = set()
        self._fold_shapes()

    def convert_prelu(self, op):
        data, alpha = self.get_input_tensors(op)
        if data.qnn_params is None:
            return super().convert_prelu(op)
        out = self.get_output_tensors(op)[0]
        x = self.dequantize(self.get_tensor_expr(data), data)
        a = self.dequantize(self.get_tensor_expr(alpha), alpha)
        y = relax.op.where(relax.op.greater_equal(x, relax.const(0.0, "float32")), x, relax.op.multiply(x, a))
        return self.quantize(y, out)

    # ---- shape folding --------------------------------------------------------------
    def _known(self, tensor_wrapper):
        idx = tensor_wrapper.tensor_idx
        if idx in self.folded:
            return self.folded[idx]
        if tensor_wrapper.buffer is not None and tensor_wrapper.buffer.DataLength() > 0:
            return OperatorConverter.get_tensor_value(self, tensor_wrapper)
        return None

    def _fold_shapes(self):
        for op_idx in range(self.subgraph.OperatorsLength()):
            op = self.subgraph.Operators(op_idx)
            outputs = self.get_output_tensors(op)
            if len(outputs) != 1:
                continue
            out_type = self.get_tensor_type_str(outputs[0].tensor.Type())
            if out_type not in _INT_TYPES:
                continue
            try:
                value = self._evaluate(self.get_op_code_str(op), op, self.get_input_tensors(op))
            except _NotFoldable:
                continue
            self.folded[outputs[0].tensor_idx] = np.asarray(value).astype(out_type)
            self.folded_ops.add(op_idx)

    def _evaluate(self, code, op, inputs):
        if code == "SHAPE":  # static shapes: the value needs no input data
            return np.array(self.get_tensor_shape(inputs[0]), np.int64)
        values = [self._known(t) if t.tensor_idx >= 0 else None for t in inputs]
        if any(v is None for v in values):
            raise _NotFoldable
        if code == "STRIDED_SLICE":
            return _strided_slice(values[0], values[1], values[2], values[3],
                                  self._options(op, "StridedSliceOptions"))
        if code == "PACK":
            return np.stack(values, axis=self._options(op, "PackOptions").Axis())
        if code == "CONCATENATION":
            return np.concatenate([np.atleast_1d(v) for v in values],
                                  axis=self._options(op, "ConcatenationOptions").Axis())
        if code == "RESHAPE":
            shape = [int(d) for d in self.get_tensor_shape(self.get_output_tensors(op)[0])]
            return values[0].reshape(shape)
        if code == "GATHER":
            return np.take(values[0], values[1], axis=self._options(op, "GatherOptions").Axis())
        if code == "CAST":
            return values[0]
        arith = {"MUL": np.multiply, "ADD": np.add, "SUB": np.subtract, "FLOOR_DIV": np.floor_divide,
                 "MAXIMUM": np.maximum, "MINIMUM": np.minimum}
        if code in arith and len(values) == 2:
            return arith[code](values[0], values[1])
        raise _NotFoldable

    def _options(self, op, name):
        import importlib

        cls = getattr(importlib.import_module(f"tflite.{name}"), name)
        opts = cls()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def get_tensor_value(self, tensor_wrapper, is_sparse=False):
        if tensor_wrapper.tensor_idx in self.folded:
            return self.folded[tensor_wrapper.tensor_idx]
        return super().get_tensor_value(tensor_wrapper, is_sparse)

    def convert_expand_dims(self, op):
        """TVM 0.27's converter passes a third argument to ``relax.op.expand_dims``; this is its
        conversion with the call fixed (input and output quantization are equal)."""
        from tvm import relax

        inputs = self.get_input_tensors(op)
        axis = int(np.asarray(self.get_tensor_value(inputs[1])).reshape(-1)[0])
        rank = len(inputs[0].tensor.ShapeAsNumpy())
        return relax.op.expand_dims(self.get_tensor_expr(inputs[0]), axis % (rank + 1))

    def check_unsupported_ops(self):
        # folded ops never reach a Relax converter; check the rest as TVM does
        saved = self.subgraph
        self.subgraph = _SkippingSubgraph(saved, self.folded_ops)
        try:
            super().check_unsupported_ops()
        finally:
            self.subgraph = saved

    def convert_op_to_relax(self):
        for op_idx in range(self.subgraph.OperatorsLength()):
            if op_idx in self.folded_ops:
                continue
            op = self.subgraph.Operators(op_idx)
            output_tensors = self.get_output_tensors(op)
            ret = self.convert_map[self.get_op_code_str(op)](op=op)
            if ret is None:
                continue
            ret = self.bb.normalize(ret)
            if len(output_tensors) == 1:
                self.exp_tab.set_expr(get_tensor_name(self.subgraph, output_tensors[0].tensor_idx), ret)
            else:
                for idx, output_tensor in enumerate(output_tensors):
                    self.exp_tab.set_expr(get_tensor_name(self.subgraph, output_tensor.tensor_idx), ret[idx])


class _NotFoldable(Exception):
    pass


class _SkippingSubgraph:
    """A subgraph view without the folded operators (for TVM's unsupported-op check)."""

    def __init__(self, subgraph, skip):
        self._subgraph = subgraph
        self._ops = [i for i in range(subgraph.OperatorsLength()) if i not in skip]

    def OperatorsLength(self):  # noqa: N802 (flatbuffers naming)
        return len(self._ops)

    def Operators(self, i):  # noqa: N802
        return self._subgraph.Operators(self._ops[i])

    def __getattr__(self, name):
        return getattr(self._subgraph, name)


def _strided_slice(data, begin, end, strides, options):
    """TFLite STRIDED_SLICE (begin/end/shrink masks; no ellipsis or new axes) in numpy."""
    if options.EllipsisMask() or options.NewAxisMask():
        raise _NotFoldable
    data = np.asarray(data)
    slices, shrink = [], []
    for axis in range(data.ndim):
        if axis >= len(begin):
            slices.append(slice(None))
            continue
        b, e, s = int(begin[axis]), int(end[axis]), int(strides[axis])
        if options.ShrinkAxisMask() >> axis & 1:
            slices.append(slice(b, b + 1 if b != -1 else None, 1))
            shrink.append(axis)
            continue
        slices.append(slice(None if options.BeginMask() >> axis & 1 else b,
                            None if options.EndMask() >> axis & 1 else e, s))
    out = data[tuple(slices)]
    return out.reshape([d for i, d in enumerate(out.shape) if i not in shrink]) if shrink else out
