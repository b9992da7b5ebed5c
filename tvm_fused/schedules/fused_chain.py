"""One TIR kernel for a chain of convolutions and residual adds, streamed by rows.

Tensors of the chain: ``t = 0`` is the chain input (a full tensor in the arena),
``t = i + 1`` is the output of layer ``i``; the last one is the chain output
(full, in the arena). Every other tensor lives in a ring buffer of ``ring_rows``
rows inside the kernel's scratch, so the big expanded tensors never exist whole.

Schedule (push, one row per layer per step): each step computes the next row of
the first layer, then every later layer, in order, computes the next row its
inputs allow (``done + 1`` if ``<= ready``); after the first layer's last row the
steps go on until the output is complete. Rows leave a ring as soon as no
consumer's window needs them, so a ring holds one kernel window of rows. Each row of each tensor is
computed exactly once (no recomputation, unlike patch-based inference), and each
element by the same integer expression as the unfused kernel, so fused and
unfused outputs are bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.tirx.script.builder import ir as T

from .conv2d import Conv2DParams, acc_words, conv_task, is_pointwise
from .common import hand_written
from .gemm import Operand, conv_row
from .elementwise import AddParams, add_output, add_scaled_inputs

RING_ALIGN = 4
# Streamed input: the application's int32_t CALLBACK(int8_t* rows, int32_t first_row, int32_t n_rows)
# fills rows first_row .. first_row + n_rows - 1 of the frame (row-major HWC) into ``rows``.
INPUT_ROWS_CALLBACK = "tvmgen_default_read_input_rows"


@dataclass
class ChainLayer:
    """A conv (regular/depthwise/pointwise) or residual add inside a chain."""

    kind: str  # "conv" | "add"
    params: Conv2DParams | AddParams
    inputs: list  # tensor ids: [t] for conv, [a, b] for add
    weight_offset: int = 0  # into the chain's int8 constant blob: w8 (weight_layout.pack_conv)
    table_offset: int = 0  # into the int32 blob: folded bias, multiplier, shift (C_out each)
    wide_offset: int = 0  # into the int32 blob: w32 (depthwise weight pairs)

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
    steps: int = 0  # row steps of the schedule (layer 0's rows, then the drain)
    out_row_step: list = field(default_factory=list)  # the step writing each chain output row
    stream_input: bool = False  # tensor 0 is a ring filled by INPUT_ROWS_CALLBACK


def _tensor_shapes(input_shape, layers):
    shapes = [tuple(input_shape[1:])]
    for layer in layers:
        if layer.kind == "add":
            shapes.append(shapes[layer.inputs[0]])
        else:
            _, h, w, c = layer.params.out_shape
            shapes.append((h, w, c))
    return shapes


def _ready_row(geometry: ChainGeometry, layer: ChainLayer, t_out: int, done, lo=min, hi=max, fdiv=None):
    """Highest row of ``t_out`` its inputs allow, given rows ``done[t]`` of each input exist.

    Works on Python ints (simulation) and on TIR expressions (the kernel) alike."""
    kh, stride, pad_top = layer.window
    last_row = geometry.shapes[t_out][0] - 1
    ready = last_row
    for t in set(layer.inputs):
        if t == 0:
            continue  # the chain input is whole in the arena
        complete = geometry.shapes[t][0] - 1
        allowed = (fdiv or (lambda a, b: a // b))(done[t] + pad_top - kh + 1, stride)
        if fdiv is None:
            allowed = last_row if done[t] >= complete else allowed
        else:
            allowed = tirx.Select(done[t] >= complete, last_row, allowed)
        ready = lo(ready, allowed)
    return ready


def _first_needed(geometry: ChainGeometry, layers, t, done):
    """Lowest row of tensor ``t`` a consumer will still read."""
    return min(max(0, (done[i + 1] + 1) * layers[i].window[1] - layers[i].window[2])
               for i in geometry.consumers[t])


def plan_chain(input_shape, layers, stream_input: bool = False) -> ChainGeometry:
    """Simulate the row schedule to size each ring buffer exactly.

    Each step, layer 0 computes its next row (while it has rows left) and every later
    layer computes at most one row its inputs allow; steps continue until the chain
    output is complete. One row per layer per step means a consumer reads each new row
    right after it is written, so a ring holds one kernel window (``kh`` rows, 1 for a
    1x1 consumer) instead of the burst an input's last rows would release at once.

    ``stream_input``: the chain input is not in the arena either; a ring of the first
    layer's ``kh`` rows (first in the scratch) receives each input row from the
    application's ``INPUT_ROWS_CALLBACK`` just before the first layer needs it."""
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
    out_row_step = []
    step = 0
    while done[last] < shapes[last][0] - 1:
        if step > 4 * shapes[1][0] + 4 * len(layers):
            raise AssertionError("row schedule did not complete the chain output")
        for i, layer in enumerate(layers):
            t = i + 1
            if i == 0:
                ready = min(step, shapes[1][0] - 1)
            else:
                ready = min(_ready_row(geometry, layer, t, done), done[t] + 1)
            if t == last:
                out_row_step += [step] * max(0, ready - done[t])
            done[t] = max(done[t], ready)
            if 0 < t < last:  # the rows alive right after this layer wrote its new rows
                rows[t] = max(rows[t], done[t] - min(_first_needed(geometry, layers, t, done), done[t] + 1) + 1)
        step += 1
    geometry.steps = step
    geometry.out_row_step = out_row_step
    offset = 0
    offsets = [0] * len(shapes)
    if stream_input:
        if consumers[0] != [0]:
            raise ValueError("a streamed chain input may be read by the first layer only")
        rows[0] = max(1, min(layers[0].window[0], shapes[0][0]))
        h, w, c = shapes[0]
        offset = (rows[0] * w * c + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN
    geometry.stream_input = stream_input
    for t in range(1, last):
        h, w, c = shapes[t]
        rows[t] = min(max(rows[t], 1), h)
        offsets[t] = offset
        offset += (rows[t] * w * c + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN
    geometry.ring_rows, geometry.ring_offset, geometry.scratch_bytes = rows, offsets, max(offset, RING_ALIGN)
    return geometry


def fused_chain_kernel(input_shape, layers, weights_len: int, tables_len: int, name: str = "fused_chain",
                       stream_input: bool = False):
    """PrimFunc(x, weights_i8, tables_i32, out, scratch) computing the whole chain.

    ``stream_input``: ``x`` is not read; input rows arrive through ``INPUT_ROWS_CALLBACK``
    into a ring in the scratch (see ``plan_chain``)."""
    geometry = plan_chain(input_shape, layers, stream_input)
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
            acc = T.alloc_buffer((max([1] + [acc_words(layer.params) for layer in layers if layer.kind == "conv"]),),
                                 "int32")

            # Flat views; a tensor row is addressed by its base offset, computed once per row
            # (ring rows wrap with floormod), so inner loops do no modulo arithmetic.
            x_flat = T.decl_buffer((_size(input_shape),), "int8", data=x_buf.data)
            y_flat = T.decl_buffer((out_h * out_w * out_c,), "int8", data=y_buf.data)
            tensors = _TensorRows(geometry, x_flat, y_flat, s_buf)

            with T.serial(0, len(shapes)) as t:
                T.buffer_store(done, -1, [t])
            h1 = shapes[1][0]
            with T.serial(0, geometry.steps) as step:
                for i, layer in enumerate(layers):
                    t_out = i + 1
                    if i == 0:
                        start, stop = tirx.min(step, h1), tirx.min(step + 1, h1)
                        if stream_input:  # pull the input rows this step's first layer reads
                            kh0, st0, pt0 = layer.window
                            want = tirx.min(tirx.min(step, h1 - 1) * st0 - pt0 + kh0 - 1, shapes[0][0] - 1)
                            with T.serial(done[0] + 1, tirx.max(want, done[0]) + 1) as r:
                                T.evaluate(tirx.call_extern(
                                    "int32", INPUT_ROWS_CALLBACK,
                                    tirx.address_of(s_buf[tensors.row_base(0, r)]), r, 1))
                            T.buffer_store(done, tirx.max(want, done[0]), [0])
                    else:  # at most one row per step (see plan_chain)
                        ready = _ready_row(geometry, layer, t_out, done, tirx.min, tirx.max, tirx.floordiv)
                        T.buffer_store(need, tirx.min(ready, done[t_out] + 1), [t_out])
                        start, stop = done[t_out] + 1, need[t_out] + 1
                    with T.serial(start, stop) as y:
                        if layer.kind == "add":
                            _add_row(layer, y, shapes[t_out], tensors, t_out, acc)
                        else:
                            _conv_row(layer, y, shapes, tensors, t_out, w_buf, tab_buf, acc)
                    if i == 0:
                        T.buffer_store(done, tirx.min(step, h1 - 1), [t_out])
                    else:
                        T.buffer_store(done, tirx.max(done[t_out], need[t_out]), [t_out])
    func = hand_written(ib.get())
    return func, geometry


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


class _TensorRows:
    """Where row ``y`` of chain tensor ``t`` starts: the input, a ring in scratch, or the output."""

    def __init__(self, geometry: ChainGeometry, x_flat, y_flat, scratch):
        self.g, self.x, self.y, self.s = geometry, x_flat, y_flat, scratch
        self.last = len(geometry.shapes) - 1

    def buffer(self, t):
        if t == 0 and not self.g.stream_input:
            return self.x
        return self.y if t == self.last else self.s

    def row_base(self, t, y):
        _, w, c = self.g.shapes[t]
        if (t == 0 and not self.g.stream_input) or t == self.last:
            return y * (w * c)
        return self.g.ring_offset[t] + tirx.floormod(y, self.g.ring_rows[t]) * (w * c)


def _add_row(layer, y, shape, tensors, t_out, acc):
    _, w, c = shape
    a, b = layer.inputs
    bases = [tensors.row_base(t, y) for t in (a, b, t_out)]
    a_buf, b_buf, out_buf = tensors.buffer(a), tensors.buffer(b), tensors.buffer(t_out)
    with T.serial(0, w * c) as i:
        # statement form (not add_expr's nested Lets, which TVM's analyzers reject here)
        xa, xb = add_scaled_inputs(a_buf[bases[0] + i], b_buf[bases[1] + i], layer.params)
        T.buffer_store(acc, xa, [0])
        T.buffer_store(acc, acc[0] + xb, [0])
        T.buffer_store(out_buf, add_output(acc[0], layer.params), [bases[2] + i])


def _conv_row(layer, y, shapes, tensors, t_out, w_buf, tab_buf, acc):
    """One output row of a conv layer: the same micro-kernel as the unfused kernel, on ring rows."""
    p: Conv2DParams = layer.params
    t_in = layer.inputs[0]
    in_h, in_w, in_c = shapes[t_in]
    _, out_w, out_c = shapes[t_out]
    kh, _ = p.kernel
    sh, pt = p.strides[0], p.padding[0]
    # row offsets as plain expressions of y (ring rows wrap with floormod): loop-invariant, so the C
    # compiler hoists them; binding them to locals leaves unused ones after TIR's simplifier
    rows = [tensors.row_base(t_in, y * sh - pt + ky) for ky in range(kh)]
    out_base = tensors.row_base(t_out, y)
    task = conv_task(p, Operand(tensors.buffer(t_in)), Operand(w_buf, layer.weight_offset),
                     Operand(tab_buf, layer.wide_offset), Operand(tab_buf, layer.table_offset),
                     Operand(tensors.buffer(t_out)), acc)
    row_ok = None
    if p.padding[0] > 0 or p.padding[2] > 0:
        row_ok = (lambda ky: tirx.all(y * sh - pt + ky >= 0, y * sh - pt + ky < in_h))
    if p.depthwise:
        task.row(lambda ky: rows[ky], row_ok, out_base, in_w, out_w)
    elif is_pointwise(p):
        task.pixels(lambda i, s: rows[0] + i * in_c, lambda i: out_base + i * out_c, out_w)
    else:
        conv_row(task, p, lambda ky: rows[ky], row_ok, out_base, in_w, out_w)
