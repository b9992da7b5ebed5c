"""Static arena planning: tensor lifetimes over the execution order -> offsets.

Like TFLite Micro's ``GreedyMemoryPlanner``: each buffer has a size and a first
and last use (op indices, inclusive); buffers are placed largest first at the
lowest offset that does not overlap a placed buffer alive at the same time.
Several placement orders are tried and the smallest arena kept. The model
input and output live in the arena too (TFLM counts them the same way).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from .legalize_qdq import MACS_ATTR, OP_ATTR

ALIGNMENT = 16


def _align(n: int, a: int = ALIGNMENT) -> int:
    return (n + a - 1) // a * a


@dataclass
class Buffer:
    name: str
    size: int
    first_use: int
    last_use: int
    offset: int = -1

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


class GreedyMemoryPlanner:
    """Add buffers, call ``plan()``, read offsets and the peak; ``check()`` proves no overlap."""

    def __init__(self, alignment: int = ALIGNMENT):
        self.alignment = alignment
        self.buffers: list[Buffer] = []

    def add_buffer(self, name: str, size: int, first_use: int, last_use: int) -> int:
        if size < 0 or last_use < first_use:
            raise ValueError(f"buffer {name}: bad size or lifetime ({size}, {first_use}..{last_use})")
        self.buffers.append(Buffer(name, size, first_use, last_use))
        return len(self.buffers) - 1

    def plan(self) -> int:
        orders = [
            sorted(range(len(self.buffers)), key=lambda i: (-self.buffers[i].size, self.buffers[i].first_use)),
            sorted(range(len(self.buffers)), key=lambda i: (self.buffers[i].first_use, -self.buffers[i].size)),
            sorted(range(len(self.buffers)),
                   key=lambda i: (-(self.buffers[i].last_use - self.buffers[i].first_use), -self.buffers[i].size)),
        ]
        best = None
        for order in orders:
            offsets = self._place(order)
            peak = max((offsets[i] + _align(b.size, self.alignment) for i, b in enumerate(self.buffers)), default=0)
            if best is None or peak < best[0]:
                best = (peak, offsets)
        for b, off in zip(self.buffers, best[1] if best else []):
            b.offset = off
        self.check()
        return self.peak()

    def _place(self, order) -> list[int]:
        offsets = [-1] * len(self.buffers)
        placed: list[int] = []
        for i in order:
            b = self.buffers[i]
            size = _align(b.size, self.alignment)
            live = sorted((offsets[j], offsets[j] + _align(self.buffers[j].size, self.alignment))
                          for j in placed if self.buffers[j].overlaps_in_time(b))
            offset = 0
            for start, end in live:
                if offset + size <= start:
                    break
                offset = max(offset, end)
            offsets[i] = offset
            placed.append(i)
        return offsets

    def peak(self) -> int:
        return max((b.offset + _align(b.size, self.alignment) for b in self.buffers), default=0)

    def lower_bound(self) -> int:
        """Max over ops of the bytes that must be alive at once (no planner can go below)."""
        if not self.buffers:
            return 0
        steps = max(b.last_use for b in self.buffers) + 1
        live = np.zeros(steps + 1, dtype=np.int64)
        for b in self.buffers:
            live[b.first_use] += b.size
            live[b.last_use + 1] -= b.size
        return int(np.cumsum(live).max())

    def live_bytes(self, step: int) -> int:
        return sum(b.size for b in self.buffers if b.first_use <= step <= b.last_use)

    def check(self) -> None:
        """Raise if two buffers alive at the same time share bytes (a planner bug)."""
        for i, a in enumerate(self.buffers):
            if a.offset < 0 or a.offset % self.alignment:
                raise AssertionError(f"buffer {a.name} has no aligned offset")
            for b in self.buffers[i + 1:]:
                if a.overlaps_in_time(b) and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    raise AssertionError(f"buffers {a.name} and {b.name} overlap in the arena")

    def chart(self, width: int = 60) -> str:
        """One line per buffer: its bytes over op indices (TFLM's PrintMemoryPlan, sideways)."""
        steps = max((b.last_use for b in self.buffers), default=-1) + 1
        lines = [f"arena {self.peak()} bytes, lower bound {self.lower_bound()} bytes"]
        for b in sorted(self.buffers, key=lambda b: b.offset):
            row = "".join("#" if b.first_use <= s <= b.last_use else "." for s in range(steps))
            lines.append(f"{b.offset:>9} {b.size:>9}  {row[:width]}  {b.name}")
        return "\n".join(lines)


@dataclass
class OpRecord:
    """One kernel call in execution order, as the report and the C backend see it."""

    index: int
    name: str
    op: str
    kernel: str  # GlobalVar name of the PrimFunc
    inputs: list  # tensor names (arena) or constant ids
    output: str
    macs: int
    scratch: str | None = None


@dataclass
class MemoryPlan:
    """Where every activation tensor lives in the arena, and the op sequence."""

    buffers: dict[str, Buffer]
    ops: list[OpRecord]
    shapes: dict[str, tuple]
    arena_bytes: int
    lower_bound: int
    input_names: list[str]
    output_name: str
    live_bytes: list[int] = field(default_factory=list)
    # The same plan with the model input outside the arena (an I/O argument), the scope
    # MCUNetV2 and msf-CNN report; for like-for-like comparisons only.
    arena_bytes_without_input: int = 0
    output_names: list[str] = field(default_factory=list)  # every model output, in order


def _bytes_of(ty) -> int:
    shape = [int(d) for d in ty.shape]
    return int(np.prod(shape)) * (tvm.DataType(ty.dtype).bits // 8)


def plan_memory(mod: tvm.IRModule) -> MemoryPlan:
    """Plan the arena of a legalized (possibly fused) module's ``main``."""
    func = mod["main"]
    bindings = [b for block in func.body.blocks for b in block.bindings]
    planner = GreedyMemoryPlanner()
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}
    shapes: dict[str, tuple] = {}
    alias: dict[str, str] = {}
    inputs = []
    for p in func.params:
        inputs.append(p.name)
        first[p.name], last[p.name] = 0, 0
        sizes[p.name] = _bytes_of(p.ty)
        shapes[p.name] = tuple(int(d) for d in p.ty.shape)
    ops: list[OpRecord] = []
    counts: dict[str, int] = {}
    tuple_fields: dict[str, list[str]] = {}
    for binding in bindings:
        var, value = binding.var, binding.value
        if isinstance(value, relax.Var):  # gv = lv at the end of the dataflow block
            alias[var.name] = alias.get(value.name, value.name)
            continue
        if isinstance(value, relax.Tuple):  # gv = (out_0, out_1): a model with several outputs
            tuple_fields[var.name] = [alias.get(f.name, f.name) for f in value.fields]
            continue
        if isinstance(value, relax.TupleGetItem):  # y = fused[0]: the fused kernel's real output
            alias[var.name] = f"{value.tuple_value.name}.{int(value.index)}"
            continue
        if not (isinstance(value, relax.Call) and value.op.same_as(tvm.ir.Op.get("relax.call_tir"))):
            raise ValueError(f"plan_memory expects only call_tir bindings, got {value.op}")
        gv = value.args[0]
        kernel = mod[gv]
        kind = str(kernel.attrs[OP_ATTR]) if kernel.attrs and OP_ATTR in kernel.attrs else gv.name_hint
        step = len(ops)
        args = []
        for arg in value.args[1].fields:
            if isinstance(arg, relax.Var):
                name = alias.get(arg.name, arg.name)
                last[name] = step
                args.append(name)
            else:
                args.append(None)  # constant: lives in flash
        counts[kind] = counts.get(kind, 0) + 1
        if isinstance(var.ty, relax.TupleType):  # (output, scratch): scratch dies with the call
            outs = [(f"{var.name}.{i}", ty) for i, ty in enumerate(var.ty.fields)]
        else:
            outs = [(var.name, var.ty)]
        for out, ty in outs:
            sizes[out] = _bytes_of(ty)
            shapes[out] = tuple(int(d) for d in ty.shape)
            first[out] = last[out] = step
        macs = int(kernel.attrs[MACS_ATTR]) if kernel.attrs and MACS_ATTR in kernel.attrs else 0
        scratch = outs[1][0] if len(outs) > 1 else None
        ops.append(OpRecord(step, f"{kind}_{counts[kind] - 1}", kind, gv.name_hint, args, outs[0][0], macs, scratch))
    result = func.body.body
    outputs = tuple_fields.get(result.name) or [alias.get(result.name, result.name)]
    end = max(len(ops) - 1, 0)
    for output in outputs:
        last[output] = end
    for name in first:
        if name not in alias:
            planner.add_buffer(name, sizes[name], first[name], last[name])
    arena = planner.plan()
    without_input = GreedyMemoryPlanner()
    for b in planner.buffers:
        if b.name not in inputs:
            without_input.add_buffer(b.name, b.size, b.first_use, b.last_use)
    buffers = {b.name: b for b in planner.buffers}
    live = [planner.live_bytes(i) for i in range(len(ops))]
    return MemoryPlan(buffers, ops, shapes, arena, planner.lower_bound(), inputs, outputs[0], live,
                      without_input.plan(), outputs)
