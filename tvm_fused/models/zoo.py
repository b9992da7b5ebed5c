"""Named model configurations and an on-disk cache of their quantized ONNX files.

Quantizing a full-size MobileNetV2 takes seconds; tests and benchmarks ask for the
same few models over and over, so each is quantized once per parameter set and
cached, keyed by the parameters and a builder version string.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

import onnx

from .mobilenet_v2 import mobilenet_v2_float
from .quantize import quantize_qdq

# Bump when the builder or quantization recipe changes, so stale cache files are not reused.
BUILDER_VERSION = "mbv2-qdq-1"

ZOO: dict[str, dict] = {
    "mbv2-0.35-96": dict(width=0.35, resolution=96),
    "mbv2-0.35-144": dict(width=0.35, resolution=144),
    "mbv2-0.35-224": dict(width=0.35, resolution=224),
    "mbv2-0.35-320": dict(width=0.35, resolution=320),
    "mbv2-0.5-128": dict(width=0.5, resolution=128),
    "mbv2-1.0-96": dict(width=1.0, resolution=96),
    "mbv2-1.0-224": dict(width=1.0, resolution=224),
    "mbv2-0.35-96-dw5": dict(width=0.35, resolution=96, dw_kernel=5),
    "mbv2-0.5-96-t4": dict(width=0.5, resolution=96, expand_ratio=4),
    # Stem + 3 blocks (one stride-2, one residual) and a 128-channel head: small enough
    # for quick host and QEMU tests, still has every op kind of the full network.
    "mbv2-0.35-96-tiny": dict(width=0.35, resolution=96, num_blocks=3, last_channels=128),
}


def mobilenet_v2(width: float = 0.35, resolution: int = 96, num_classes: int = 10,
                 expand_ratio: int = 6, dw_kernel: int = 3, num_blocks: int | None = None,
                 seed: int = 0, *, last_channels: int | None = None,
                 keep_clip: bool = False) -> onnx.ModelProto:
    """MobileNetV2-like model quantized to QDQ int8 (per-channel weights); see mobilenet_v2_float."""
    float_model = mobilenet_v2_float(width=width, resolution=resolution, num_classes=num_classes,
                                     expand_ratio=expand_ratio, dw_kernel=dw_kernel,
                                     num_blocks=num_blocks, last_channels=last_channels, seed=seed)
    return quantize_qdq(float_model, seed=seed, keep_clip=keep_clip)


def zoo_names() -> list[str]:
    return list(ZOO)


def _cache_key(name: str, params: dict) -> str:
    # The quantizer's version is part of the key: another onnxruntime may calibrate differently.
    try:
        ort_version = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        ort_version = "none"
    blob = json.dumps({"name": name, "params": params, "version": BUILDER_VERSION,
                       "onnxruntime": ort_version}, sort_keys=True)
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def default_cache_dir() -> Path:
    return Path(os.environ.get("TVM_FUSED_MODEL_CACHE",
                               Path.home() / ".cache" / "tvm-fused" / "models"))


def path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the cached quantized .onnx for a zoo model, building it on first use."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model '{name}'; known: {', '.join(ZOO)}")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = directory / f"{_cache_key(name, ZOO[name])}.onnx"
    if not file.exists():
        directory.mkdir(parents=True, exist_ok=True)
        model = mobilenet_v2(**ZOO[name])
        # Write then rename: parallel test workers never see a half-written file.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, file)
    return file


def get(name: str, cache_dir: str | os.PathLike | None = None) -> onnx.ModelProto:
    """The quantized zoo model `name` (cached under ~/.cache/tvm-fused/models or cache_dir)."""
    return onnx.load(str(path(name, cache_dir)))
