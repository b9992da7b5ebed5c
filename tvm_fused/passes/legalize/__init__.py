"""Per-op legalization: the core walk (``core``) and one rule module per op family.

Importing this package registers every rule (and fills :mod:`tvm_fused.frontend.ops`).
"""
from .core import Legalizer, Match, OutputQuant, QTensor
from .registry import Rule, get_rule, register_rule, rules

# rule modules, one op family each (importing registers them)
from . import add, conv, dense, layout, pad, pool, pool_max, requantize, reshape  # noqa: E402,F401  isort: skip
from . import activations, binary, softmax  # noqa: E402,F401  isort: skip

__all__ = ["Legalizer", "Match", "OutputQuant", "QTensor", "Rule", "get_rule", "register_rule", "rules"]
