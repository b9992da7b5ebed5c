"""C identifiers for kernels and constants, derived from the model's layer names.

The legalized ``main`` names each kernel call's output after the layer it
computes (the Relax binding's name hint); this module turns such names into C
identifiers that are

- *sanitized*: only ``[A-Za-z0-9_]``, no leading digit, no C keyword, bounded length;
- *unique*: a ``NameTable`` hands out each identifier once (``conv_1``, ``conv_1_2``, ...);
- *stable*: the result depends only on the names and the order they are requested in,
  never on counters, ``id()`` or hash order, so two compiles give the same C.
"""
from __future__ import annotations

import re

# C99 keywords and the names our generated files use themselves.
_RESERVED = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "arena", "inputs", "outputs", "main",
}
MAX_LENGTH = 48


def c_identifier(name: str, fallback: str = "layer") -> str:
    """``"model/block_3 expand:0"`` -> ``"model_block_3_expand_0"``: a valid, readable C identifier."""
    ident = re.sub(r"[^0-9A-Za-z_]+", "_", str(name))
    ident = re.sub(r"_+", "_", ident).strip("_")
    if len(ident) > MAX_LENGTH:  # keep the end: the most specific part of a scoped name
        ident = ident[-MAX_LENGTH:].lstrip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    if ident in _RESERVED:
        ident += "_"
    return ident


class NameTable:
    """Unique C identifiers, handed out in request order (``fresh("conv")`` -> conv, conv_2, conv_3)."""

    def __init__(self, reserved=()):
        self._used = set(reserved)

    def fresh(self, hint: str) -> str:
        base = c_identifier(hint)
        name, n = base, 2
        while name in self._used:
            name, n = f"{base}_{n}", n + 1
        self._used.add(name)
        return name

    def __contains__(self, name: str) -> bool:
        return name in self._used


def comment_text(text: str) -> str:
    """``text`` made safe inside a C ``/* ... */`` comment (one line, no comment delimiters)."""
    return " ".join(str(text).replace("*/", "* /").replace("/*", "/ *").split())
