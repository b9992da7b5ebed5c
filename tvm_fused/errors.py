"""The one hierarchy of errors tvm-fused raises on purpose; each message names the cause and the fix.

    TvmFusedError
      UsageError                 a bad argument: a number out of range, a path we must not use
        InvalidInputError        an input array of the wrong shape, dtype or with NaN/inf
        OutputPathError          an output path that is not writable, or holds files we did not write
      ModelLoadError             the model file cannot be read or parsed
      UnsupportedModelError      operators or data types tvm-fused does not compile
      FusionError                a fusion setting that cannot be applied to this model
      ModelDoesNotFitError       arena (planner) or firmware image (linker) larger than the RAM budget
      ToolNotFoundError          arm-none-eabi-gcc, make or qemu-system-arm is not installed
      MicroError                 the device side (tvm_fused.micro)
        ProjectBusyError         another run holds the lock of a firmware project folder
        BuildError               make failed (compiler/linker output in the message)
        DeviceError              the device answered with an error or could not be reached
          DeviceTimeoutError, DeviceDisconnectedError, RpcError (CanaryError, DeviceFaultError)

The command line prints any of these as one ``tvm-fused: error: ...`` line and exits with status 2.
"""
from __future__ import annotations

from collections import deque

_recent: deque = deque(maxlen=16)  # the last errors raised, for recover()


class TvmFusedError(Exception):
    """Base class of every error tvm-fused raises on purpose."""

    def __init__(self, *args):
        super().__init__(*args)
        _recent.append(self)


def recover(exc: BaseException) -> TvmFusedError | None:
    """The TvmFusedError that a foreign exception stands for, if any.

    TVM's FFI turns a Python exception raised inside a pass into a RuntimeError that keeps only
    the message; this finds our error by that message, so the command line can still report it
    as a user error (the pipeline re-raises the original type where it can)."""
    if isinstance(exc, TvmFusedError):
        return exc
    text = str(exc).strip()
    for err in reversed(_recent):
        mine = str(err).strip()
        # as TVM passes it on, or as passes/boundary.py marks it ("Type: message [tvm_fused-exception#N]")
        if mine and (text == mine or text.startswith(f"{type(err).__name__}: {mine} [")):
            return err
    return None


class UsageError(TvmFusedError, ValueError):
    """An argument tvm-fused cannot use (also a ValueError, as Python callers expect)."""


class InvalidInputError(UsageError):
    """An input tensor of the wrong shape or dtype, or with values that cannot be quantized."""


class OutputPathError(UsageError):
    """An output path that cannot be written, or a folder holding files tvm-fused did not write."""


class ModelLoadError(TvmFusedError):
    """The model file cannot be read or parsed (missing, corrupt, unknown format)."""


class UnsupportedModelError(TvmFusedError):
    """The model uses operators or data types tvm-fused does not compile."""


class FusionError(TvmFusedError):
    """A requested fusion setting cannot be applied to this model."""


class ModelDoesNotFitError(TvmFusedError):
    """The planned arena (compiler) or the firmware image (linker) is larger than the RAM budget.

    ``region``/``overflow_bytes``/``board`` are set when the linker reported the overflow."""

    def __init__(self, message, region=None, overflow_bytes=None, board=None):
        super().__init__(message)
        self.region, self.overflow_bytes, self.board = region, overflow_bytes, board


class ToolNotFoundError(TvmFusedError):
    """An external program (cross compiler, make, QEMU) is missing; the message has the install command."""


class MicroError(TvmFusedError):
    """Base class of the device side (tvm_fused.micro)."""


class ProjectBusyError(MicroError):
    """Another tvm-fused process is using this firmware project folder."""


class BuildError(MicroError):
    """make failed; the message carries the compiler/linker output."""


class DeviceError(MicroError):
    """The device answered with an error, or could not be reached."""


class DeviceTimeoutError(DeviceError):
    """No valid reply after all retries."""


class DeviceDisconnectedError(DeviceError):
    """The connection closed (e.g. QEMU or the board went away mid-command)."""


class RpcError(DeviceError):
    """The device rejected a request with an error status."""

    def __init__(self, message, status=None, payload=b""):
        super().__init__(message)
        self.status, self.payload = status, payload


class CanaryError(RpcError):
    """A run wrote outside the tensor arena (canary words changed)."""


class DeviceFaultError(RpcError):
    """The CPU faulted while handling a request; the device is halted."""
