"""The schedule space of a task (schedules/config.py) and the features the cost model reads.

Features of (task, config): the config's knobs, the task's shape (log2 of sizes), and how
the knobs meet the shape -- the remainders that fall to slower tail loops:

    words, rest   = divmod(taps_per_segment, 4)        (GEMM: SMLAD words, scalar taps)
    oc_rem        = out_channels mod channel_block      (channels in a narrower tail block)
    px_rem        = pixels_per_row mod pixel_block      (pixels in a narrower tail block)
    unrolled      = words <= unroll_words               (taps loop fully unrolled)
"""
from __future__ import annotations

import dataclasses
import math

from ..schedules.config import DepthwiseConfig, GemmConfig, candidates


def config_class(kind: str):
    return DepthwiseConfig if kind == "depthwise_conv2d" else GemmConfig


def space(task) -> list:
    """Every config of the task's space (the default first)."""
    cls = config_class(task.kind)
    default = cls()
    return [default] + [c for c in candidates(cls) if c != default]


def config_dict(config) -> dict:
    return dataclasses.asdict(config)


def _task_dims(task) -> dict:
    d = task.shape_dict()
    if "in_shape" in d:
        _, h, w, c = d["in_shape"]
        kh, kw = d["kernel"]
        sh, sw = d["strides"]
        pt, pl, pb, pr = d["padding"]
        ow = (w + pl + pr - kw) // sw + 1
        oh = (h + pt + pb - kh) // sh + 1
        seg = kw * c if d["kernel"] != [1, 1] else c
        return {"oh": oh, "ow": ow, "c": c, "oc": d["out_channels"], "kh": kh, "kw": kw, "stride": sh, "seg": seg,
                "segments": kh if d["kernel"] != [1, 1] else 1}
    return {"oh": 1, "ow": d["batch"], "c": d["in_features"], "oc": d["out_features"], "kh": 1, "kw": 1,
            "stride": 1, "seg": d["in_features"], "segments": 1}


FEATURES = ("kind_dw", "kind_pw", "kind_dense", "log_oh", "log_ow", "log_c", "log_oc", "kh", "stride",
            "log_seg", "pixel_block", "channel_block", "unroll_words", "unroll_groups", "words_log", "rest",
            "oc_rem", "px_rem", "unrolled", "groups_rem", "channels_outer")


def features(task, config) -> list[float]:
    t = _task_dims(task)
    k = config_dict(config)
    pb, cb, uw = k.get("pixel_block", 0), k.get("channel_block", 0), k.get("unroll_words", 0)
    ug = k.get("unroll_groups", 0)
    words, rest = divmod(t["seg"], 4)
    lg = (lambda v: math.log2(max(1, v)))
    return [float(task.kind == "depthwise_conv2d"), float(task.kind == "conv2d_1x1"), float(task.kind == "dense"),
            lg(t["oh"]), lg(t["ow"]), lg(t["c"]), lg(t["oc"]), t["kh"], t["stride"], lg(t["seg"]),
            pb, cb, uw, ug, lg(words), rest,
            t["oc"] % cb if cb else 0, t["ow"] % pb if pb else 0, float(uw >= words) if pb else 0.0,
            ((t["c"] + 3) // 4) % ug if ug else 0, float(k.get("channels_outer", False))]
