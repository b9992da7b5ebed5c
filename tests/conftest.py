"""Shared, session-scoped compiled models: compiling once keeps the suite fast."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixture_paths import FIXTURES  # noqa: E402


class _Cache:
    def __init__(self, tmp_root):
        self.tmp_root = tmp_root
        self.models = {}
        self.exports = {}
        self.host = {}

    def compile(self, name: str, fuse="none"):
        import tvm_fused
        from tvm_fused import models

        key = (name, str(fuse))
        if key not in self.models:
            source = str(FIXTURES / name) if name.endswith(".tflite") else str(models.path(name))
            self.models[key] = tvm_fused.compile(source, name=name, fuse=fuse, progress=False)
        return self.models[key]

    def export(self, name: str, fuse="none") -> Path:
        key = (name, str(fuse))
        if key not in self.exports:
            directory = self.tmp_root / f"{name}-fuse-{fuse}"
            self.exports[key] = self.compile(name, fuse).export(directory)
        return self.exports[key]

    def host_executable(self, name: str, fuse="none"):
        """The generated C built for this machine with ASan + UBSan."""
        from tvm_fused.backend import HostExecutable

        key = (name, str(fuse))
        if key not in self.host:
            cm = self.compile(name, fuse)
            self.host[key] = HostExecutable(self.export(name, fuse) / "model", cm.io["outputs"][0]["shape"])
        return self.host[key]


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    c = _Cache(tmp_path_factory.mktemp("compiled"))
    yield c
    for exe in c.host.values():
        exe.close()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
