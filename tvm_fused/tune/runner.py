"""Measure one config of one task on a device: a one-kernel model through the real compiler.

The task's kernel is rebuilt as a one-op int8 QDQ ONNX model (same shape, stride, padding;
seeded random weights), compiled by ``tvm_fused.compile`` with the candidate config forced
(``schedules.config.use_configs``), and run by ``micro.run_on_device`` on random input. The
cost is the firmware's measurement of that inference: QEMU -icount instructions (exact and
deterministic; not cycles) or DWT cycles on a board. It includes the firmware's fixed call
overhead, equal for every config of a task, so it ranks configs exactly.

``measure_batch`` compiles serially (TVM in this process) and runs the firmware builds and
QEMU instances in ``parallel`` threads (each QEMU is its own process on its own port).
"""
from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .database import Record
from .space import config_dict


def one_kernel_onnx(task, path) -> Path:
    """A QDQ ONNX model holding only the task's kernel (int8 in/out, random weights, seed 0)."""
    import onnx
    from onnx import TensorProto, helper
    from onnx import numpy_helper as nh

    d = task.shape_dict()
    rng = np.random.default_rng(0)
    if "in_shape" in d:
        n, h, w, c = d["in_shape"]
        oc = d["out_channels"]
        kh, kw = d["kernel"]
        pt, pl, pb, pr = d["padding"]
        groups = c if d["depthwise"] else 1
        wq = rng.integers(-127, 128, (oc, c // groups, kh, kw), dtype=np.int8)
        n_out = oc
        op = helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[pt, pl, pb, pr], strides=list(d["strides"]),
                              group=groups, kernel_shape=[kh, kw])
        in_shape = [n, c, h, w]
        sh, sw = d["strides"]
        out_shape = [n, oc, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1]
        fan_in = kh * kw * (c // groups)
    else:
        n, k, n_out = d["batch"], d["in_features"], d["out_features"]
        wq = rng.integers(-127, 128, (k, n_out), dtype=np.int8)
        op = helper.make_node("Gemm", ["xd", "wd", "bd"], ["c"])
        in_shape, out_shape, fan_in = [n, k], [n, n_out], k
    b = rng.integers(-1000, 1000, (n_out,), dtype=np.int32)
    xs, ws = 0.02, 0.01
    ys = xs * ws * 128 * np.sqrt(fan_in) / 8
    inits = [nh.from_array(np.array(xs, np.float32), "xs"), nh.from_array(np.array(-3, np.int8), "xz"),
             nh.from_array(wq, "w_q"), nh.from_array(np.array(ws, np.float32), "ws"),
             nh.from_array(np.array(0, np.int8), "wz"), nh.from_array(b, "b_q"),
             nh.from_array(np.array(xs * ws, np.float32), "bs"), nh.from_array(np.array(0, np.int32), "bz"),
             nh.from_array(np.array(ys, np.float32), "ys"), nh.from_array(np.array(5, np.int8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b_q", "bs", "bz"], ["bd"]),
             op,
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, f"task_{task.short_key}",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return Path(path)


def compile_candidate(task, config, board: str, workdir):
    """The one-kernel model of ``task`` compiled with ``config`` (a CompiledModel)."""
    import tvm_fused
    from ..schedules.config import use_configs

    path = one_kernel_onnx(task, Path(workdir) / f"task_{task.short_key}.onnx")
    with use_configs(lambda params: config):
        return tvm_fused.compile(str(path), board=board, fuse="none", progress=False)


def run_candidate(cm, board: str, port: str | None = None, check: bool = False):
    """(cost, metric) of one inference of a compiled candidate on ``board``."""
    from ..micro import outputs_equal, run_on_device

    from ..errors import ProjectBusyError

    x = cm.random_input(0)
    with tempfile.TemporaryDirectory(prefix="tvm-fused-tune-") as proj:
        for attempt in range(10):
            # each thread has its own folder; its flock can be seen as busy for an instant while
            # another thread forks a tool (the child holds a copy of the fd until exec closes it)
            try:
                run = run_on_device(cm, x, board=board, project_dir=Path(proj) / "p", port=port)
                break
            except ProjectBusyError:
                if attempt == 9:
                    raise
                time.sleep(0.3 * (attempt + 1))
    if check and not outputs_equal(run.output, cm.reference(x)):
        raise RuntimeError("the candidate's device output differs from the host reference")
    m = run.measurement
    if m.get("cycles") is not None:
        return int(m["cycles"]), "cycles"
    return int(m["instructions"]), "instructions"


def measure_batch(pairs, board: str, parallel: int = 1, remote=None, check: bool = False) -> list[Record]:
    """Measure ``[(task, config), ...]``; one Record each (failures carry the error, cost None).

    ``remote``: a callable ``(cm, board) -> (cost, metric)`` that runs elsewhere (RPC tracker)."""
    t0 = time.time()
    compiled = []
    with tempfile.TemporaryDirectory(prefix="tvm-fused-tune-") as work:
        for task, config in pairs:
            try:
                compiled.append((compile_candidate(task, config, board, work), None))
            except Exception as e:  # noqa: BLE001 -- recorded, the search goes on
                compiled.append((None, f"compile: {type(e).__name__}: {e}"))
    compile_seconds = (time.time() - t0) / max(1, len(pairs))

    def one(item):
        cm, err = item
        if err is not None:
            return None, None, err, 0.0
        t = time.time()
        try:
            cost, metric = remote(cm, board) if remote is not None else run_candidate(cm, board, check=check)
            return cost, metric, None, time.time() - t
        except Exception as e:  # noqa: BLE001
            return None, None, f"run: {type(e).__name__}: {e}", time.time() - t

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(one, compiled))
    return [Record(task=task.key, config=config_dict(config), cost=cost, metric=metric or "instructions",
                   board=board, error=err, seconds=round(compile_seconds + secs, 2))
            for (task, config), (cost, metric, err, secs) in zip(pairs, results)]
