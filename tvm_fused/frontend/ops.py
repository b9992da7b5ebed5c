"""The one registry of supported operators: the frontend check, the legalizer and the docs read it.

Entries are declared by the legalization rules (``tvm_fused.passes.legalize``, decorator
``register_rule(..., tflite={...}, onnx={...})``) and by the legalizer's core (quantize,
dequantize, folded activations). Nothing else lists supported operators.

    python -m tvm_fused.frontend.ops --markdown      # docs/operators.md
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

FRAMEWORKS = {"tflite": "TFLite", "onnx": "ONNX"}


@dataclass
class SupportedOp:
    """A source-model operator tvm-fused compiles, with its constraints and where it is lowered."""

    framework: str  # "tflite" | "onnx"
    name: str       # TFLite builtin name (CONV_2D) or ONNX op type (Conv)
    constraints: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)  # rule functions ("module.function")


_OPS: dict[tuple[str, str], SupportedOp] = {}
_RELAX_OPS: set[str] = set()


def declare(provider: str, relax_ops=(), tflite: dict | None = None, onnx: dict | None = None) -> None:
    """Record that ``provider`` lowers ``relax_ops`` and implements the listed source operators
    (name -> one-line constraints). Called by ``register_rule``; declaring twice merges."""
    _RELAX_OPS.update(relax_ops)
    for framework, table in (("tflite", tflite or {}), ("onnx", onnx or {})):
        for name, constraint in table.items():
            entry = _OPS.setdefault((framework, name), SupportedOp(framework, name))
            if constraint and constraint not in entry.constraints:
                entry.constraints.append(constraint)
            if provider not in entry.providers:
                entry.providers.append(provider)


def _load() -> None:
    # the rules fill the registry when their package is imported
    from ..passes import legalize  # noqa: F401


def supported(framework: str) -> dict[str, SupportedOp]:
    """Supported operators of ``framework`` ("tflite" | "onnx"), by name."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework {framework!r}: use one of {sorted(FRAMEWORKS)}")
    _load()
    return {name: op for (fw, name), op in sorted(_OPS.items()) if fw == framework}


def relax_ops() -> frozenset[str]:
    """Relax ops the legalizer handles (a rule or the core)."""
    _load()
    return frozenset(_RELAX_OPS)


def unsupported_message(kind: str, bad: dict[str, tuple[int, str]], where: str, supported_names=None) -> str:
    """One message naming every unsupported op with its count and first node."""
    parts = [f"{op} ({count} node{'s' if count != 1 else ''}, first '{first}')"
             for op, (count, first) in sorted(bad.items())]
    text = (f"{where} uses {len(bad)} {kind} operator{'s' if len(bad) != 1 else ''} tvm-fused cannot "
            f"compile: {'; '.join(parts)}.")
    if supported_names:
        text += f" Supported: {', '.join(sorted(supported_names))} (constraints: docs/operators.md)."
    return text


def check_model_ops(framework: str, nodes, where: str = "the model") -> None:
    """Raise one ``UnsupportedModelError`` naming every unsupported operator in ``nodes``
    (pairs of operator name and node name, in model order) with its count and first node."""
    from ..errors import UnsupportedModelError

    table = supported(framework)
    bad: dict[str, tuple[int, str]] = {}
    for op, node in nodes:
        if op not in table:
            count, first = bad.get(op, (0, node))
            bad[op] = (count + 1, first)
    if bad:
        raise UnsupportedModelError(unsupported_message(FRAMEWORKS[framework], bad, where, table))


def markdown() -> str:
    """docs/operators.md, generated from the registry."""
    lines = ["# Supported operators", "",
             "Generated from the op registry by `python -m tvm_fused.frontend.ops --markdown > docs/operators.md`;",
             "`tests/test_op_registry.py` checks that this file is current. A model using any other operator",
             "is rejected before compilation with one error naming every unsupported operator, its count and",
             "its first node. Activations are int8 (per-tensor), weights int8 (per-channel or per-tensor).",
             "To add an operator, see [adding_an_op.md](adding_an_op.md).", ""]
    for framework, title in FRAMEWORKS.items():
        lines += [f"## {title}", "", "| operator | constraints | lowered by |", "|---|---|---|"]
        for name, op in supported(framework).items():
            providers = ", ".join(f"`{p.removeprefix('tvm_fused.passes.')}`" for p in op.providers)
            lines.append(f"| `{name}` | {'; '.join(op.constraints) or '-'} | {providers} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tvm_fused.frontend.ops", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print docs/operators.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
    else:
        for framework in FRAMEWORKS:
            print(f"{FRAMEWORKS[framework]}: {', '.join(supported(framework))}")
    return 0


if __name__ == "__main__":
    # run the imported module's main: the rules declare into ``tvm_fused.frontend.ops``, not ``__main__``
    from tvm_fused.frontend.ops import main as _main

    sys.exit(_main())
