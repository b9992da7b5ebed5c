"""XGBoost cost model: predicts a config's cost relative to its task's default config.

Target of a record: ``log2(cost / cost_default(task))`` (0 = as fast as the default, -1 =
twice as fast), so tasks of very different sizes share one model and what transfers between
tasks is how the knobs meet the shape (space.features). Lower prediction = better.
"""
from __future__ import annotations

import math

import numpy as np

from .space import features


class CostModel:
    def __init__(self, seed: int = 0, min_records: int = 4):
        self.seed, self.min_records = seed, min_records
        self.booster = None

    def fit(self, samples) -> bool:
        """``samples``: [(task, config, relative_cost)] with relative_cost = cost / default cost.
        Returns False (and predicts nothing) below ``min_records`` samples."""
        if len(samples) < self.min_records:
            self.booster = None
            return False
        import xgboost as xgb

        x = np.array([features(t, c) for t, c, _ in samples], dtype=np.float32)
        y = np.array([math.log2(r) for _, _, r in samples], dtype=np.float32)
        self.booster = xgb.train({"max_depth": 4, "eta": 0.3, "subsample": 1.0, "seed": self.seed,
                                  "objective": "reg:squarederror", "verbosity": 0, "nthread": 1},
                                 xgb.DMatrix(x, label=y), num_boost_round=60)
        return True

    @property
    def trained(self) -> bool:
        return self.booster is not None

    def predict(self, task, configs) -> np.ndarray:
        """Predicted log2(cost / default cost) per config (zeros when untrained)."""
        if self.booster is None or not configs:
            return np.zeros(len(configs))
        import xgboost as xgb

        x = np.array([features(task, c) for c in configs], dtype=np.float32)
        return self.booster.predict(xgb.DMatrix(x))

    def rank(self, task, configs) -> list:
        """``configs`` best-predicted first."""
        pred = self.predict(task, configs)
        return [configs[i] for i in np.argsort(pred, kind="stable")]
