"""TVM's own host build of the legalized module: the bit-exact reference for the C code."""
from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from .plain_c import HOST_PIPELINE_NAME


# LLVM's optimizer changes no integer result (the kernels have no undefined behaviour: the
# generated C runs under UBSan in the tests), only the build time: at -O0 the unrolled DSP
# kernels build about 2x faster, and the reference runs on one small input at a time.
HOST_TARGET = {"kind": "llvm", "opt-level": 0}


class HostReference:
    """Builds the legalized Relax module for the host CPU (LLVM) once, runs it on demand."""

    def __init__(self, mod: tvm.IRModule):
        executable = relax.build(mod, target=tvm.target.Target(HOST_TARGET), tir_pipeline=HOST_PIPELINE_NAME)
        self._vm = relax.VirtualMachine(executable, tvm.cpu())

    def __call__(self, *inputs: np.ndarray):
        """One array per model input -> the output, or a list of outputs for a model with several."""
        args = [tvm.runtime.tensor(np.ascontiguousarray(x), tvm.cpu()) for x in inputs]
        result = self._vm["main"](*args)
        if hasattr(result, "numpy"):
            return result.numpy()
        return [r.numpy() for r in result]
