"""TVM's own host build of the legalized module: the bit-exact reference for the C code."""
from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .plain_c import HOST_PIPELINE_NAME


class HostReference:
    """Builds the legalized Relax module for the host CPU (LLVM) once, runs it on demand."""

    def __init__(self, mod: tvm.IRModule):
        executable = relax.build(mod, target="llvm", tir_pipeline=HOST_PIPELINE_NAME)
        self._vm = relax.VirtualMachine(executable, tvm.cpu())

    def __call__(self, *inputs: np.ndarray):
        """One array per model input -> the output, or a list of outputs for a model with several."""
        args = [tvm.runtime.tensor(np.ascontiguousarray(x), tvm.cpu()) for x in inputs]
        result = self._vm["main"](*args)
        if hasattr(result, "numpy"):
            return result.numpy()
        return [r.numpy() for r in result]
