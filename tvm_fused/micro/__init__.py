"""Run compiled models on Cortex-M7 boards (QEMU mps2-an500, STM32 Nucleos).

generate_project + build_project make a firmware from an exported model;
Session runs it over the RPC (docs/rpc.md) and measures instructions/cycles,
stack, arena and flash."""
from .elfsize import elf_memory
from .errors import (BuildError, CanaryError, DeviceDisconnectedError, DeviceError, DeviceFaultError,
                     DeviceTimeoutError, MicroError, ModelDoesNotFitError, RpcError)
from .launcher import QemuLauncher
from .project import BOARDS, build_project, generate_project
from .runner import DeviceRun, build_firmware, outputs_equal, run_firmware, run_on_device
from .session import Session

__all__ = ["generate_project", "build_project", "Session", "QemuLauncher", "elf_memory", "BOARDS",
           "run_on_device", "build_firmware", "run_firmware", "DeviceRun", "outputs_equal",
           "MicroError", "BuildError", "ModelDoesNotFitError", "DeviceError", "DeviceTimeoutError",
           "DeviceDisconnectedError", "RpcError", "CanaryError", "DeviceFaultError"]
