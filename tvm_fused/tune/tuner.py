"""The search: spread ``trials`` measurements over a model's tasks, guided by the cost model.

Each step picks a task by priority ``weight * macs / (1 + measured)**2`` (its share of the
model, discounted by what it already got, so a task gets about sqrt(share) of the trials and
small tasks get their baseline early; exhausted spaces are skipped). A task's first
measurement is its default config (the baseline every tuned config is compared with, so
a log never makes a task slower than the defaults). Later ones: with probability
``epsilon`` a random unmeasured config (explore), else the one the XGBoost model
(cost_model.py, refit after every batch on all records of the log) ranks best (exploit).
``trials`` counts every measured record of the model's tasks in the log, including those of
earlier runs: resuming with the same log and ``trials`` measures nothing.
"""
from __future__ import annotations

import random
import sys
import time

from .cost_model import CostModel
from .database import Database
from .runner import measure_batch
from .space import config_class, config_dict, space
from .tasks import Task, model_tasks


def _key(config) -> tuple:
    return tuple(sorted(config_dict(config).items()))


def _samples(db: Database, tasks: list[Task]):
    out = []
    for t in tasks:
        measured = db.measured(t.key)
        default = measured.get(_key(config_class(t.kind)()))
        if default is None or default.cost is None:
            continue
        for k, r in measured.items():
            if r.cost is not None:
                out.append((t, config_class(t.kind)(**dict(k)), r.cost / default.cost))
    return out


def pick(db: Database, tasks: list[Task], model: CostModel, n: int, rng: random.Random, epsilon: float):
    """Up to ``n`` (task, config) pairs to measure next."""
    chosen, taken = [], set()
    counts = {t.key: len(db.measured(t.key)) for t in tasks}
    for _ in range(n):
        open_tasks = [t for t in tasks if counts[t.key] < len(space(t))]
        if not open_tasks:
            break
        task = max(open_tasks, key=lambda t: t.weight * max(1, t.macs) / (1 + counts[t.key]) ** 2)
        measured = db.measured(task.key)
        todo = [c for c in space(task) if _key(c) not in measured and (task.key, _key(c)) not in taken]
        if not todo:
            counts[task.key] = len(space(task))
            continue
        default = config_class(task.kind)()
        if _key(default) not in measured and (task.key, _key(default)) not in taken:
            config = default
        elif not model.trained or rng.random() < epsilon:
            config = rng.choice(todo)
        else:
            config = model.rank(task, todo)[0]
        chosen.append((task, config))
        taken.add((task.key, _key(config)))
        counts[task.key] += 1
    return chosen


def _fmt(config) -> str:
    return " ".join(f"{k}={v}" for k, v in config_dict(config).items())


def tune(model, board: str, trials: int, log_path, parallel: int = 1, remote=None, epsilon: float = 0.2,
         seed: int = 0, out=None, tasks: list[Task] | None = None) -> Database:
    """Tune ``model``'s kernels on ``board`` until the log holds ``trials`` records of its tasks.

    ``remote``: measure through an RPC tracker (rpc.TrackerRunner) instead of local QEMU/serial."""
    out = out or sys.stderr
    tty = hasattr(out, "isatty") and out.isatty()
    tasks = tasks if tasks is not None else model_tasks(model)
    db = Database.open(log_path)
    for t in tasks:
        db.add_task(t)
    db.save()
    keys = {t.key for t in tasks}
    done = sum(1 for r in db.records if r.task in keys)
    total_space = sum(len(space(t)) for t in tasks)
    print(f"tune: {len(tasks)} tasks ({sum(t.weight for t in tasks)} kernels), space {total_space} configs, "
          f"{done} measured in {log_path}, target {trials}", file=out, flush=True)
    rng = random.Random(seed)
    cost_model = CostModel(seed)
    cost_model.fit(_samples(db, tasks))
    t0 = time.time()
    while done < trials:
        batch = pick(db, tasks, cost_model, min(max(1, parallel), trials - done), rng, epsilon)
        if not batch:
            print("tune: every config of every task is measured", file=out, flush=True)
            break
        for (task, config), rec in zip(batch, measure_batch(batch, board, parallel, remote)):
            db.add(rec)
            done += 1
            best = db.best(task.key)
            default = db.measured(task.key).get(_key(config_class(task.kind)()))
            ratio = (f" {best.cost / default.cost:.3f}x default" if best and default and default.cost else "")
            result = f"{rec.cost:,} {rec.metric}" if rec.cost is not None else f"FAILED ({rec.error})"
            bar = ""
            if tty:
                filled = int(20 * done / trials)
                bar = "[" + "#" * filled + "." * (20 - filled) + "] "
            print(f"{bar}{done}/{trials} {time.time() - t0:6.0f}s  {task.describe():34s} {_fmt(config):44s} "
                  f"{result}  best {best.cost if best else '-':,}{ratio}", file=out, flush=True)
        cost_model.fit(_samples(db, tasks))
    summary(db, tasks, out)
    return db


def summary(db: Database, tasks: list[Task], out=None) -> dict:
    """Per task best vs default, and the weighted model estimate ``sum(weight * cost)``."""
    out = out or sys.stderr
    tuned = untuned = 0
    for t in tasks:
        default = db.measured(t.key).get(_key(config_class(t.kind)()))
        best = db.best(t.key)
        if default is None or default.cost is None or best is None:
            continue
        tuned += t.weight * best.cost
        untuned += t.weight * default.cost
    if untuned:
        print(f"tune: measured tasks, weighted by calls: {untuned:,} -> {tuned:,} ({tuned / untuned:.4f}x; "
              "each includes the one-kernel firmware's fixed overhead)", file=out, flush=True)
    return {"untuned": untuned, "tuned": tuned}
