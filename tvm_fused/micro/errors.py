"""Errors of the device side; they live in the one hierarchy in tvm_fused/errors.py."""
from ..errors import (BuildError, CanaryError, DeviceDisconnectedError, DeviceError, DeviceFaultError,  # noqa: F401
                      DeviceTimeoutError, MicroError, ModelDoesNotFitError, ProjectBusyError, RpcError)
