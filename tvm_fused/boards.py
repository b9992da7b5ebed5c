"""Boards we compile for: memory sizes that budgets and reports refer to."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import TvmFusedError


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    sram_bytes: int | None  # RAM available to arena + stack + runtime data (None: host, unlimited)
    flash_bytes: int | None
    runs_here: bool  # can run on this machine (host gcc or QEMU)
    counter: str  # "instructions" (QEMU SysTick under -icount) or "cycles" (DWT CYCCNT)


BOARDS = {
    "host": Board("host", "this machine (gcc), for checking generated C", None, None, True, "none"),
    "qemu-mps2-an500": Board("qemu-mps2-an500", "QEMU mps2-an500, Cortex-M7 with FPU/DSP", 4 * 1024 * 1024,
                             4 * 1024 * 1024, True, "instructions"),
    "nucleo-f767zi": Board("nucleo-f767zi", "STM32F767ZI: 2 MB flash, 512 KB SRAM (incl. 128 KB DTCM)",
                           512 * 1024, 2 * 1024 * 1024, False, "cycles"),
    "nucleo-h743zi": Board("nucleo-h743zi", "STM32H743ZI: 2 MB flash, 512 KB AXI SRAM + 128 KB DTCM",
                           512 * 1024, 2 * 1024 * 1024, False, "cycles"),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise TvmFusedError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}") from None


def parse_bytes(text) -> int:
    """'512K', '1M', '524288' -> bytes (K and M are binary: 1024, 1048576)."""
    if isinstance(text, int):
        return text
    s = str(text).strip().upper().removesuffix("B")
    mult = 1
    if s.endswith("K"):
        mult, s = 1024, s[:-1]
    elif s.endswith("M"):
        mult, s = 1024 * 1024, s[:-1]
    try:
        return int(float(s) * mult)
    except ValueError:
        raise TvmFusedError(f"cannot read '{text}' as a byte count (examples: 524288, 512K, 1M)") from None
