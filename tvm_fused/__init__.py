"""tvm-fused: int8 CNNs on Cortex-M7 with line-buffered conv-chain fusion, on Apache TVM."""
from .compiler import CompiledModel, compile  # noqa: A004
from .errors import (FusionError, ModelDoesNotFitError, ModelLoadError, TvmFusedError,
                     UnsupportedModelError)

__version__ = "0.1.0"
__all__ = ["compile", "CompiledModel", "TvmFusedError", "ModelLoadError", "UnsupportedModelError",
           "ModelDoesNotFitError", "FusionError"]
