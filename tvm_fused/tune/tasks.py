"""Distinct kernel tasks of a model: kernel kind + the shape parameters a schedule depends on.

A task is one tunable kernel shape (``Conv2DParams`` / ``DenseParams`` without the zero
points and clamp bounds, which are constants in the same code). Kernels of equal shape share
one task; ``weight`` counts how often the model calls it, ``macs`` its multiply-accumulates
per call (so the model's tuned instructions are about ``sum(weight * best(task))``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# fields that are constants inside the kernel code, not loop structure
_NON_SHAPE = ("in_zp", "out_zp", "act_min", "act_max")
TUNABLE_KINDS = ("conv2d", "conv2d_1x1", "depthwise_conv2d", "dense")


@dataclass(frozen=True)
class Task:
    """One tunable kernel shape. ``shape``: the params' shape fields as a sorted JSON-able dict."""

    kind: str
    shape: tuple  # ((field, value), ...) sorted by field; values tuples or ints
    weight: int = 1
    macs: int = 0

    @property
    def key(self) -> str:
        """Stable identity of the task (kind + shape), used in the log."""
        return f"{self.kind}:{json.dumps(self.shape_dict(), sort_keys=True, separators=(',', ':'))}"

    @property
    def short_key(self) -> str:
        return hashlib.sha1(self.key.encode()).hexdigest()[:10]

    def shape_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.shape}

    @property
    def config_kind(self) -> str:
        return "depthwise" if self.kind == "depthwise_conv2d" else "gemm"

    def describe(self) -> str:
        d = self.shape_dict()
        if "in_shape" in d:
            _, h, w, c = d["in_shape"]
            kh, kw = d["kernel"]
            return f"{self.kind} {h}x{w}x{c}->{d['out_channels']} k{kh}x{kw} s{d['strides'][0]}"
        return f"{self.kind} {d['batch']}x{d['in_features']}->{d['out_features']}"


def task_of(kind: str, params) -> Task | None:
    """The task of one kernel's params dataclass, or None if the kernel has no schedule space."""
    from ..schedules import Conv2DParams, DenseParams

    if kind not in TUNABLE_KINDS or not isinstance(params, (Conv2DParams, DenseParams)):
        return None
    shape = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v)
                         for k, v in dataclasses.asdict(params).items() if k not in _NON_SHAPE))
    return Task(kind, shape, 1, int(params.macs))


def kind_of_params(params) -> str:
    """The kernel kind the legalizer gives these params (as passes/legalize/conv.py, dense.py)."""
    from ..schedules import Conv2DParams

    if isinstance(params, Conv2DParams):
        if params.depthwise:
            return "depthwise_conv2d"
        return "conv2d_1x1" if tuple(params.kernel) == (1, 1) else "conv2d"
    return "dense"


def extract_tasks(mod) -> list[Task]:
    """Distinct tunable tasks of a legalized (unfused) IRModule, weighted by call count, largest first."""
    from tvm import relax

    from ..attrs import PARAMS_ATTR

    counts: dict[str, Task] = {}
    main = mod["main"]

    for block in main.body.blocks:
        for binding in block.bindings:
            value = binding.value
            if not isinstance(value, relax.Call) or not value.args or not isinstance(value.args[0], relax.GlobalVar):
                continue
            func = mod[value.args[0]]
            attrs = func.attrs
            if attrs is None or PARAMS_ATTR not in attrs:
                continue
            kp = attrs[PARAMS_ATTR]
            task = task_of(str(kp.kind), kp.to_python())
            if task is None:
                continue
            old = counts.get(task.key)
            counts[task.key] = task if old is None else dataclasses.replace(old, weight=old.weight + 1)
    return sorted(counts.values(), key=lambda t: -t.weight * t.macs)


def model_tasks(model, board: str = "host") -> list[Task]:
    """Tasks of a model file (compiled unfused, without C)."""
    import tvm_fused

    cm = tvm_fused.compile(model, board=board, fuse="none", progress=False, codegen=False)
    return extract_tasks(cm.mod)
