"""On-device autotuning of the micro-kernel schedules (``tvm-fused tune``).

tasks.py extracts the distinct kernel tasks of a model, space.py enumerates and featurizes
their schedule configs, runner.py measures one config of one task on a device (a one-kernel
model on QEMU or a board), cost_model.py ranks unmeasured configs (XGBoost), database.py
reads and writes the JSON log, tuner.py drives the search; apply.py applies a log at
compile time. docs/tuning.md describes the log format and the search.
"""
from .apply import apply_log
from .database import Database, Record
from .tasks import Task, extract_tasks
from .tuner import tune

__all__ = ["Task", "extract_tasks", "Database", "Record", "tune", "apply_log"]
