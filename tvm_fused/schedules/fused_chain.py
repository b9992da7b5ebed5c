"""One TIR kernel for a chain of convolutions and residual adds, streamed by rows.

Tensors of the chain: ``t = 0`` is the chain input (a full tensor in the arena),
``t = i + 1`` is the output of layer ``i``; the last one is the chain output
(full, in the arena). Every other tensor lives in a ring buffer of ``ring_rows``
rows inside the kernel's scratch, so the big expanded tensors never exist whole.

Schedule: for each output row ``r`` of the last layer, compute for every tensor
the highest row the rest of the chain needs (``need``), then run the layers in
order, each computing its rows ``done + 1 .. need``. Each row of each tensor is
computed exactly once (no recomputation, unlike patch-based inference), and each
element by the same integer expression as the unfused kernel, so fused and
unfused outputs are bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from .conv2d import Conv2DParams, requantize_output
from .elementwise import AddParams, add_output, add_scaled_inputs

RING_ALIGN = 4


@dataclass
class ChainLayer:
    """A conv (regular/depthwise/pointwise) or residual add inside a chain."""

    kind: str  # "conv" | "add"
    params: Conv2DParams | AddParams
    inputs: list  # tensor ids: [t] for conv, [a, b] for add
    weight_offset: int = 0  # into the chain's int8 constant blob
    table_offset: int = 0  # into the int32 blob: bias, multiplier, shift (C_out each)

    @property
    def window(self):
        """(kernel rows, row stride, top padding) this layer applies to its inputs."""
        if self.kind == "add":
            return 1, 1, 0
        return self.params.kernel[0], self.params.strides[0], self.params.padding[0]


@dataclass
class ChainGeometry:
    """Static row schedule facts: tensor shapes, ring sizes, scratch layout."""

    shapes: list  # (H, W, C) per tensor
    consumers: list  # per tensor: list of layer indices reading it
    ring_rows: list = field(default_factory=list)  # per tensor (0 for the chain input/output)
    ring_offset: list = field(default_factory=list)
    scratch_bytes: int = 0


def _tensor_shapes(input_shape, layers):
    shapes = [tuple(input_shape[1:])]
    for layer in layers:
        if layer.kind == "add":
            shapes.append(shapes[layer.inputs[0]])
        else:
            _, h, w, c = layer.params.out_shape
            shapes.append((h, w, c))
    return shapes


def _need_rows(geometry: ChainGeometry, layers, r):
    """Highest row of every tensor needed once output rows 0..r of the chain exist (Python ints)."""
    last = len(geometry.shapes) - 1
    need = [None] * len(geometry.shapes)
    need[last] = r
    for t in range(last - 1, 0, -1):
        wants = []
        for i in geometry.consumers[t]:
            kh, stride, pad_top = layers[i].window
            wants.append(need[i + 1] * stride - pad_top + kh - 1)
        need[t] = min(geometry.shapes[t][0] - 1, max(wants))
    return need


def _need_of(geometry: ChainGeometry, layers, t, need):
    """TIR: the highest row of tensor ``t`` its consumers need, from their ``need`` entries."""
    want = None
    for i in geometry.consumers[t]:
        kh, stride, pad_top = layers[i].window
        w = need[i + 1] * stride - pad_top + kh - 1
        want = w if want is None else tirx.max(want, w)
    return tirx.min(geometry.shapes[t][0] - 1, want)


def plan_chain(input_shape, layers) -> ChainGeometry:
    """Simulate the row schedule to size each ring buffer exactly."""
    shapes = _tensor_shapes(input_shape, layers)
    consumers = [[] for _ in shapes]
    for i, layer in enumerate(layers):
        for t in set(layer.inputs):
            consumers[t].append(i)
    geometry = ChainGeometry(shapes, consumers)
    last = len(shapes) - 1
    for t in range(1, last):
        if not consumers[t]:
            raise ValueError(f"chain tensor {t} has no consumer inside the chain")
    rows = [0] * len(shapes)
    done = [-1] * len(shapes)
    for r in range(shapes[last][0]):
        need = _need_rows(geometry, layers, r)
        for t in range(1, last):
            # rows below the next row any consumer will read are dead
            first_read = min(max(0, (done[i + 1] + 1) * layers[i].window[1] - layers[i].window[2])
                             for i in consumers[t])
            rows[t] = max(rows[t], need[t] - min(first_read, done[t] + 1) + 1)
        done = [d if n is None else n for d, n in zip(done, need)]
    offset = 0
    offsets = [0] * len(shapes)
    for t in range(1, last):
        h, w, c = shapes[t]
        rows[t] = min(max(rows[t], 1), h)
        offsets[t] = offset
        offset += (rows[t] * w * c + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN
    geometry.ring_rows, geometry.ring_offset, geometry.scratch_bytes = rows, offsets, max(offset, RING_ALIGN)
    return geometry


def fused_chain_kernel(input_shape, layers, weights_len: int, tables_len: int, name: str = "fused_chain"):
    """PrimFunc(x, weights_i8, tables_i32, out, scratch) computing the whole chain."""
    geometry = plan_chain(input_shape, layers)
    shapes = geometry.shapes
    last = len(shapes) - 1
    out_h, out_w, out_c = shapes[last]
    with IRBuilder() as ib:
        with T.prim_func():
            T.func_name(name)
            x_buf = T.arg("x", T.buffer(tuple(input_shape), "int8"))
            w_buf = T.arg("weights", T.buffer((max(weights_len, 1),), "int8"))
            tab_buf = T.arg("tables", T.buffer((max(tables_len, 1),), "int32"))
            y_buf = T.arg("out", T.buffer((1, out_h, out_w, out_c), "int8"))
            s_buf = T.arg("scratch", T.buffer((geometry.scratch_bytes,), "int8"))
            done = T.alloc_buffer((len(shapes),), "int32")
            need = T.alloc_buffer((len(shapes),), "int32")
            acc = T.alloc_buffer((1,), "int32")

            def load(t, y, xx, c):
                if t == 0:
                    return x_buf[0, y, xx, c]
                h, w, ch = shapes[t]
                row = tirx.floormod(y, geometry.ring_rows[t])
                return s_buf[geometry.ring_offset[t] + (row * w + xx) * ch + c]

            def store(t, y, xx, c, value):
                if t == last:
                    T.buffer_store(y_buf, value, [0, y, xx, c])
                else:
                    h, w, ch = shapes[t]
                    row = tirx.floormod(y, geometry.ring_rows[t])
                    T.buffer_store(s_buf, value, [geometry.ring_offset[t] + (row * w + xx) * ch + c])

            with T.serial(0, len(shapes)) as t:
                T.buffer_store(done, -1, [t])
            with T.serial(0, out_h) as r:
                T.buffer_store(need, r, [last])
                for t in range(last - 1, 0, -1):  # consumers first: need[] of later tensors is set
                    T.buffer_store(need, _need_of(geometry, layers, t, need), [t])
                for i, layer in enumerate(layers):
                    t_out = i + 1
                    with T.serial(done[t_out] + 1, need[t_out] + 1) as y:
                        if layer.kind == "add":
                            _add_row(layer, y, shapes[t_out], load, store, t_out, acc)
                        else:
                            _conv_row(layer, y, shapes, load, store, t_out, w_buf, tab_buf, acc)
                with T.serial(1, len(shapes)) as t:
                    T.buffer_store(done, need[t], [t])
    func = ib.get()
    return func, geometry


def _add_row(layer, y, shape, load, store, t_out, acc):
    _, w, c = shape
    a, b = layer.inputs
    with T.serial(0, w) as xx:
        with T.serial(0, c) as ch:
            # statement form (not add_expr's nested Lets, which TVM's analyzers reject here)
            xa, xb = add_scaled_inputs(load(a, y, xx, ch), load(b, y, xx, ch), layer.params)
            T.buffer_store(acc, xa, [0])
            T.buffer_store(acc, acc[0] + xb, [0])
            store(t_out, y, xx, ch, add_output(acc[0], layer.params))


def _conv_row(layer, y, shapes, load, store, t_out, w_buf, tab_buf, acc):
    p: Conv2DParams = layer.params
    t_in = layer.inputs[0]
    in_h, in_w, in_c = shapes[t_in]
    _, out_w, out_c = shapes[t_out]
    kh, kw = p.kernel
    sh, sw = p.strides
    pt, pl, _, _ = p.padding
    w0, b0 = layer.weight_offset, layer.table_offset
    with T.serial(0, out_w) as xx:
        with T.serial(0, out_c) as o:
            T.buffer_store(acc, 0, [0])
            with T.serial(0, kh) as ky:
                iy = y * sh - pt + ky
                with T.serial(0, kw) as kx:
                    ix = xx * sw - pl + kx
                    inside = tirx.all(iy >= 0, iy < in_h, ix >= 0, ix < in_w)
                    if p.depthwise:
                        tap = tirx.if_then_else(inside, load(t_in, iy, ix, o).astype("int32") - p.in_zp, 0)
                        weight = w_buf[w0 + (ky * kw + kx) * out_c + o].astype("int32")
                        T.buffer_store(acc, acc[0] + tap * weight, [0])
                    else:
                        with T.serial(0, in_c) as ci:
                            tap = tirx.if_then_else(inside, load(t_in, iy, ix, ci).astype("int32") - p.in_zp, 0)
                            weight = w_buf[w0 + ((ky * kw + kx) * in_c + ci) * out_c + o].astype("int32")
                            T.buffer_store(acc, acc[0] + tap * weight, [0])
            value = requantize_output(acc[0] + tab_buf[b0 + o], tab_buf[b0 + out_c + o],
                                      tab_buf[b0 + 2 * out_c + o], p.out_zp, p.act_min, p.act_max)
            store(t_out, y, xx, o, value)
