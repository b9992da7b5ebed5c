"""Exceptions of tvm_fused.micro: each says what failed and where."""
from ..errors import ModelDoesNotFitError as _CompilerDoesNotFit
from ..errors import TvmFusedError


class MicroError(TvmFusedError):
    """Base class (a TvmFusedError, so the CLI prints it as a user error)."""


class BuildError(MicroError):
    """make failed; the message carries the compiler/linker output."""


class ModelDoesNotFitError(BuildError, _CompilerDoesNotFit):
    """The linker could not place arena + stack + data (or code) in the board's memory."""

    def __init__(self, message, region=None, overflow_bytes=None, board=None):
        super().__init__(message)
        self.region, self.overflow_bytes, self.board = region, overflow_bytes, board


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
