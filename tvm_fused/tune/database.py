"""The tuning log: one JSON file of tasks and measured records (docs/tuning.md).

    {"format": "tvm-fused-tuning-log/1",
     "tasks":   {task_key: {"kind", "shape", "weight", "macs"}},
     "records": [{"task": task_key, "config": {knob: value}, "cost": int | null,
                  "metric": "instructions" | "cycles", "board": str, "error": str | null,
                  "seconds": float}]}

``cost`` is the device's count for one call of the one-kernel firmware (QEMU -icount
instructions, or DWT cycles on a board; lower is better); a failed measurement has cost
null and an error. The best record of a task is its lowest cost. The file is rewritten
atomically after every record, so an interrupted run loses nothing measured.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import TvmFusedError

FORMAT = "tvm-fused-tuning-log/1"


@dataclass
class Record:
    task: str
    config: dict
    cost: int | None
    metric: str = "instructions"
    board: str = ""
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Database:
    path: Path | None = None
    tasks: dict = field(default_factory=dict)
    records: list = field(default_factory=list)

    @classmethod
    def load(cls, path) -> "Database":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TvmFusedError(f"tuning log {path} does not exist; create one with `tvm-fused tune MODEL "
                                f"--board B -o {path}`") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TvmFusedError(f"tuning log {path} is not valid JSON ({e}); pass a file written by "
                                "`tvm-fused tune`") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TvmFusedError(f"tuning log {path} is not a tvm-fused tuning log (format {FORMAT!r} expected)")
        return cls(path, dict(data.get("tasks", {})), [Record(**r) for r in data.get("records", [])])

    @classmethod
    def open(cls, path) -> "Database":
        """The log at ``path`` if it exists (resume), else an empty one that will be written there."""
        path = Path(path)
        return cls.load(path) if path.exists() else cls(path)

    def add_task(self, task) -> None:
        self.tasks[task.key] = {"kind": task.kind, "shape": task.shape_dict(), "weight": task.weight,
                                "macs": task.macs}

    def add(self, record: Record) -> None:
        self.records.append(record)
        if self.path is not None:
            self.save()

    def measured(self, task_key: str) -> dict:
        """config (as a sorted tuple of items) -> record, for one task."""
        return {tuple(sorted(r.config.items())): r for r in self.records if r.task == task_key}

    def best(self, task_key: str) -> Record | None:
        ok = [r for r in self.records if r.task == task_key and r.cost is not None]
        return min(ok, key=lambda r: r.cost) if ok else None

    def best_configs(self) -> dict:
        """task key -> the config object (GemmConfig / DepthwiseConfig) of its best record."""
        from .space import config_class

        out = {}
        for key, t in self.tasks.items():
            rec = self.best(key)
            if rec is not None:
                out[key] = config_class(t["kind"])(**rec.config)
        return out

    def to_json(self) -> dict:
        return {"format": FORMAT, "tasks": self.tasks, "records": [asdict(r) for r in self.records]}

    def save(self, path=None) -> None:
        path = Path(path or self.path)
        text = json.dumps(self.to_json(), indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
