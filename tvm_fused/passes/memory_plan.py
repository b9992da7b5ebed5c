"""Static arena planning: tensor lifetimes over the execution order -> offsets.

Like TFLite Micro's ``GreedyMemoryPlanner``: each buffer has a size and a first
and last use (op indices, inclusive); buffers are placed largest first at the
lowest offset that does not overlap a placed buffer alive at the same time.
Several placement orders are tried and the smallest arena kept. The model
input and output live in the arena too (TFLM counts them the same way).

In-place reuse (``inplace.py``): an op may write its output over an input that
dies at that op, at a distance the row model proves safe; such a pair is placed
as one group with a fixed relative offset, and ``check()`` re-proves every alias.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from .inplace import ELEMENTWISE_KINDS, best_delta, check_alias, op_access
from .legalize_qdq import MACS_ATTR, OP_ATTR, PARAMS_ATTR

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
    bank: str = ""  # "" = the one (first) arena; else a named memory bank of the board

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


@dataclass
class Alias:
    """``out`` is placed at ``offset(over) + delta``: the op writing ``out`` reads ``over``
    for the last time, and ``access`` shows every byte it overwrites is already dead."""

    out: str
    over: str
    delta: int
    access: "RowAccess"
    saved: int = 0  # bytes the pair needs less than side by side


class GreedyMemoryPlanner:
    """Add buffers (and in-place aliases), call ``plan()``, read offsets and the peak;
    ``check()`` proves that no two live buffers share bytes except proven aliases."""

    def __init__(self, alignment: int = ALIGNMENT):
        self.alignment = alignment
        self.buffers: list[Buffer] = []
        self.aliases: list[Alias] = []

    def add_buffer(self, name: str, size: int, first_use: int, last_use: int) -> int:
        if size < 0 or last_use < first_use:
            raise ValueError(f"buffer {name}: bad size or lifetime ({size}, {first_use}..{last_use})")
        self.buffers.append(Buffer(name, size, first_use, last_use))
        return len(self.buffers) - 1

    def add_alias(self, alias: "Alias") -> None:
        """Pin ``alias.out`` at ``offset(alias.over) + alias.delta`` (an in-place write)."""
        if alias.delta % self.alignment:
            raise ValueError(f"alias {alias.out} over {alias.over}: delta {alias.delta} is not aligned")
        self.aliases.append(alias)

    def _groups(self):
        """Buffers tied by aliases, as [(member indices, relative offsets)] with offsets >= 0."""
        index = {b.name: i for i, b in enumerate(self.buffers)}
        parent = {index[a.out]: (index[a.over], a.delta) for a in self.aliases}
        children: dict[int, list] = {}
        for child, (par, delta) in parent.items():
            children.setdefault(par, []).append((child, delta))
        groups, seen = [], set()
        for i in range(len(self.buffers)):
            if i in seen or i in parent:
                continue
            rel, stack = {i: 0}, [i]
            while stack:
                j = stack.pop()
                for child, delta in children.get(j, []):
                    rel[child] = rel[j] + delta
                    stack.append(child)
            low = min(rel.values())
            members = sorted(rel)
            seen.update(members)
            groups.append((members, [rel[m] - low for m in members]))
        if len(seen) != len(self.buffers):
            raise ValueError("in-place aliases form a cycle")
        return groups

    def plan(self) -> int:
        groups = self._groups()
        a = self.alignment

        def extent(g):
            return max(r + _align(self.buffers[m].size, a) for m, r in zip(*g))

        def first(g):
            return min(self.buffers[m].first_use for m in g[0])

        def last(g):
            return max(self.buffers[m].last_use for m in g[0])

        orders = [
            sorted(groups, key=lambda g: (-extent(g), first(g))),
            sorted(groups, key=lambda g: (first(g), -extent(g))),
            sorted(groups, key=lambda g: (-(last(g) - first(g)), -extent(g))),
        ]
        best = None
        for order in orders:
            offsets = self._place(order)
            peak = max((offsets[i] + _align(b.size, a) for i, b in enumerate(self.buffers)), default=0)
            if best is None or peak < best[0]:
                best = (peak, offsets)
        for b, off in zip(self.buffers, best[1] if best else []):
            b.offset = off
        self.check()
        return self.peak()

    def _place(self, order) -> list[int]:
        """First fit, lowest base offset: a group may sit at ``base`` when no member meets a
        placed, simultaneously live buffer; member m at base + rel conflicts with a placed
        [lo, hi) iff base lies in the open interval (lo - rel - size_m, hi - rel)."""
        offsets = [-1] * len(self.buffers)
        placed: list[int] = []
        a = self.alignment
        for members, rels in order:
            forbidden = []
            for m, r in zip(members, rels):
                b = self.buffers[m]
                size = _align(b.size, a)
                for j in placed:
                    if self.buffers[j].overlaps_in_time(b):
                        lo, hi = offsets[j], offsets[j] + _align(self.buffers[j].size, a)
                        forbidden.append((lo - r - size, hi - r))
            forbidden.sort()
            base = 0
            for lo, hi in forbidden:
                if base <= lo:
                    break
                base = max(base, hi)
            for m, r in zip(members, rels):
                offsets[m] = base + r
            placed.extend(members)
        return offsets

    def peak(self) -> int:
        return max((b.offset + _align(b.size, self.alignment) for b in self.buffers), default=0)

    def lower_bound(self) -> int:
        """Max over ops of the bytes that must be alive at once (no planner can go below
        without in-place reuse)."""
        if not self.buffers:
            return 0
        steps = max(b.last_use for b in self.buffers) + 1
        live = np.zeros(steps + 1, dtype=np.int64)
        for b in self.buffers:
            live[b.first_use] += b.size
            live[b.last_use + 1] -= b.size
        return int(np.cumsum(live).max())

    def live_bytes(self, step: int) -> int:
        """Bytes in use while op ``step`` runs: the sum of live buffer sizes, an in-place
        pair counted once over the union of its byte ranges (once offsets are planned)."""
        live = [b for b in self.buffers if b.first_use <= step <= b.last_use]
        if not self.aliases or any(b.offset < 0 for b in live):
            return sum(b.size for b in live)
        total, end = 0, 0
        for lo, hi in sorted((b.offset, b.offset + b.size) for b in live):
            total += max(0, hi - max(lo, end))
            end = max(end, hi)
        return total

    def check(self) -> None:
        """Raise if two buffers alive at the same time share bytes (a planner bug), unless
        they are an alias pair at its planned distance whose safety ``check_alias`` proves."""
        pairs = {}
        for al in self.aliases:
            pairs[(al.out, al.over)] = pairs[(al.over, al.out)] = al
        by_name = {b.name: b for b in self.buffers}
        for al in self.aliases:
            out, over = by_name[al.out], by_name[al.over]
            if out.offset - over.offset != al.delta:
                raise AssertionError(f"alias {al.out} over {al.over} placed at distance "
                                     f"{out.offset - over.offset}, planned {al.delta}")
            check_alias(al.access, al.delta)
        for i, a in enumerate(self.buffers):
            if a.offset < 0 or a.offset % self.alignment:
                raise AssertionError(f"buffer {a.name} has no aligned offset")
            for b in self.buffers[i + 1:]:
                if (a.name, b.name) in pairs:
                    continue
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
    params: str | None = None  # the kernel's params JSON (for in-place proofs)


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
    # In-place writes used (output over a dying input) and the arena without them.
    aliases: list = field(default_factory=list)
    arena_bytes_without_inplace: int = 0
    arena_bytes_without_input_inplace: int = 0  # without input, without in-place
    output_names: list[str] = field(default_factory=list)  # every model output, in order
    streamed_input: bool = False  # the input arrives by rows through a callback, outside the arena
    # Memory banks (board.banks): name -> {"capacity", "arena_bytes", "section"}; the first
    # bank is the default arena ("" in Buffer.bank). Empty: one arena.
    banks: dict = field(default_factory=dict)

    def inplace_report(self) -> dict:
        return {
            "aliases": [{"output": a.out, "over": a.over, "delta": a.delta, "saved_bytes": a.saved}
                        for a in self.aliases],
            "arena_bytes_without_inplace": self.arena_bytes_without_inplace,
            "saved_bytes": self.arena_bytes_without_inplace - self.arena_bytes,
            "arena_bytes_without_input_without_inplace": self.arena_bytes_without_input_inplace,
        }

    def check(self) -> None:
        """Re-prove the plan: no live overlap except proven in-place aliases (per bank)."""
        for bank in {b.bank for b in self.buffers.values()}:
            planner = GreedyMemoryPlanner()
            planner.buffers = [b for b in self.buffers.values() if b.bank == bank]
            names = {b.name for b in planner.buffers}
            planner.aliases = [a for a in self.aliases if a.out in names]
            planner.check()

    def bank_report(self) -> dict:
        return {name: dict(info) for name, info in self.banks.items()}


def scratch_buffers(plan: MemoryPlan) -> set:
    """Names of the fused chains' scratch buffers (their ring buffers: the hottest bytes)."""
    return {op.scratch for op in plan.ops if op.scratch}


def place_in_banks(plan: MemoryPlan, banks) -> MemoryPlan:
    """Spread the plan's buffers over memory banks ``[(name, capacity, section[, hot]), ...]``
    (the first is the default arena) so that every bank's own arena fits its capacity.

    Hot banks first: the fused chains' scratch buffers (ring buffers, read and written for
    every row of the chain) go to the first ``hot`` bank (DTCM), largest first, each while
    that bank still fits. Then, greedy: while some bank is over capacity, move the largest
    buffer group (an in-place alias group moves whole) alive at that bank's peak op to the
    first other bank that still fits afterwards. Raises ModelDoesNotFitError when nothing fits."""
    from ..errors import ModelDoesNotFitError

    names = [b[0] for b in banks]
    cap = {b[0]: int(b[1]) for b in banks}
    hot = [b[0] for b in banks if len(b) > 3 and b[3]]
    buffers = list(plan.buffers.values())
    index = {b.name: i for i, b in enumerate(buffers)}
    parent = list(range(len(buffers)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a in plan.aliases:
        parent[find(index[a.out])] = find(index[a.over])
    groups: dict[int, list] = {}
    for i in range(len(buffers)):
        groups.setdefault(find(i), []).append(i)
    where = {g: names[0] for g in groups}

    def plan_bank(bank):
        members = [buffers[i] for g, ms in groups.items() if where[g] == bank for i in ms]
        inside = {b.name for b in members}
        planner, arena = _plan(members, [a for a in plan.aliases if a.out in inside])
        return planner, arena

    if hot:
        rings = scratch_buffers(plan)
        ring_groups = sorted((g for g, ms in groups.items() if any(buffers[i].name in rings for i in ms)),
                             key=lambda g: -sum(buffers[i].size for i in groups[g]))
        for g in ring_groups:
            where[g] = hot[0]
            if plan_bank(hot[0])[1] > cap[hot[0]]:
                where[g] = names[0]
    planned = {bank: plan_bank(bank) for bank in names}
    for _ in range(4 * len(groups)):
        over = [bank for bank in names if planned[bank][1] > cap[bank]]
        if not over:
            break
        bank = over[0]
        planner = planned[bank][0]
        steps = max((b.last_use for b in planner.buffers), default=0) + 1
        peak_step = max(range(steps), key=planner.live_bytes)
        live = sorted((g for g, ms in groups.items() if where[g] == bank and any(
            buffers[i].first_use <= peak_step <= buffers[i].last_use for i in ms)),
            key=lambda g: -sum(buffers[i].size for i in groups[g]))
        moved = False
        for g in live:
            for other in names:
                if other == bank:
                    continue
                where[g] = other
                trial = plan_bank(other)
                if trial[1] <= cap[other]:
                    planned[other], planned[bank], moved = trial, plan_bank(bank), True
                    break
                where[g] = bank
            if moved:
                break
        if not moved:
            raise ModelDoesNotFitError(
                f"the arena does not fit the board's memory banks ({', '.join(f'{n} {cap[n]} B' for n in names)}) "
                f"even spread over them; lower the resolution or width, or fuse (--fuse auto)")
    else:
        raise ModelDoesNotFitError("placing buffers over memory banks did not converge")
    out = {}
    for bank in names:
        planner, _ = planned[bank]
        for b in planner.buffers:
            out[b.name] = Buffer(b.name, b.size, b.first_use, b.last_use, b.offset,
                                 "" if bank == names[0] else bank)
    banks_info = {b[0]: {"capacity": cap[b[0]], "arena_bytes": planned[b[0]][1], "section": b[2],
                         "hot": bool(len(b) > 3 and b[3])} for b in banks}
    result = MemoryPlan(out, plan.ops, plan.shapes, planned[names[0]][1], plan.lower_bound, plan.input_names,
                        plan.output_name, plan.live_bytes, plan.arena_bytes_without_input, plan.aliases,
                        plan.arena_bytes_without_inplace, plan.arena_bytes_without_input_inplace,
                        output_names=plan.output_names, streamed_input=plan.streamed_input, banks=banks_info)
    result.check()
    return result


def _params_json(value) -> str:
    """A kernel's ``tvm_fused.params`` (typed ``KernelParams`` or a JSON string) as JSON for ``op_access``."""
    import dataclasses
    import json

    from ..attrs import kernel_params, to_ffi_value

    params = kernel_params(value)
    params = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params
    return json.dumps(to_ffi_value(params))


def _bytes_of(ty) -> int:
    shape = [int(d) for d in ty.shape]
    return int(np.prod(shape)) * (tvm.DataType(ty.dtype).bits // 8)


def _find_aliases(ops, shapes, sizes, first, last, outputs, exclude=()) -> list[Alias]:
    """For each op, the in-place placement over one dying input that saves the most bytes."""
    aliases, used = [], set()
    for op in ops:
        best = None
        names = [t for t in op.inputs if t is not None]
        for k, t in enumerate(op.inputs):
            if t is None or t in used or t in exclude or op.output in exclude or t in outputs:
                continue
            if last[t] != op.index or names.count(t) > 1 or sizes[t] == 0:
                continue
            if k > 0 and op.op not in ELEMENTWISE_KINDS:
                continue  # windowed kernels and chains: only their data input (argument 0)
            acc = op_access(op.op, op.params, shapes[t], shapes[op.output])
            if acc is None or acc.in_bytes != sizes[t] or acc.out_bytes != sizes[op.output]:
                continue
            found = best_delta(acc)
            if found and (best is None or found[1] > best.saved):
                best = Alias(op.output, t, found[0], acc, found[1])
        if best is not None:
            used.add(best.over)
            aliases.append(best)
    return aliases


def _plan(buffers, aliases):
    planner = GreedyMemoryPlanner()
    for b in buffers:
        planner.add_buffer(b.name, b.size, b.first_use, b.last_use)
    for a in aliases:
        planner.add_alias(a)
    return planner, planner.plan()


def _select_aliases(buffers, candidates, live, planner, arena):
    """Greedy: try the aliases of the ops with the most live bytes first and keep each one
    that lowers the arena. (Every alias at once ties the whole network into one group
    whose offsets drift by the deltas; most aliases away from the peak only cost.)"""
    op_of = {}
    for k, b in enumerate(buffers):
        op_of[b.name] = b.first_use
    order = sorted(candidates, key=lambda a: -live[op_of[a.out]])
    used = []
    for a in order:
        if live[op_of[a.out]] < arena // 2:
            break  # an op with under half the arena live cannot be what sets the peak
        cand, cand_arena = _plan(buffers, used + [a])
        if cand_arena < arena:
            planner, arena, used = cand, cand_arena, used + [a]
    return planner, arena, used


def plan_memory(mod: tvm.IRModule, inplace: bool = True, streamed_input: bool = False) -> MemoryPlan:
    """Plan the arena of a legalized (possibly fused) module's ``main``.

    ``inplace``: let ops write their output over a dying input where ``inplace.py``
    proves it safe; the plan with in-place reuse is kept only when it is smaller.
    ``streamed_input``: the model input never sits in the arena (its first reader is a
    fused chain pulling rows through a callback): it gets a 0-byte slot."""
    func = mod["main"]
    bindings = [b for block in func.body.blocks for b in block.bindings]
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}
    shapes: dict[str, tuple] = {}
    alias: dict[str, str] = {}
    inputs = []
    for p in func.params:
        inputs.append(p.name)
        first[p.name], last[p.name] = 0, 0
        sizes[p.name] = 0 if streamed_input else _bytes_of(p.ty)
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
        params = _params_json(kernel.attrs[PARAMS_ATTR]) if kernel.attrs and PARAMS_ATTR in kernel.attrs else None
        scratch = outs[1][0] if len(outs) > 1 else None
        ops.append(OpRecord(step, f"{kind}_{counts[kind] - 1}", kind, gv.name_hint, args, outs[0][0], macs,
                            scratch, params))
    result = func.body.body
    outputs = tuple_fields.get(result.name) or [alias.get(result.name, result.name)]
    end = max(len(ops) - 1, 0)
    for output in outputs:
        last[output] = end
    buffers = [Buffer(name, sizes[name], first[name], last[name]) for name in first if name not in alias]
    no_input = [b for b in buffers if b.name not in inputs]

    planner, arena = _plan(buffers, [])
    _, arena_no_input = _plan(no_input, [])
    plain = (arena, arena_no_input)
    used = []
    if inplace:
        live = [planner.live_bytes(i) for i in range(len(ops))]
        found = _find_aliases(ops, shapes, sizes, first, last, set(outputs))
        planner, arena, used = _select_aliases(buffers, found, live, planner, arena)
        found = _find_aliases(ops, shapes, sizes, first, last, set(outputs), exclude=set(inputs))
        _, arena_no_input, _ = _select_aliases(no_input, found, live, None, arena_no_input)
    by_name = {b.name: b for b in planner.buffers}
    live = [planner.live_bytes(i) for i in range(len(ops))]
    if streamed_input:
        readers = [op for op in ops if any(t in inputs for t in op.inputs)]
        if [op.index for op in readers] != [0] or ops[0].op != "fused_chain" or len(inputs) != 1:
            raise ValueError("a streamed input must be the only input, read by one fused chain, the first op")
    return MemoryPlan(by_name, ops, shapes, arena, planner.lower_bound(), inputs, outputs[0], live,
                      arena_no_input, used, plain[0], plain[1], output_names=outputs,
                      streamed_input=streamed_input)
