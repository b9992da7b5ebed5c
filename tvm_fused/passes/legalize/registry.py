"""The per-op legalization rules, registered by the name of the Relax op they lower.

A rule turns one pattern of the imported model into integer kernels. Two kinds:

- ``domain="quantize"`` (the usual one): the pattern ``quantize(op(dequantize(x), ...))``.
  The rule is looked up by the name of ``op`` (the producer of the quantize's input, after
  the float activations ``clip``/``relu``/``relu6`` that the core folds into the clamp).
- ``domain="int8"``: an op the frontend applies to int8 tensors directly (TFLite's integer
  average pool ``astype(int32) -> avg_pool2d -> astype(int8)``, integer reshapes, max pool).
  The rule is looked up by the name of that op and may return ``None`` when the value is
  consumed by a later pattern.

Each rule also says which source-model operators it implements (``tflite={...}``,
``onnx={...}``: operator name -> constraints), which fills the one registry of supported
operators (:mod:`tvm_fused.frontend.ops`) that the frontend check and ``docs/operators.md`` read.
See docs/adding_an_op.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

DOMAINS = ("quantize", "int8")


@dataclass(frozen=True)
class Rule:
    """A registered rule: ``lower(ctx, match) -> QTensor | None``."""

    op: str                      # Relax op name, e.g. "relax.nn.conv2d"
    domain: str                  # "quantize" | "int8"
    lower: Callable
    bias: bool = False           # accepts a folded bias add (``match.bias``)
    tflite: dict = field(default_factory=dict)  # TFLite builtin name -> constraints
    onnx: dict = field(default_factory=dict)    # ONNX op type -> constraints

    @property
    def name(self) -> str:
        return self.lower.__name__

    @property
    def module(self) -> str:
        return self.lower.__module__


_RULES: dict[tuple[str, str], Rule] = {}


def register_rule(*ops: str, domain: str = "quantize", bias: bool = False,
                  tflite: dict | None = None, onnx: dict | None = None):
    """Decorator: register ``fn(ctx, match)`` as the rule for the Relax ops ``ops``.

    ``tflite`` / ``onnx`` map the source operators this rule implements to a one-line
    constraint text (shown in docs/operators.md and used by the frontend check).
    Registering an op twice in the same domain is an error (rules must not shadow each other).
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain {domain!r}: use one of {DOMAINS}")
    if not ops:
        raise ValueError("register_rule needs at least one Relax op name")

    def wrap(fn):
        from ...frontend import ops as op_registry

        for op in ops:
            key = (op, domain)
            if key in _RULES and _RULES[key].lower is not fn:
                raise ValueError(f"{op} ({domain}) already has the rule {_RULES[key].module}.{_RULES[key].name}")
            rule = Rule(op, domain, fn, bias, dict(tflite or {}), dict(onnx or {}))
            _RULES[key] = rule
        op_registry.declare(provider=f"{fn.__module__}.{fn.__name__}", relax_ops=ops,
                            tflite=tflite or {}, onnx=onnx or {})
        return fn

    return wrap


def get_rule(op: str, domain: str = "quantize") -> Rule | None:
    return _RULES.get((op, domain))


def rules() -> list[Rule]:
    """All registered rules, in registration order."""
    return list(_RULES.values())
