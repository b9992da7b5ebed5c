"""Start and always stop qemu-system-arm for a firmware ELF.

QEMU's UART0 becomes a TCP server on a free loopback port; `-icount shift=N`
makes virtual time a deterministic function of executed instructions, which is
how runs are measured (docs/rpc.md). The process is killed on exit of the
context manager, on exceptions and KeyboardInterrupt, and at interpreter exit.
QEMU's log is an anonymous temporary file (no name in the temp folder), so it
cannot be left behind whatever happens to this process."""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from ..boards import QEMU_MACHINES
from ..errors import ToolNotFoundError, UsageError
DEFAULT_ICOUNT_SHIFT = 6  # 64 ns per instruction >= one 40 ns SysTick tick: exact counts

_live: set = set()


def _kill_all_at_exit():
    for q in list(_live):
        q.stop()


atexit.register(_kill_all_at_exit)


def _die_with_parent() -> None:
    """Linux: QEMU gets SIGKILL if this Python process dies without cleaning up
    (SIGKILL, crash), so no emulator outlives its test run."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuLauncher:
    """`with QemuLauncher(elf) as q: TcpTransport("127.0.0.1", q.port, alive=q.alive)`."""

    def __init__(self, elf, board: str = "qemu-mps2-an500", icount_shift: int = DEFAULT_ICOUNT_SHIFT,
                 qemu: str = "qemu-system-arm", extra_args=()):
        if board not in QEMU_MACHINES:
            raise UsageError(f"board {board!r} cannot run in QEMU (only {sorted(QEMU_MACHINES)}); "
                             "give the serial port of a flashed board instead")
        self.elf = Path(elf)
        if not self.elf.is_file():
            raise UsageError(f"firmware ELF not found: {self.elf} (build the project first: build_project)")
        self.board, self.icount_shift = board, icount_shift
        self.qemu = shutil.which(qemu) or qemu
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self._log = None

    def command(self, port: int) -> list:
        return [self.qemu, "-M", QEMU_MACHINES[self.board], "-nographic", "-monitor", "none",
                "-icount", f"shift={self.icount_shift}", "-kernel", str(self.elf),
                "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", *self.extra_args]

    def start(self) -> "QemuLauncher":
        if shutil.which(self.qemu) is None:
            from .tools import APT_INSTALL

            raise ToolNotFoundError(f"{self.qemu} is not installed (or not on PATH); it is needed to run "
                                    f"{self.board}. Install it with: {APT_INSTALL}")
        self.port = free_loopback_port()
        self._log = tempfile.TemporaryFile(prefix="qemu-", suffix=".log")  # unlinked at once (O_TMPFILE)
        self.proc = subprocess.Popen(self.command(self.port), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_die_with_parent if os.name == "posix" else None)
        _live.add(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        if not self._log:
            return ""
        try:
            size = os.fstat(self._log.fileno()).st_size
            return os.pread(self._log.fileno(), n, max(size - n, 0)).decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """Kill QEMU abruptly (tests use it to simulate a device that dies)."""
        if self.alive():
            self.proc.kill()

    def stop(self) -> None:
        _live.discard(self)
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: QEMU only
                    self.proc.wait(timeout=3)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
