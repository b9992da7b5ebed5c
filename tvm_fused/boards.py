"""The one registry of boards: memory sizes that budgets and reports refer to, and how to run there.

A board with ``firmware=True`` has a folder in the firmware template
(``tvm_fused/micro/template/boards/<name>/``: board.mk, memory.ld, board.c);
``qemu_machine`` names the QEMU machine that emulates it, if any. docs/boards.md
explains how to add one."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class Bank:
    """A RAM bank the planner may put activations in: its arena array goes to ``section``
    (the board's memory.ld maps that section to the bank)."""

    name: str
    bytes: int
    section: str
    # A fast bank (tightly coupled memory): the planner puts the fused chains' ring buffers,
    # the most accessed activations, here first (``place_in_banks``).
    hot: bool = False


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    sram_bytes: int | None  # RAM available to arena + stack + runtime data (None: host, unlimited)
    flash_bytes: int | None
    runs_here: bool  # can run on this machine (host gcc or QEMU)
    counter: str  # "instructions" (QEMU SysTick under -icount) or "cycles" (DWT CYCCNT)
    firmware: bool = True  # a firmware project can be generated for it (tvm-fused run)
    qemu_machine: str | None = None  # `qemu-system-arm -M` name when QEMU emulates this board
    # Banks for activations, the default arena's first; empty: one arena (memory.ld's REGION_ARENA).
    banks: tuple = ()


# The part of the STM32H7's 128 KiB DTCM the planner may give to activations (hot rings); the
# rest holds the stack (STACK_SIZE, 16 KiB by default) and the runtime's .data/.bss.
DTCM_ACTIVATION_BYTES = 64 * 1024

BOARDS = {
    "host": Board("host", "this machine (gcc), for checking generated C", None, None, True, "none", firmware=False),
    "qemu-mps2-an500": Board("qemu-mps2-an500", "QEMU mps2-an500, Cortex-M7 with FPU/DSP", 4 * 1024 * 1024,
                             4 * 1024 * 1024, True, "instructions", qemu_machine="mps2-an500"),
    "nucleo-f767zi": Board("nucleo-f767zi", "STM32F767ZI: 2 MB flash, 512 KB SRAM (incl. 128 KB DTCM)",
                           512 * 1024, 2 * 1024 * 1024, False, "cycles"),
    "nucleo-h743zi": Board("nucleo-h743zi", "STM32H743ZI: 2 MB flash, 512 KB AXI SRAM + 288 KB SRAM1-3 + 128 KB DTCM",
                           512 * 1024, 2 * 1024 * 1024, False, "cycles",
                           banks=(Bank("axisram", 512 * 1024, ".bss.tvm_arena"),
                                  Bank("sram123", 288 * 1024, ".tvm_arena_sram123"),
                                  # DTCM is shared with the stack and runtime .data/.bss (memory.ld):
                                  # at most 64 of its 128 KiB for activations
                                  Bank("dtcm", DTCM_ACTIVATION_BYTES, ".tvm_arena_dtcm", hot=True))),
}

# Boards with a firmware project (the template's boards/ folders), in registry order.
DEVICE_BOARDS = tuple(name for name, b in BOARDS.items() if b.firmware)
# board name -> QEMU machine, for the boards QEMU emulates.
QEMU_MACHINES = {name: b.qemu_machine for name, b in BOARDS.items() if b.qemu_machine}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError as e:
        raise UsageError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}") from e


def device_board(name: str) -> Board:
    """A board we can build firmware for (not "host")."""
    board = get_board(name)
    if not board.firmware:
        raise UsageError(f"board '{name}' has no firmware; choose a device board: {', '.join(DEVICE_BOARDS)}")
    return board


def parse_bytes(text, what: str = "byte count") -> int:
    """'512K', '1M', '524288' -> bytes (K and M are binary: 1024, 1048576); positive and finite."""
    if isinstance(text, bool):
        raise UsageError(f"{what}: {text!r} is not a byte count (examples: 524288, 512K, 1M)")
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().upper().removesuffix("B")
        mult = 1
        if s.endswith("K"):
            mult, s = 1024, s[:-1]
        elif s.endswith("M"):
            mult, s = 1024 * 1024, s[:-1]
        try:
            number = float(s)
        except ValueError as e:
            raise UsageError(f"{what}: cannot read '{text}' as a byte count (examples: 524288, 512K, 1M)") from e
        if not math.isfinite(number):
            raise UsageError(f"{what}: '{text}' is not a finite byte count (examples: 524288, 512K, 1M)")
        value = int(number * mult)
    if value <= 0:
        raise UsageError(f"{what}: '{text}' must be a positive number of bytes (examples: 524288, 512K, 1M)")
    return value
