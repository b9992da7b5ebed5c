"""External programs the device side needs, checked before any work starts."""
from __future__ import annotations

import shutil

from ..boards import get_board
from ..errors import ToolNotFoundError

# Debian/Ubuntu packages (what `make toolchain` installs).
APT_INSTALL = "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
CROSS_COMPILER = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"


def _require(program: str, why: str) -> None:
    if shutil.which(program) is None:
        raise ToolNotFoundError(f"{program} is not installed (or not on PATH); it is needed {why}. "
                                f"Install it with: {APT_INSTALL} (or `make toolchain` in a tvm-fused checkout)")


def require_build_tools(make: str = "make") -> None:
    """make and the ARM cross compiler (firmware builds)."""
    if shutil.which(make) is None:
        raise ToolNotFoundError(f"{make} is not installed (or not on PATH); it is needed to build the firmware. "
                                "Install it with: sudo apt-get install make")
    _require(CROSS_COMPILER, "to build the firmware")


def require_device_tools(board: str, port: str | None = None) -> None:
    """Everything `tvm-fused run` needs for ``board``: build tools, and QEMU unless a serial port is given."""
    require_build_tools()
    if port is None and get_board(board).qemu_machine:
        _require(QEMU, f"to run {board} without a --port")
