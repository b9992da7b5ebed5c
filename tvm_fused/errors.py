"""Errors a user can act on: each names the cause and the fix."""


class TvmFusedError(Exception):
    """Base class of every error tvm-fused raises on purpose."""


class ModelLoadError(TvmFusedError):
    """The model file cannot be read or parsed (missing, corrupt, unknown format)."""


class UnsupportedModelError(TvmFusedError):
    """The model uses operators or data types tvm-fused does not compile."""


class ModelDoesNotFitError(TvmFusedError):
    """The planned arena (or the firmware image) is larger than the RAM budget."""


class FusionError(TvmFusedError):
    """A requested fusion setting cannot be applied to this model."""
