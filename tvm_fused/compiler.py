"""``tvm_fused.compile``: model file -> the ``tvm_fused`` pass pipeline (legalize, fuse, memory plan) -> C + report."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .attrs import model_io
from .boards import get_board
from .errors import FusionError, ModelDoesNotFitError, TvmFusedError

# Rough code size per kernel and for the entry, until an ELF says better (report: *_estimate).
_CODE_BYTES_PER_KERNEL = 600
_CODE_BYTES_BASE = 2048


class _Progress:
    """Prints one line per step that took long enough for a user to wonder."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.timings = {}

    def step(self, name, fn, *args, **kwargs):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        self.record(name, time.perf_counter() - t)
        return result

    def record(self, name, seconds):
        self.timings[name] = round(seconds, 3)
        if self.enabled and seconds > 1.0:
            print(f"[tvm-fused] {name}: {seconds:.1f} s", file=sys.stderr, flush=True)


class CompiledModel:
    """A compiled model: the legalized IRModule, its memory plan, generated C and report."""

    def __init__(self, name, board, imported, mod, plan, library, io, report):
        self.name = name
        self.board = board
        self.imported = imported
        self.mod = mod
        self.plan = plan
        self.library = library
        self.io = io
        self.report = report
        self._reference = None

    def export(self, directory, force: bool = False) -> Path:
        """Write ``model/`` (C library), ``io.json`` and ``report.json`` into ``directory``.

        Atomic (written next to it, then renamed); ``directory`` must be new, empty or an
        earlier export, unless ``force`` (tvm_fused.output.atomic_dir)."""
        from .output import atomic_dir

        if self.library is None:
            raise TvmFusedError("this model was compiled with codegen=False; compile it again to export C")
        with atomic_dir(directory, force, "export folder") as root:
            for rel, text in self.library.files.items():
                path = root / "model" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            (root / "io.json").write_text(json.dumps(self.io, indent=2) + "\n")
            (root / "report.json").write_text(json.dumps(self.report, indent=2) + "\n")
        return Path(directory)

    def reference(self, *inputs):
        """TVM's own host build (LLVM) of the legalized module: what the device must output.

        ``inputs``: one int8 array per model input (in ``io["inputs"]`` order), a list of them,
        or a dict by input name. Returns the output array, or a list of arrays (``io["outputs"]``
        order) when the model has several outputs.
        """
        if self._reference is None:
            from .backend import HostReference

            self._reference = HostReference(self.mod)
        return self._reference(*self.input_arrays(*inputs))

    def input_arrays(self, *inputs) -> list[np.ndarray]:
        """Normalise ``inputs`` (arrays, a list, or a dict by name) to int8 arrays of the input shapes
        (float arrays are quantized, see ``validate.input_array``)."""
        specs = self.io["inputs"]
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            missing = [s["name"] for s in specs if s["name"] not in inputs[0]]
            if missing:
                raise TvmFusedError(f"no value for model input(s) {missing}; inputs: {[s['name'] for s in specs]}")
            inputs = [inputs[0][s["name"]] for s in specs]
        elif len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = list(inputs[0])
        if len(inputs) != len(specs):
            raise TvmFusedError(f"the model has {len(specs)} input(s) "
                                f"({', '.join(s['name'] for s in specs)}), got {len(inputs)} array(s)")
        from .validate import input_array

        return [input_array(x, spec, f"input '{spec['name']}'" if len(specs) > 1 else "input")
                for x, spec in zip(inputs, specs)]

    def random_input(self, seed: int = 0):
        """Random int8 input(s): one array for a single-input model, else a list in input order."""
        rng = np.random.default_rng(seed)
        arrays = [rng.integers(-128, 128, size=s["shape"], dtype=np.int8) for s in self.io["inputs"]]
        return arrays[0] if len(arrays) == 1 else arrays

    def quantize_input(self, *inputs):
        """Float input(s) -> int8 as TFLite's QUANTIZE does it (float32 ``round_half_away(x / s) + z``,
        clamped): for float-in models, whose generated C takes the already quantized tensors."""
        from .validate import quantize

        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = list(inputs[0])
        out = [quantize(np.asarray(x).reshape(spec["shape"]), spec["scale"], spec["zero_point"])
               for x, spec in zip(inputs, self.io["inputs"])]
        return out[0] if len(out) == 1 else out

    def dequantize_output(self, outputs):
        """int8 output(s) -> float32 ``s * (q - z)`` (TFLite's DEQUANTIZE), for float-out models."""
        single = not isinstance(outputs, (list, tuple))
        arrays = [outputs] if single else list(outputs)
        out = [np.float32(spec["scale"]) * (np.asarray(q, np.int32) - spec["zero_point"]).astype(np.float32)
               for q, spec in zip(arrays, self.io["outputs"])]
        return out[0] if single else out


def compile(model, board: str = "host", fuse="none", ram_budget=None, name: str | None = None,
            progress: bool = True, codegen: bool = True,
            latency_budget: float | None = None, fuse_objective: str = "arena",
            stream_input: bool = False, tuning_log=None) -> CompiledModel:  # noqa: A001 (as tvm.compile)
    """Compile an int8 model (.onnx QDQ / .tflite path, ``onnx.ModelProto`` or TFLite bytes) to C.

    ``fuse``: "none", "auto" (chains that lower the arena peak, optionally within
    ``latency_budget``, an estimated fused/unfused instruction ratio such as 1.05) or N
    (the first N fusable blocks). ``codegen=False`` stops after memory planning (for fast what-if planning): the
    result has a report but no C library and cannot be exported. ``stream_input``: the
    first fused chain pulls input rows through ``tvmgen_default_read_input_rows`` (declared
    in ``tvmgen_default.h``), so the frame never sits in the arena (needs fuse != "none").
    ``tuning_log``: a ``tvm-fused tune`` log (path or ``tune.Database``); each kernel takes the
    best measured config of its task (docs/tuning.md); None = the default schedules.
    """
    from .tune import apply_log

    with apply_log(tuning_log) as db:
        cm = _compile(model, board, fuse, ram_budget, name, progress, codegen, latency_budget, fuse_objective,
                      stream_input)
    if db is not None:
        cm.report["tuning_log"] = {"path": str(db.path), "tasks_tuned": len(db.best_configs())}
    return cm


def _compile(model, board, fuse, ram_budget, name, progress, codegen, latency_budget, fuse_objective,
             stream_input) -> CompiledModel:
    from . import frontend, validate
    from .backend import generate_c
    from .passes.boundary import pass_done_hook
    from .pipeline import tvm_fused_pipeline

    opts = validate.compile_options(board, fuse, ram_budget, latency_budget, fuse_objective)  # before any work
    fuse, ram_budget, latency_budget, fuse_objective = (opts[k] for k in ("fuse", "ram_budget", "latency_budget",
                                                                         "fuse_objective"))
    if isinstance(model, (str, Path)):
        validate.model_file(model)
    t0 = time.perf_counter()
    target = get_board(board)
    prog = _Progress(progress)
    imported = prog.step("import", frontend.load, model, name)
    if stream_input and str(fuse) in ("none", "0"):
        raise FusionError("stream_input needs a fused chain at the model input: use --fuse auto (or N >= 1) "
                          "with --stream-input")
    pipeline = tvm_fused_pipeline(fuse, ram_budget, latency_budget, fuse_objective, stream_input=stream_input)
    token = pass_done_hook.set(prog.record)
    try:
        mod = pipeline(imported.mod)  # under the caller's PassContext (PassContext.current())
    finally:
        pass_done_hook.reset(token)
    plan = pipeline.phases["memory plan"].plan
    fuse_info = pipeline.phases["fuse"].report_entry
    if plan is None or fuse_info is None:
        skipped = [p.info.name for p in pipeline.phases.values() if getattr(p, "seconds", None) is None]
        raise TvmFusedError(f"{'the pass' if len(skipped) == 1 else 'the passes'} {', '.join(skipped)} did not run (disabled in the caller's PassContext?); "
                            "tvm_fused.compile needs all three: remove them from disabled_pass")
    from .passes.memory_plan import place_in_banks, scratch_buffers

    # spread over the board's banks when the first does not hold the arena, or when a hot bank
    # (DTCM) can take the fused chains' ring buffers
    if target.banks and (plan.arena_bytes > target.banks[0].bytes
                         or (any(b.hot for b in target.banks) and scratch_buffers(plan))):
        plan = prog.step("place in banks", place_in_banks, plan,
                         [(b.name, b.bytes, b.section, b.hot) for b in target.banks])
    codegen_mod = mod
    if stream_input:  # the host reference: the same chains reading a whole input (LLVM cannot link the callback)
        from .passes import FuseConvChains

        mod = FuseConvChains([c["replaced"] for c in fuse_info["chains"]])(_legalized(imported, pipeline))
    io = model_io(mod["main"])
    budget = ram_budget
    if budget is not None and plan.arena_bytes > budget:
        peak_op = plan.ops[int(np.argmax(plan.live_bytes))] if plan.ops else None
        where = f"; the peak is at op {peak_op.index} '{peak_op.name}' ({plan.live_bytes[peak_op.index]} bytes " \
                f"live, output {list(plan.shapes[peak_op.output])})" if peak_op else ""
        held = str(fuse) == "auto" and not stream_input
        raise ModelDoesNotFitError(
            f"{imported.name}: the activation arena needs {plan.arena_bytes} bytes but the RAM budget is "
            f"{budget} bytes{where}. {_fit_advice(fuse)}"
            f"{_held_input_advice(_legalized(imported, pipeline), budget) if held else ''}")
    library = prog.step("generate C", generate_c, codegen_mod, plan, io) if codegen else None
    report = _report(imported.name, target.name, fuse_info, plan, library, io)
    if stream_input:
        row = next(c["stream_input"] for c in fuse_info["chains"] if "stream_input" in c)
        report["stream_input"] = {**row, "frame_bytes": int(np.prod(io["inputs"][0]["shape"])),
                                  "note": "the arena holds only the input row buffer (inside the first "
                                          "chain's scratch); the application supplies rows via the callback"}
    report["compile_seconds"] = round(time.perf_counter() - t0, 2)
    report["timings"] = prog.timings
    return CompiledModel(imported.name, target.name, imported, mod, plan, library, io, report)


def _legalized(imported, pipeline):
    """The legalized module again (the pipeline's legalize phase on the imported module)."""
    return pipeline.phases["legalize"](imported.mod)


def _held_input_advice(legalized, budget) -> str:
    """With --fuse auto and the input held whole: is the budget below what row kernels can reach
    with the whole frame in RAM, and would --stream-input meet it?"""
    from .passes import fuse_conv_chains
    from .passes.memory_floor import row_stream_floor
    from .passes.memory_plan import plan_memory

    floor = row_stream_floor(legalized)
    text = ""
    if floor is not None and budget < floor["bytes"]:
        t = floor["terms"]
        text = (f" With the input held whole no plan of row kernels fits in less than {floor['bytes']} bytes: "
                f"before the second conv's first row, {t['input_rows_live']} input rows are still unread and "
                f"{t['first_conv_rows']} rows of the first conv's output exist (a larger --latency-budget will "
                f"not help).")
    try:
        streamed, _ = fuse_conv_chains(legalized, "auto", stream_input=True)
        need = plan_memory(streamed, streamed_input=True).arena_bytes
    except (FusionError, ValueError):
        return text
    if need <= budget:
        return text + (f" With --stream-input (stream_input=True: input rows arrive through a callback, the "
                       f"frame never sits in RAM) the arena needs {need} bytes, which meets the budget.")
    return text + f" Even --stream-input needs {need} bytes."


def _fit_advice(fuse) -> str:
    """What to try when the arena is over budget, given the fusion setting that was used."""
    if str(fuse) == "none":
        return "Try --fuse auto (fuse=\"auto\"), or lower the input resolution or width."
    if str(fuse) == "auto":
        return ("This is after --fuse auto; lower the input resolution or width, or raise the budget "
                "(try --fuse-objective arena_without_input if the input can live outside the arena).")
    return f"This is with --fuse {fuse}; try --fuse auto, or lower the input resolution or width."


def _report(name, board, fuse_info, plan, library, io) -> dict:
    macs = sum(op.macs for op in plan.ops)
    ops = []
    for op in plan.ops:
        ops.append({
            "index": op.index, "name": op.name, "op": op.op,
            "inputs": [list(plan.shapes[t]) for t in op.inputs if t is not None],
            "output": list(plan.shapes[op.output]),
            "macs": op.macs,
            "live_bytes": plan.live_bytes[op.index],
            "arena_offset": plan.buffers[op.output].offset,
            "scratch_bytes": plan.buffers[op.scratch].size if op.scratch else 0,
        })
    if library is not None:
        weights = library.weights_bytes
        flash = weights + _CODE_BYTES_BASE + _CODE_BYTES_PER_KERNEL * library.kernel_count
    else:
        weights = flash = None
    return {
        "model": name,
        "board": board,
        "fuse": fuse_info,
        "arena_bytes": plan.arena_bytes,
        "layerwise_lower_bound": plan.lower_bound,
        "arena_over_lower_bound": round(plan.arena_bytes / plan.lower_bound, 4) if plan.lower_bound else 1.0,
        "input_bytes": sum(plan.buffers[n].size for n in plan.input_names),
        "arena_bytes_without_input": plan.arena_bytes_without_input,
        "banks": plan.bank_report(),
        "inplace": plan.inplace_report(),
        "weights_bytes": weights,
        "flash_bytes_estimate": flash,
        "macs": macs,
        "io": io,
        "ops": ops,
    }
