"""Replace chosen conv chains by one line-buffered kernel each, and choose which."""
from __future__ import annotations

import json

import numpy as np
import tvm
from tvm import relax

from ..errors import FusionError
from ..schedules.fused_chain import INPUT_ROWS_CALLBACK, ChainLayer, fused_chain_kernel, plan_chain
from .conv_chains import CONV_KINDS, find_chains, kernel_calls
from .legalize_qdq import IO_ATTR, MACS_ATTR, OP_ATTR, PARAMS_ATTR


def _const(expr) -> np.ndarray:
    return expr.value.numpy()


def _chain_layers(calls):
    """ChainLayers + the int8 weight blob and int32 table blob of a run of kernel calls."""
    tensor_id = {calls[0].arg_names[0]: 0}
    layers, weights, tables = [], [], []
    w_len = t_len = 0
    for k, c in enumerate(calls):
        if c.kind == "add":
            layers.append(ChainLayer("add", c.params, [tensor_id[a] for a in c.arg_names]))
        else:
            # the kernel's constants, already in its micro-kernel layout (schedules/weight_layout.py)
            *own, table = [_const(a) for a in c.call.args[1].fields[1:]]  # int8 w8 and/or int32 w32
            w8 = next((a for a in own if a.dtype == np.int8), np.zeros(0, np.int8))
            w32 = next((a for a in own if a.dtype == np.int32), np.zeros(0, np.int32))
            layers.append(ChainLayer("conv", c.params, [tensor_id[c.arg_names[0]]], w_len, t_len + w32.size,
                                     wide_offset=t_len))
            weights.append(w8.reshape(-1).astype(np.int8))
            tables += [w32.reshape(-1).astype(np.int32), table.reshape(-1).astype(np.int32)]
            w_len += w8.size
            t_len += w32.size + table.size
        tensor_id[c.name] = k + 1
    w_blob = np.concatenate(weights) if w_len else np.zeros(1, np.int8)
    t_blob = np.concatenate(tables) if t_len else np.zeros(1, np.int32)
    return layers, w_blob, t_blob


class FuseConvChains:
    """Rewrite: each selected run of kernel calls becomes one ``fused_chain`` call_tir.

    Precondition: a legalized module (``LegalizeQDQ``) whose selected runs come from
    ``find_chains``. The fused call returns (output, scratch); the scratch holds the
    ring buffers, so the memory planner gives it arena space only during the call.
    Runs after legalization, before memory planning.
    """

    def __init__(self, selected: list[list], stream_input: bool = False):
        self.selected = selected  # lists of KernelCall names, each a consecutive run
        # the run reading the model input pulls its rows through INPUT_ROWS_CALLBACK
        self.stream_input = stream_input

    def __call__(self, mod: tvm.IRModule) -> tvm.IRModule:
        if not self.selected:
            return mod
        calls = {c.name: c for c in kernel_calls(mod)}
        first_of = {run[0]: run for run in self.selected}
        skipped = {name for run in self.selected for name in run[1:]}
        old = mod["main"]
        kernels_only = tvm.IRModule({gv: f for gv, f in mod.functions.items() if gv.name_hint != "main"})
        bb = relax.BlockBuilder(kernels_only)
        mapping: dict[str, relax.Expr] = {}
        info = []
        params = {p.name for p in old.params}
        streamed_runs = 0

        def sub(expr):
            return mapping.get(expr.name, expr) if isinstance(expr, relax.Var) else expr

        with bb.function("main", list(old.params)):
            with bb.dataflow():
                for block in old.body.blocks:
                    for binding in block.bindings:
                        var, value = binding.var, binding.value
                        if var.name in skipped:
                            continue
                        if var.name in first_of:
                            run = [calls[n] for n in first_of[var.name]]
                            streamed = self.stream_input and run[0].arg_names[0] in params
                            out, summary = self._emit_fused(bb, run, sub, streamed)
                            streamed_runs += int(streamed)
                            mapping[run[-1].name] = out
                            info.append(summary)
                            continue
                        if isinstance(value, relax.Call):
                            new_args = [sub(a) for a in value.args[1].fields]
                            new = relax.call_tir(value.args[0], new_args, var.ty)
                            mapping[var.name] = bb.emit(new, var.name)
                        elif isinstance(value, relax.Var):
                            mapping[var.name] = sub(value)
                        elif isinstance(value, relax.Tuple):  # several model outputs
                            mapping[var.name] = bb.emit(relax.Tuple([sub(f) for f in value.fields]))
                result = sub(old.body.body)
                gv = bb.emit_output(result)
            bb.emit_func_output(gv)
        if self.stream_input and streamed_runs != 1:
            raise FusionError("stream_input needs a fused chain whose input is the model input (the first "
                              "blocks); fuse with --fuse auto or N >= 1 so that the stem starts a chain")
        new_mod = bb.get()
        main = new_mod["main"].with_attr(IO_ATTR, old.attrs[IO_ATTR])
        main = main.with_attr("tvm_fused.fused_chains", json.dumps(info))
        new_mod["main"] = main
        return relax.transform.DeadCodeElimination(["main"])(new_mod)

    @staticmethod
    def _emit_fused(bb, run, sub, stream_input=False):
        layers, w_blob, t_blob = _chain_layers(run)
        x = sub(run[0].tensor_args[0])
        in_shape = tuple(int(d) for d in run[0].tensor_args[0].ty.shape)
        try:
            func, geometry = fused_chain_kernel(in_shape, layers, w_blob.size, t_blob.size,
                                                stream_input=stream_input)
        except ValueError as e:
            raise FusionError(f"cannot stream the input into this chain: {e}") from e
        macs = sum(c.params.macs for c in run if c.kind in CONV_KINDS)
        summary = {
            "layers": [c.kind for c in run],
            "replaced": [c.name for c in run],
            "input_shape": list(in_shape),
            "output_shape": [1, *geometry.shapes[-1]],
            "ring_rows": geometry.ring_rows[1:-1],
            "ring_bytes": [geometry.ring_rows[t] * int(np.prod(geometry.shapes[t]))
                           // geometry.shapes[t][0] for t in range(1, len(geometry.shapes) - 1)],
            "scratch_bytes": geometry.scratch_bytes,
            "unfused_intermediate_bytes": int(sum(int(np.prod(s)) for s in geometry.shapes[1:-1])),
            "macs": macs,
            # row schedule facts for in-place proofs (passes/inplace.py: chain_access)
            "first_window": list(layers[0].window),
            "steps": geometry.steps,
            "out_row_step": geometry.out_row_step,
        }
        if stream_input:
            h, w, c = geometry.shapes[0]
            summary["stream_input"] = {"rows": geometry.ring_rows[0], "row_buffer_bytes": geometry.ring_rows[0] * w * c,
                                       "callback": INPUT_ROWS_CALLBACK}
        func = func.with_attrs({OP_ATTR: "fused_chain", MACS_ATTR: macs, PARAMS_ATTR: json.dumps(summary)})
        gv = bb.add_func(func.without_attr("global_symbol"), "fused_chain")
        out_shape = (1, *geometry.shapes[-1])
        out_ty = [relax.TensorType(out_shape, "int8"), relax.TensorType((geometry.scratch_bytes,), "int8")]
        fused = bb.emit(relax.call_tir(gv, [x, relax.const(w_blob), relax.const(t_blob)], out_ty), "fused_chain")
        out = bb.emit(relax.TupleGetItem(fused, 0), run[-1].name)
        return out, summary


def fusable_blocks(mod: tvm.IRModule):
    """[(chain index, block calls)] in execution order: what ``--fuse N`` counts."""
    return [(ci, block) for ci, chain in enumerate(find_chains(mod)) for block in chain.blocks]


def select_first_blocks(mod: tvm.IRModule, n: int) -> list[list[str]]:
    """Runs covering the first ``n`` fusable blocks (one run per chain touched)."""
    blocks = fusable_blocks(mod)
    if n > len(blocks):
        why = _why_no_blocks(mod) if not blocks else "stem conv and inverted residual blocks"
        raise FusionError(f"--fuse {n}: this model has only {len(blocks)} fusable blocks "
                          f"({why}); use 0..{len(blocks)} or auto")
    runs: dict[int, list[str]] = {}
    for ci, block in blocks[:n]:
        runs.setdefault(ci, []).extend(c.name for c in block)
    return [names for _, names in sorted(runs.items())]


# Instructions a fused chain costs beyond its layers unfused, per MAC of the chain: ring
# addressing and row bookkeeping. Measured on QEMU mps2-an500 by benchmarks/fusion.py with the
# earlier plain-loop kernels (worst: mbv2-0.5-320, 1.0254x with ~38% of the MACs fused; 0.02-0.06
# elsewhere). With the DSP micro-kernels every fused model measures 0.992-1.000x
# (benchmarks/results/fusion.json, 2026-12-06), so this is a conservative upper bound; it only
# limits how much `auto` may fuse under a latency budget. Fusion adds no MACs.
FUSED_OVERHEAD_PER_MAC = 0.07


def estimated_latency_ratio(mod: tvm.IRModule, fused_macs: int) -> float:
    """Estimated fused/unfused instruction ratio from MACs and the measured overhead."""
    total = sum(c.params.macs for c in kernel_calls(mod) if c.kind in CONV_KINDS) or 1
    return 1.0 + FUSED_OVERHEAD_PER_MAC * fused_macs / total


OBJECTIVES = ("arena", "arena_without_input")


def _geometry_layers(calls):
    """ChainLayers (no weights) of a run: enough for ``plan_chain``'s ring sizes."""
    tensor_id = {calls[0].arg_names[0]: 0}
    layers = []
    for k, c in enumerate(calls):
        if c.kind == "add":
            layers.append(ChainLayer("add", c.params, [tensor_id[a] for a in c.arg_names]))
        else:
            layers.append(ChainLayer("conv", c.params, [tensor_id[c.arg_names[0]]]))
        tensor_id[c.name] = k + 1
    return layers


class FusionSearch:
    """Which runs of blocks to fuse: the segmentation of the op sequence that minimises the
    estimated peak, then the estimated instructions, under a latency budget.

    Every op outside a fused run costs its unfused live bytes less the best in-place saving
    at that op (``inplace.py``); a fused run of blocks ``i..j`` costs its input + ring
    scratch (``plan_chain``) + output + tensors alive across it, less the in-place saving
    of its output over its input. For a peak bound P, the cheapest segmentation whose every
    segment stays <= P is a shortest path over blocks (fused run: ``FUSED_OVERHEAD_PER_MAC``
    x its MACs / total MACs; unfused block: 0). The smallest P whose cheapest segmentation
    meets the budget wins; the few best are then planned for real (``plan_fn``)."""

    def __init__(self, mod, objective="arena", stream_input=False):
        from .inplace import best_delta, chain_access
        from .memory_plan import _find_aliases, plan_memory

        self.mod = mod
        self.blocks = fusable_blocks(mod)  # [(chain index, calls)]
        plan = plan_memory(mod, inplace=False)
        self.plan = plan
        self.stream_input = stream_input
        skip = set(plan.input_names) if objective == "arena_without_input" or stream_input else set()
        bufs = [b for b in plan.buffers.values() if b.name not in skip]
        self.bufs = bufs
        sizes = {b.name: b.size for b in plan.buffers.values()}
        first = {b.name: b.first_use for b in plan.buffers.values()}
        last = {b.name: b.last_use for b in plan.buffers.values()}
        saving = {}
        for a in _find_aliases(plan.ops, plan.shapes, sizes, first, last, plan.output_name, exclude=skip):
            saving[first[a.out]] = a.saved
        self.op_cost = [sum(b.size for b in bufs if b.first_use <= i <= b.last_use) - saving.get(i, 0)
                        for i in range(len(plan.ops))]
        self.total_macs = sum(c.params.macs for c in kernel_calls(mod) if c.kind in CONV_KINDS) or 1
        self.op_index = {op.output: op.index for op in plan.ops}
        self.skip, self.sizes, self.first, self.last = skip, sizes, first, last
        self._best_delta, self._chain_access = best_delta, chain_access
        self._runs = {}

    def block_ops(self, k):
        return [self.op_index[c.name] for c in self.blocks[k][1]]

    def run(self, i, j):
        """(estimated peak, MACs) of fusing blocks i..j (one chain), or None if not fusable."""
        key = (i, j)
        if key not in self._runs:
            self._runs[key] = self._run(i, j)
        return self._runs[key]

    def _run(self, i, j):
        if self.blocks[i][0] != self.blocks[j][0]:
            return None
        calls = [c for k in range(i, j + 1) for c in self.blocks[k][1]]
        if len(calls) < 2 or not any(c.kind in CONV_KINDS for c in calls):
            return None
        geometry = plan_chain(tuple(int(d) for d in calls[0].tensor_args[0].ty.shape), _geometry_layers(calls))
        a, b = self.op_index[calls[0].name], self.op_index[calls[-1].name]
        x, y = calls[0].arg_names[0], calls[-1].name
        across = sum(buf.size for buf in self.bufs
                     if buf.first_use < a and buf.last_use > b and buf.name != x)
        in_bytes = 0 if x in self.skip else self.sizes[x]
        saved = 0
        if in_bytes and self.last[x] <= b:
            layers = _geometry_layers(calls)
            acc = self._chain_access(self.plan.shapes[x], self.plan.shapes[y], list(layers[0].window),
                                     geometry.out_row_step, geometry.steps)
            found = self._best_delta(acc)
            saved = found[1] if found else 0
        elif self.last.get(x, -1) > b:
            across += 0  # the run input stays alive after the run: counted by in_bytes already
        scratch = geometry.scratch_bytes
        if self.stream_input and x in self.plan.input_names:
            scratch = plan_chain(tuple(int(d) for d in calls[0].tensor_args[0].ty.shape),
                                 _geometry_layers(calls), True).scratch_bytes
        peak = in_bytes + scratch + self.sizes[y] + across - saved
        macs = sum(c.params.macs for c in calls if c.kind in CONV_KINDS)
        return peak, macs

    def cheapest(self, bound):
        """Min-overhead segmentation with every segment's estimated peak <= bound, or None."""
        n = len(self.blocks)
        in_block = {op for k in range(n) for op in self.block_ops(k)}
        if any(c > bound for i, c in enumerate(self.op_cost) if i not in in_block):
            return None
        inf = float("inf")
        best = [inf] * (n + 1)
        choice = [None] * (n + 1)
        best[0] = 0.0
        streamed_start = self.stream_input
        if streamed_start and not (self.blocks and self.blocks[0][1][0].arg_names[0] in self.plan.input_names):
            return None
        for k in range(1, n + 1):
            if best[k - 1] < inf and all(self.op_cost[o] <= bound for o in self.block_ops(k - 1)) \
                    and not (streamed_start and k == 1):
                best[k], choice[k] = best[k - 1], None
            for i in range(k - 1, -1, -1):
                if best[i] == inf:
                    continue
                r = self.run(i, k - 1)
                if r is None:
                    if self.blocks[i][0] != self.blocks[k - 1][0]:
                        break
                    continue
                cost = best[i] + FUSED_OVERHEAD_PER_MAC * r[1] / self.total_macs
                if r[0] <= bound and cost < best[k] - 1e-12:
                    best[k], choice[k] = cost, i
        if best[n] == inf:
            return None
        runs, k = [], n
        while k > 0:
            if choice[k] is None:
                k -= 1
            else:
                runs.append((choice[k], k - 1))
                k = choice[k]
        return 1.0 + best[n], sorted(runs)

    def candidates(self, latency_budget=None, count=4):
        """Up to ``count`` distinct segmentations, smallest estimated peak first:
        [(estimated peak, estimated latency ratio, [(first block, last block), ...])]."""
        n = len(self.blocks)
        bounds = set(self.op_cost)
        for i in range(n):
            for j in range(i, n):
                r = self.run(i, j)
                if r is not None:
                    bounds.add(r[0])
        out, seen = [], set()
        for bound in sorted(bounds):
            found = self.cheapest(bound)
            if found is None:
                continue
            ratio, runs = found
            if latency_budget is not None and ratio > latency_budget:
                continue
            key = tuple(runs)
            if key in seen:
                continue
            seen.add(key)
            out.append((bound, ratio, runs))
            if len(out) >= count:
                break
        return out

    def names(self, runs):
        return [[c.name for k in range(i, j + 1) for c in self.blocks[k][1]] for i, j in runs]


def fuse_conv_chains(mod: tvm.IRModule, fuse, ram_budget=None, plan_fn=None, latency_budget=None,
                     objective: str = "arena", stream_input: bool = False):
    """Apply ``fuse`` = "none" | "auto" | N; returns (module, report entry).

    ``auto``: ``FusionSearch`` picks runs of blocks anywhere in the network (several
    chains, or the whole trunk as one) minimising the arena; ``latency_budget``: the
    largest estimated fused/unfused instruction ratio accepted, e.g. 1.05. ``objective``
    (auto only): minimise the whole arena (default: what the chip needs) or the arena
    without the model input (the scope MCUNetV2 and msf-CNN report, where the input is an
    I/O buffer of its own). ``N``: the first N fusable blocks. ``stream_input``: the
    first chain starts at the model input and pulls its rows through a callback; the
    input leaves the arena (objective: the arena without it)."""
    if objective not in OBJECTIVES:
        raise FusionError(f"fuse objective {objective!r}: use one of {', '.join(OBJECTIVES)}")

    from .memory_plan import plan_memory

    if stream_input:
        objective = "arena"
        plan_fn = plan_fn or (lambda m: plan_memory(m, streamed_input=True))

    def cost(plan):
        return plan.arena_bytes if objective == "arena" else plan.arena_bytes_without_input

    plan_fn = plan_fn or plan_memory
    blocks = fusable_blocks(mod)
    info = {"mode": str(fuse), "fusable_blocks": len(blocks), "chains": []}
    if fuse == "none" or fuse == 0:
        return mod, info
    base = plan_memory(mod) if stream_input else plan_fn(mod)
    info["arena_bytes_unfused"] = base.arena_bytes
    info["peak_op_unfused"] = _peak_op(base)
    if fuse == "auto":
        if not blocks:
            info["explanation"] = f"nothing to fuse: {_why_no_blocks(mod)}; compiled unchanged"
            return mod, info
        search = FusionSearch(mod, objective, stream_input)
        best = (float("inf") if stream_input else cost(base), [], mod, base)
        cands = search.candidates(latency_budget)
        if stream_input and not cands:
            raise FusionError("stream_input: no fused chain can start at the model input within the latency "
                              f"budget {latency_budget}; raise --latency-budget or drop --stream-input")
        for _, _, runs in cands:
            cand = FuseConvChains(search.names(runs), stream_input)(mod)
            plan = plan_fn(cand)
            if cost(plan) < best[0]:
                best = (cost(plan), runs, cand, plan)
        if latency_budget is not None:
            info["latency_budget"] = latency_budget
        _, runs, new_mod, plan = best
        arena = plan.arena_bytes
        info["objective"] = objective
        info["blocks_fused"] = sum(j - i + 1 for i, j in runs)
        info["runs"] = [[i, j] for i, j in runs]
        where = ", ".join(f"{i}..{j}" if j > i else f"{i}" for i, j in runs)
        info["explanation"] = (
            f"fused blocks {where} of {len(blocks)} ({len(runs)} chain{'s' if len(runs) != 1 else ''}): "
            f"arena {base.arena_bytes} -> {arena} bytes; the peak is now at {_peak_op(plan)}" if runs else
            f"no fusion lowers the arena below {base.arena_bytes} bytes (peak at {_peak_op(base)})"
            + (f" within the latency budget {latency_budget}" if latency_budget is not None else "") + "; unchanged")
    else:
        n = int(fuse)
        new_mod = FuseConvChains(select_first_blocks(mod, n), stream_input)(mod)
        plan = plan_fn(new_mod)
        info["blocks_fused"] = n
        info["explanation"] = f"fused the first {n} of {len(blocks)} blocks as requested"
    info["arena_bytes_fused"] = plan.arena_bytes
    info["peak_op_fused"] = _peak_op(plan)
    chains = new_mod["main"].attrs.get("tvm_fused.fused_chains") if new_mod["main"].attrs else None
    info["chains"] = json.loads(str(chains)) if chains is not None else []
    info["estimated_latency_ratio"] = round(
        estimated_latency_ratio(mod, sum(c["macs"] for c in info["chains"])), 4)
    return new_mod, info


def _why_no_blocks(mod) -> str:
    """Why a model has no fusable block: the real cause, e.g. a batch > 1."""
    attrs = mod["main"].attrs
    from ..attrs import model_io

    io = model_io(mod["main"]) if attrs is not None and IO_ATTR in attrs else {"inputs": []}
    dims = io["inputs"][0]["shape"] if io["inputs"] else []
    if len(dims) == 4 and dims[0] != 1:
        return (f"the input batch is {dims[0] if dims[0] is not None else 'dynamic'}, and fused chains are built "
                "for batch 1 (export the model with batch 1)")
    return "no chain of convolutions in this model"


def _peak_op(plan) -> str:
    if not plan.ops:
        return "-"
    i = int(np.argmax(plan.live_bytes))
    return f"op {i} '{plan.ops[i].name}' ({plan.live_bytes[i]} bytes live)"
