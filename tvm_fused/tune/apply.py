"""Apply a tuning log at compile time: each kernel takes the best measured config of its task."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def apply_log(log):
    """Within this block, kernels take the best config of their task from ``log`` (a path or a
    ``Database``); tasks without records keep the defaults. ``log`` None: no change."""
    if log is None:
        yield None
        return
    from ..schedules.config import use_configs
    from .database import Database
    from .tasks import kind_of_params, task_of

    db = log if isinstance(log, Database) else Database.load(log)
    best = db.best_configs()

    def chooser(params):
        task = task_of(kind_of_params(params), params)
        return best.get(task.key) if task is not None else None

    with use_configs(chooser):
        yield db
