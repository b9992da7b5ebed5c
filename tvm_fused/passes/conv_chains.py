"""Find fusable conv chains in a legalized module and split them into blocks.

A chain is a maximal run of consecutive kernel calls (conv2d, depthwise, 1x1,
residual add) where each conv reads the previous op's output, each add reads
tensors of the chain (or its input), and no tensor made inside the chain is
read outside it except the last one. Blocks are the units ``--fuse N`` counts:
the stem conv, then each inverted residual block (expand? -> depthwise ->
project (-> add)).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import tvm
from tvm import relax

from ..attrs import kernel_params
from ..schedules import AddParams, Conv2DParams
from .legalize_qdq import OP_ATTR, PARAMS_ATTR

CONV_KINDS = {"conv2d", "conv2d_1x1", "depthwise_conv2d"}
CHAIN_KINDS = CONV_KINDS | {"add"}


@dataclass
class KernelCall:
    """One call_tir binding of the legalized main function."""

    index: int
    var: relax.Var
    call: relax.Call
    kind: str
    params: object  # Conv2DParams | AddParams | None
    tensor_args: list  # relax Vars among the args, in order

    @property
    def name(self) -> str:
        return self.var.name

    @property
    def arg_names(self) -> list:
        return [a.name for a in self.tensor_args]


@dataclass
class Chain:
    calls: list
    blocks: list = field(default_factory=list)  # list of lists of calls

    @property
    def input_var(self):
        return self.calls[0].tensor_args[0]


def _params(kind, value):
    if kind in CONV_KINDS:
        return kernel_params(value, Conv2DParams)
    if kind == "add":
        return kernel_params(value, AddParams)
    return None


def kernel_calls(mod: tvm.IRModule) -> list[KernelCall]:
    func = mod["main"]
    calls = []
    for block in func.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if not isinstance(value, relax.Call) or not value.op.same_as(tvm.ir.Op.get("relax.call_tir")):
                continue
            kernel = mod[value.args[0]]
            attrs = kernel.attrs or {}
            kind = str(attrs[OP_ATTR]) if OP_ATTR in attrs else "?"
            params = _params(kind, attrs[PARAMS_ATTR]) if PARAMS_ATTR in attrs and kind in CHAIN_KINDS else None
            tensors = [a for a in value.args[1].fields if isinstance(a, relax.Var)]
            calls.append(KernelCall(len(calls), binding.var, value, kind, params, tensors))
    return calls


def _users(calls, output_names):
    users: dict = {}
    for c in calls:
        for a in c.arg_names:
            users.setdefault(a, []).append(c.index)
    for name in output_names:  # a model output counts as a user: it must stay a whole tensor
        users.setdefault(name, []).append(len(calls))
    return users


def _output_names(func) -> list[str]:
    """Names of the tensors ``main`` returns (the fields of a final tuple, for several outputs)."""
    result = func.body.body
    for block in func.body.blocks:
        for binding in block.bindings:
            if binding.var.same_as(result) and isinstance(binding.value, relax.Tuple):
                return [f.name for f in binding.value.fields]
    return [result.name]


def find_chains(mod: tvm.IRModule) -> list[Chain]:
    """Maximal fusable chains, in execution order."""
    calls = kernel_calls(mod)
    users = _users(calls, _output_names(mod["main"]))
    chains = []
    i = 0
    while i < len(calls):
        run = _run_from(calls, i)
        if not run:
            i += 1
            continue
        best = None
        for end in range(len(run), 0, -1):  # longest valid prefix
            if _valid(run[:end], users):
                best = run[:end]
                break
        if best is None or len(best) < 2 or not any(c.kind in CONV_KINDS for c in best):
            # a lone conv has no intermediate tensor to stream: nothing to fuse
            i += 1
            continue
        chain = Chain(best)
        chain.blocks = _split_blocks(best, users)
        chains.append(chain)
        i = best[-1].index + 1
    return chains


def _run_from(calls, start):
    """Consecutive chain-kind calls from ``start`` that read only the previous output / chain tensors."""
    run = []
    produced = set()
    for c in calls[start:]:
        if c.kind not in CHAIN_KINDS or c.params is None:
            break
        shape = tuple(int(d) for d in c.var.ty.shape)
        if len(shape) != 4 or shape[0] != 1:
            break
        if not run:
            if c.kind == "add":
                break
            chain_input = c.arg_names[0]
        elif c.kind == "add":
            if run[-1].name not in c.arg_names or \
                    any(a not in produced and a != chain_input for a in c.arg_names):
                break
        elif c.arg_names[0] != run[-1].name:
            break
        run.append(c)
        produced.add(c.name)
    return run


def _valid(run, users) -> bool:
    inside = {c.index for c in run}
    for c in run[:-1]:
        if any(u not in inside for u in users.get(c.name, [])):
            return False
    return True


def _split_blocks(run, users) -> list[list]:
    """Cut after: an add, a regular KxK conv (the stem), a channel-narrowing 1x1 conv (a
    project) unless an add of its output follows."""
    blocks, current = [], []
    for pos, c in enumerate(run):
        current.append(c)
        nxt = run[pos + 1] if pos + 1 < len(run) else None
        end = False
        if c.kind == "add":
            end = True
        elif c.kind == "conv2d":
            end = True
        elif c.kind == "conv2d_1x1" and c.params.out_channels < c.params.in_shape[3]:
            end = not (nxt is not None and nxt.kind == "add" and c.name in nxt.arg_names)
        if end:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks
