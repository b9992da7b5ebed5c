"""Writing results atomically, and only where we may.

A folder tvm-fused writes (an export ``-o DIR``, a firmware project) holds the marker
file ``.tvm-fused``; a non-empty folder without it belongs to the user and is not
touched unless ``force``. Results are written into a temporary sibling (same file
system) and renamed into place when complete, so a failure (full disk, Ctrl-C,
crash) leaves either the old result or nothing, never half of one."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import validate

MARKER = ".tvm-fused"
LOCK = ".tvm-fused.lock"  # a project folder's lock file (tvm_fused.micro.project.project_lock)


def mark(directory, what: str = "output") -> None:
    (Path(directory) / MARKER).write_text(f"Written by tvm-fused ({what}); tvm-fused may replace this folder.\n")


@contextmanager
def atomic_dir(target, force: bool = False, what: str = "output folder"):
    """Yield a new empty temporary folder next to ``target``; on success it replaces ``target``.

    ``target`` must be new, empty, ours (marker) or ``force`` (validate.output_dir). With
    ``force`` on a folder that is not ours, only the entries we wrote replace the entries of
    the same name; the user's other files stay."""
    target = validate.output_dir(target, force, what, "write into it (entries of the same name are replaced)")
    target.parent.mkdir(parents=True, exist_ok=True)
    foreign = target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        mark(tmp, what)
        if foreign:
            _merge_into(tmp, target)
        elif target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "previous")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _merge_into(new: Path, target: Path) -> None:
    """Move each top-level entry of ``new`` into ``target``, replacing only same-named entries."""
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        for entry in sorted(new.iterdir()):
            if (target / entry.name).exists() or (target / entry.name).is_symlink():
                os.replace(target / entry.name, old / entry.name)
            os.replace(entry, target / entry.name)
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(new, ignore_errors=True)


@contextmanager
def atomic_file(target, what: str = "output", suffix: str | None = None):
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``."""
    target = validate.output_file(target, what, suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(target, text: str, what: str = "output") -> Path:
    with atomic_file(target, what) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target, data, what: str = "output") -> Path:
    return write_text(target, json.dumps(data, indent=2) + "\n", what)


def save_npy(target, array, what: str = "output") -> Path:
    """np.save to exactly ``target`` (np.save itself would append .npy to other names)."""
    import numpy as np

    with atomic_file(target, what) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)
    return Path(target)
