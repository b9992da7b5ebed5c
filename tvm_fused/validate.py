"""Checks run before any work starts, shared by the command line and the Python API.

Every check raises a UsageError subclass (tvm_fused.errors) whose message names the
argument, the value and the fix; nothing here compiles, builds or writes.

Input tensors follow one documented conversion (``input_array``): an int8 array of the
model's exact input shape is used as is; a float array of that shape is quantized like
TFLite's QUANTIZE op, ``q = clamp(round_half_away(float32(x) / float32(scale)) + zero_point, -128, 127)``,
with the model's input scale and zero point; anything else (another dtype, another shape
of the same size, NaN or inf) is refused rather than reinterpreted.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

from .boards import parse_bytes
from .errors import InvalidInputError, ModelLoadError, OutputPathError, UsageError

FUSE_OBJECTIVES = ("arena", "arena_without_input")
MAX_REPEAT = 1_000_000


def fuse_setting(fuse):
    """'none' | 'auto' | N >= 0 (an int or a string of digits) -> 'none' | 'auto' | int."""
    if isinstance(fuse, str):
        text = fuse.strip()
        if text in ("none", "auto"):
            return text
        if text.isdigit():
            return int(text)
    elif isinstance(fuse, numbers.Integral) and not isinstance(fuse, bool):
        if fuse >= 0:
            return int(fuse)
        raise UsageError(f"fuse={fuse}: the number of blocks to fuse must be 0 or more (or 'none' / 'auto')")
    raise UsageError(f"fuse={fuse!r}: use 'none', 'auto' or a number of blocks N >= 0")


def ram_budget(budget, what: str = "ram_budget"):
    """None, or a positive finite byte count ('512K', '1M', 524288) -> int."""
    return None if budget is None else parse_bytes(budget, what)


def latency_budget(ratio, what: str = "latency_budget"):
    """None, or a finite fused/unfused instruction ratio >= 1 (1.05: at most 5% slower)."""
    if ratio is None:
        return None
    try:
        value = float(ratio)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what}={ratio!r}: give a ratio such as 1.05 (fused/unfused instructions)") from e
    if not math.isfinite(value) or value < 1.0:
        raise UsageError(f"{what}={ratio!r}: give a finite ratio >= 1.0 such as 1.05 (fused/unfused instructions; "
                         "fusion never makes a model faster)")
    return value


def fuse_objective(objective):
    if objective not in FUSE_OBJECTIVES:
        raise UsageError(f"fuse_objective={objective!r}: choose one of {', '.join(FUSE_OBJECTIVES)}")
    return objective


def repeat(n, what: str = "repeat"):
    """A run count: an integer from 1 to MAX_REPEAT."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_REPEAT:
        raise UsageError(f"{what}={n!r}: give a whole number of runs from 1 to {MAX_REPEAT:,}")
    return int(n)


def compile_options(board, fuse, ram_budget_, latency_budget_, fuse_objective_) -> dict:
    """All tvm_fused.compile options checked at once (before the model is even read)."""
    from .boards import get_board

    get_board(board)
    return {"fuse": fuse_setting(fuse), "ram_budget": ram_budget(ram_budget_),
            "latency_budget": latency_budget(latency_budget_), "fuse_objective": fuse_objective(fuse_objective_)}


# ---- paths -----------------------------------------------------------------------------------------------------------

def model_source(text) -> tuple:
    """A command-line MODEL: an existing model file (checked with model_file), or a zoo name
    (built deterministically and cached) -> (path or ModelProto, zoo name or None)."""
    from . import models

    text = os.fspath(text)
    if text.strip() == "":
        raise UsageError("the model path is empty; give a .onnx or .tflite file or a zoo name")
    if os.path.exists(text):
        return model_file(text), None
    if text in models.ZOO:
        return models.get(text), text
    raise ModelLoadError(f"{text}: no such file, and not a zoo model (zoo: {', '.join(models.zoo_names())})")


def model_file(path) -> str:
    """A model path that exists, is a readable file and is not empty."""
    text = os.fspath(path)
    if text.strip() == "":
        raise UsageError("the model path is empty; give a .onnx or .tflite file or a zoo name")
    p = Path(text)
    if not p.exists():
        raise ModelLoadError(f"{text}: no such file")
    if p.is_dir():
        raise ModelLoadError(f"{text} is a folder, not a model file; give the .onnx or .tflite file inside it")
    if not os.access(p, os.R_OK):
        raise ModelLoadError(f"{text}: permission denied (cannot read the model file)")
    if p.stat().st_size == 0:
        raise ModelLoadError(f"{text} is empty (0 bytes): the download or export did not finish; write the model again")
    return text


def _writable_parent(path: Path, what: str) -> None:
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path}: cannot write into {parent} (permission denied); choose another path")


def output_file(path, what: str = "output", suffix: str | None = None) -> Path:
    """A file we may write: not empty, not a folder, in a writable folder, with ``suffix`` if given."""
    if path is None or str(path).strip() == "":
        raise OutputPathError(f"{what}: the path is empty; give a file name")
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a folder; give a file name (for example {p / ('out' + (suffix or ''))})")
    if suffix and p.suffix != suffix:
        raise OutputPathError(f"{what} {p}: the file is written as {suffix}; name it {p.with_suffix(suffix).name}")
    _writable_parent(p, what)
    return p


def output_dir(path, force: bool = False, what: str = "output folder", force_does: str = "replace its contents") -> Path:
    """A folder we may (re)write: new, empty, ours (marker file), or anything with force."""
    from .output import LOCK, MARKER

    if path is None or str(path).strip() == "":
        raise OutputPathError(f"{what}: the path is empty; give a folder name such as ./out")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{what} {p} is an existing file; give a folder name")
    if p.is_dir() and not force and not (p / MARKER).is_file():
        entries = sorted(e.name for e in p.iterdir() if e.name != LOCK)
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise OutputPathError(f"{what} {p} is not empty ({shown}) and was not written by tvm-fused; give a new "
                                  f"or empty folder, or pass --force (force=True) to {force_does}")
    _writable_parent(p, what)
    return p


# ---- input tensors ---------------------------------------------------------------------------------------------------

def input_array(x, spec: dict, what: str = "input") -> np.ndarray:
    """The int8 tensor for one model input described by ``spec`` (io.json: shape, scale, zero_point).

    int8 of the exact shape: as is. float of the exact shape: quantized with the input's
    scale and zero point (NaN/inf refused). Anything else: InvalidInputError."""
    shape = [int(d) for d in spec["shape"]]
    x = np.asarray(x)
    if list(x.shape) != shape:
        hint = ""
        if x.ndim == 4 and len(shape) == 4 and list(np.array(x.shape)[[0, 2, 3, 1]]) == shape:
            hint = "; it looks like NCHW: the device takes NHWC, pass x.transpose(0, 2, 3, 1)"
        elif x.size == int(np.prod(shape)):
            hint = f"; same number of elements, but tvm-fused does not guess a layout: reshape it to {shape} yourself"
        raise InvalidInputError(f"{what}: shape {list(x.shape)} does not match the model input {shape} "
                                f"(NHWC){hint}")
    if x.dtype == np.int8:
        return x
    if x.dtype.kind == "f":
        scale, zero_point = spec.get("scale"), spec.get("zero_point")
        if scale is None or zero_point is None:
            raise InvalidInputError(f"{what}: dtype {x.dtype}, but the input's scale and zero point are unknown "
                                    "(an export without io.json); give int8")
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidInputError(f"{what}: {int(bad.sum())} value(s) are NaN or infinite (first at index {first}); "
                                    "a float input is quantized, so every value must be finite")
        return quantize(x, float(scale), int(zero_point))
    raise InvalidInputError(f"{what}: dtype {x.dtype}; give int8 (the quantized input) or float32 (quantized with "
                            f"scale {spec.get('scale')} and zero point {spec.get('zero_point')}); for int8 values "
                            "stored in a wider type use x.astype(np.int8)")


def quantize(x, scale: float, zero_point: int) -> np.ndarray:
    """TFLite QUANTIZE to int8: clamp(round_half_away_from_zero(x / scale) + zero_point, -128, 127),
    the division in float32 as TFLite's reference kernel does it."""
    real = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    rounded = np.sign(real) * np.floor(np.abs(real) + 0.5) + zero_point
    return np.clip(rounded, -128, 127).astype(np.int8)
