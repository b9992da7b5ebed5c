"""tvm-fused against TFLite Micro on the same QEMU Cortex-M7, the same model and the same input.

    python benchmarks/peers.py                                   # tests/fixtures/mbv2_035_96.tflite
    python benchmarks/peers.py --models a.tflite b.tflite --tflm-harness ~/peers_tflm
    python benchmarks/peers.py --tuning-log tuning.json          # adds a "tuned" row
    python benchmarks/peers.py --no-tflm [--no-device]           # our side only (host only)

Rows per model: tvm-fused `--fuse none`, `--fuse auto` (and `tuned` with --tuning-log), TFLM with
its reference kernels and TFLM + CMSIS-NN. Columns: instructions of one inference (exact QEMU
counts on `mps2-an500`, not cycles) and per MAC, the arena, the firmware's flash image, peak RAM
(ours: arena + measured stack + .data/.bss), and the largest difference of the device output from
the TFLite interpreter's reference kernels (BUILTIN_REF), with the number of differing elements.
Below the table, TFLM's arena as the `tflite-micro` package reports it on this host (64-bit: its
persistent part is larger than on the 32-bit device; the TFLM rows carry the device figure).

The TFLM side is the harness of ../shared/peers/tflm_qemu (`--tflm-harness DIR` or
$TVM_FUSED_TFLM_HARNESS), built once from TFLM and CMSIS-NN sources at pinned commits
(`--tflm-src` / $TFLM_SRC, `--tflm-build` / $TFLM_BUILD). Without it the script prints the set-up
commands and still measures our side. Input: `<model>.in.npy` beside the model if present, else
`np.random.default_rng(0).integers(-128, 128)` int8 (the harness's rule), written to one .npy
that both sides read. Results: benchmarks/results/peers.json.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MODELS = [ROOT / "tests" / "fixtures" / "mbv2_035_96.tflite"]
HARNESS_ENV = "TVM_FUSED_TFLM_HARNESS"
FLAVOURS = {"ref": "TFLM, reference kernels", "cmsis_nn": "TFLM + CMSIS-NN"}
BASELINE = "TFLM + CMSIS-NN"
COLUMNS = [("model", "model"), ("system", "system"), ("instructions", "instructions"),
           ("x_cmsis_nn", "x CMSIS-NN"), ("instructions_per_mac", "per MAC"), ("arena_bytes", "arena B"),
           ("flash_bytes", "flash B"), ("peak_ram_bytes", "peak RAM B"), ("vs_builtin_ref", "vs BUILTIN_REF")]

SETUP = """\
TFLM side skipped: {why}
To measure TFLite Micro on the same QEMU (once; about 30 min of compiling on 2 cores):
  # 1. bare mirrors of the sources (any machine with network; or reuse existing ones)
  export MIRROR=$HOME/tflm_mirrors; mkdir -p $MIRROR
  for r in tensorflow/tflite-micro google/flatbuffers google/gemmlowp google/ruy mborgerding/kissfft \\
           ARM-software/CMSIS_6 ARM-software/CMSIS-NN; do
    git clone --mirror https://github.com/$r $MIRROR/${{r/\\//+}}/repo; done
  # 2. the harness (a copy of ../shared/peers/tflm_qemu) and the sources at the pinned commits
  cp -r {shared} $HOME/peers_tflm && chmod -R u+w $HOME/peers_tflm
  # register SHAPE, PACK, LEAKY_RELU, RESIZE_NEAREST_NEIGHBOR too (MobileNet V1, the YOLO-like head)
  patch -d $HOME/peers_tflm -p1 < {root}/benchmarks/tflm_harness_ops.patch
  MIRROR=$MIRROR TFLM_SRC=$HOME/tflm_src $HOME/peers_tflm/setup_sources.sh
  # 3. a venv for TFLM's Makefile, the C++ library for arm-none-eabi, the QEMU plugin and both libraries
  python3 -m venv $HOME/tflm_venv && $HOME/tflm_venv/bin/pip install numpy Pillow ai-edge-litert
  sudo apt-get install -y libstdc++-arm-none-eabi-newlib
  export TFLM_SRC=$HOME/tflm_src/tflite-micro TFLM_BUILD=$HOME/tflm_build TFLM_PY_BIN=$HOME/tflm_venv/bin
  cd $HOME/peers_tflm && make plugin BUILD=$TFLM_BUILD
  for f in ref cmsis_nn; do make sources FLAVOUR=$f BUILD=$TFLM_BUILD &&   # no -j here: it interleaves the list
    nice make lib FLAVOUR=$f BUILD=$TFLM_BUILD -j2; done
  # 4. then
  TVM_FUSED_TFLM_HARNESS=$HOME/peers_tflm python benchmarks/peers.py ...
"""


# ---------------------------------------------------------------- inputs and the TFLite reference

def tflite_io(model: Path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model))
    return it.get_input_details(), it.get_output_details()


def model_input(model: Path, shape=None, dtype=np.int8) -> tuple[np.ndarray, str]:
    """The harness's rule: <model>.in.npy beside the model, else seeded int8."""
    given = model.with_suffix(".in.npy")
    if given.is_file():
        return np.load(given), given.name
    if shape is None:
        d = tflite_io(model)[0][0]
        shape, dtype = tuple(int(v) for v in d["shape"]), d["dtype"]
    if np.dtype(dtype) != np.int8:
        return np.random.default_rng(0).uniform(-1, 1, size=shape).astype(dtype), "seeded uniform[-1, 1]"
    return np.random.default_rng(0).integers(-128, 128, size=shape, dtype=np.int8), "seeded default_rng(0) int8"


def builtin_ref(model: Path, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of the TFLite interpreter with its reference kernels (what TFLM and we must match)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def compare(outputs, refs) -> dict:
    """max |a - b| and count of differing elements over all outputs (in output order)."""
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if len(outs) != len(refs) or any(np.asarray(o).size != r.size for o, r in zip(outs, refs)):
        return {"max_abs_diff": None, "n_diff": None,
                "compare_error": f"{len(outs)} output(s) of sizes {[np.asarray(o).size for o in outs]} "
                                 f"vs the reference's {len(refs)} of sizes {[r.size for r in refs]}"}
    diffs = [np.abs(np.asarray(o).reshape(-1).astype(np.float64) - r.reshape(-1).astype(np.float64))
             for o, r in zip(outs, refs)]
    return {"max_abs_diff": float(max(d.max() for d in diffs)) if diffs else 0.0,
            "n_diff": int(sum(np.count_nonzero(d) for d in diffs)), "output_elems": int(sum(d.size for d in diffs))}


def count_macs(model: Path) -> int:
    """MACs of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (the harness's count)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model))
    shapes = {t["index"]: [int(v) for v in t["shape"]] for t in it.get_tensor_details()}
    total = 0
    for op in it._get_ops_details():
        name, w, out = op["op_name"], None, None
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w, out = shapes[int(op["inputs"][1])], shapes[int(op["outputs"][0])]
        if name == "CONV_2D":
            total += int(np.prod(out)) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":
            total += int(np.prod(out)) * w[1] * w[2]
        elif name == "FULLY_CONNECTED":
            total += int(np.prod(out)) * w[1]
    return total


# ---------------------------------------------------------------- TFLM's arena from the PyPI package

_HOST_ARENA = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_file(sys.argv[1], arena_size=64 * 1024 * 1024)
if hasattr(it, "arena_used_bytes"):
    print("ARENA_USED", it.arena_used_bytes())
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
it.invoke()
sys.stdout.flush()
it.print_allocations()
"""


def tflm_host_arena(model: Path) -> dict:
    """TFLM's arena for `model` from the `tflite-micro` package (pip install tflite-micro), on this
    host: total = head (planned tensors, as on the device) + tail (persistent; pointer-size dependent)."""
    p = subprocess.run([sys.executable, "-c", _HOST_ARENA, str(model)], capture_output=True, text=True, timeout=300)
    text = p.stdout + p.stderr
    if "No module named 'tflite_micro'" in text:
        return {"error": "the tflite-micro package is not installed (pip install tflite-micro)"}
    found = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
    used = re.search(r"ARENA_USED (\d+)", text)
    if used:
        found["used"] = int(used.group(1))
    if "total" not in found and "used" not in found:
        return {"error": "tflite-micro could not run the model: " + text.strip()[-400:]}
    return {"total": found.get("used", found.get("total")), "head": found.get("head"), "tail": found.get("tail"),
            "note": "tflite-micro package on this 64-bit host"}


# ---------------------------------------------------------------- the TFLM harness

class Harness:
    def __init__(self, directory, src, build):
        self.dir = Path(directory).expanduser() if directory else None
        self.src = Path(src).expanduser()
        self.build = Path(build).expanduser()

    def missing(self, flavour: str) -> str | None:
        """Why this flavour cannot run, or None."""
        if self.dir is None:
            return f"no harness given (--tflm-harness DIR or ${HARNESS_ENV})"
        if not (self.dir / "run.py").is_file():
            return f"{self.dir}/run.py not found (not a copy of peers/tflm_qemu)"
        if not (self.src / "tensorflow" / "lite" / "micro").is_dir():
            return f"TFLM sources not found at {self.src} (--tflm-src or $TFLM_SRC; run setup_sources.sh)"
        if not (self.build / flavour / "libtflm.a").is_file():
            return f"{self.build}/{flavour}/libtflm.a not built (make lib FLAVOUR={flavour})"
        if not (self.build / "insn_marks.so").is_file():
            return f"{self.build}/insn_marks.so not built (make plugin)"
        return None

    def run(self, model: Path, flavour: str, x_npy: Path, timeout: int) -> dict:
        env = dict(os.environ, TFLM_SRC=str(self.src), TFLM_BUILD=str(self.build))
        cmd = [sys.executable, str(self.dir / "run.py"), str(model), "--flavour", flavour, "--input", str(x_npy),
               "--build-dir", str(self.build), "--timeout", str(timeout)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            return {"error": f"harness failed (exit {p.returncode}): " + (p.stdout + p.stderr)[-1500:]}
        r = json.loads(lines[-1])
        if "error" in r:
            return {"error": "harness: " + r["error"][-1500:]}
        return r


def tflm_row(model: Path, flavour: str, harness: Harness, x_npy: Path, args) -> dict:
    row = {"model": model.name, "system": FLAVOURS[flavour]}
    why = harness.missing(flavour)
    if why:
        return dict(row, skipped=why)
    t0 = time.perf_counter()
    r = harness.run(model, flavour, x_npy, args.timeout)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    if "error" in r:
        return dict(row, error=r["error"])
    row.update({"instructions": r["instructions"], "instructions_systick": r.get("instructions_systick"),
                "arena_bytes": r["arena_used_bytes"], "flash_bytes": r.get("fw_code_region_bytes"),
                "peak_ram_bytes": None, "max_abs_diff": r["max_abs_diff_vs_tflite_ref"],
                "n_diff": r["n_diff_vs_tflite_ref"], "output_elems": r.get("output_elems"),
                "tflm_commit_src": str(harness.src), "input": r.get("input")})
    return row


# ---------------------------------------------------------------- our side

def _compile(model: Path, fuse, args, tuning_log=None):
    import tvm_fused

    kw = dict(board=args.board, fuse=fuse, name=model.stem, progress=False)
    if tuning_log is not None:
        if "tuning_log" not in inspect.signature(tvm_fused.compile).parameters:
            raise RuntimeError("this tvm_fused.compile has no tuning_log parameter yet (issue 9's tuner)")
        kw["tuning_log"] = str(tuning_log)
    return tvm_fused.compile(str(model), **kw)


def to_device(cm, x: np.ndarray) -> np.ndarray:
    """The int8 tensor the generated C takes: float-in models are quantized as TFLite's QUANTIZE does."""
    return cm.quantize_input(x) if cm.io["inputs"][0].get("model_dtype") == "float32" else x


def from_device(cm, y) -> list[np.ndarray]:
    """The model's own outputs: float-out models dequantized as TFLite's DEQUANTIZE does."""
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    return [cm.dequantize_output(a) if spec.get("model_dtype") == "float32" else np.asarray(a)
            for a, spec in zip(ys, cm.io["outputs"])]


def ours_row(model: Path, label: str, fuse, x: np.ndarray, refs, args, workdir: Path, tuning_log=None) -> dict:
    row = {"model": model.name, "system": label}
    t0 = time.perf_counter()
    try:
        cm = _compile(model, fuse, args, tuning_log)
    except Exception as e:  # noqa: BLE001 (a row says why, the others still run)
        return dict(row, error=f"compile: {type(e).__name__}: {e}"[:1500])
    row["macs"] = int(cm.report.get("macs") or 0) or None
    row["compile_seconds"] = round(time.perf_counter() - t0, 1)
    row["arena_bytes"] = int(cm.report["arena_bytes"])
    if refs is not None:  # the host build of the same kernels, against TFLite
        host = compare(from_device(cm, cm.reference(to_device(cm, x))), refs)
        row["host_max_abs_diff"], row["host_n_diff"] = host["max_abs_diff"], host["n_diff"]
    if args.no_device:
        row.update({k: row.get(f"host_{k}") for k in ("max_abs_diff", "n_diff")})
        row["note"] = "host only (--no-device): arena from the plan, output from TVM's host build"
        return row
    from tvm_fused.micro import run_on_device

    try:
        run = run_on_device(cm, to_device(cm, x), board=args.board,
                            project_dir=workdir / f"{model.stem}-{label.split()[-1]}")
    except Exception as e:  # noqa: BLE001
        return dict(row, error=f"device: {type(e).__name__}: {e}"[:1500])
    m = run.measurement
    row.update({"instructions": m.get("instructions", m.get("cycles")), "arena_bytes": m["arena_bytes"],
                "flash_bytes": m["flash_bytes"], "peak_ram_bytes": m["peak_ram_bytes"],
                "stack_bytes": m.get("stack_bytes"), "seconds": round(time.perf_counter() - t0, 1)})
    if refs is not None:
        row.update(compare(from_device(cm, run.output), refs))
    return row


# ---------------------------------------------------------------- table

def _fmt(row: dict, key: str) -> str:
    v = row.get(key)
    if key == "vs_builtin_ref":
        if row.get("max_abs_diff") is None:
            return "-"
        if row["n_diff"] == 0:
            return "identical"
        return f"max {row['max_abs_diff']:g} ({row['n_diff']}/{row.get('output_elems', '?')})"
    if key == "system" and ("error" in row or "skipped" in row):
        return f"{v} [{'FAILED' if 'error' in row else 'skipped'}]"
    if v is None:
        return ""
    if key == "x_cmsis_nn":
        return f"{v:.3f}x"
    if key == "instructions_per_mac":
        return f"{v:.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def finish_rows(rows: list[dict]) -> None:
    """Per-MAC and CMSIS-NN ratios (per model)."""
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for model_rows in by_model.values():
        base = next((r.get("instructions") for r in model_rows if r["system"] == BASELINE), None)
        macs = next((r["macs"] for r in model_rows if r.get("macs")), None)
        for r in model_rows:
            r.setdefault("macs", macs)
            if r.get("instructions") and macs:
                r["instructions_per_mac"] = round(r["instructions"] / macs, 3)
            if r.get("instructions") and base:
                r["x_cmsis_nn"] = round(r["instructions"] / base, 4)


def print_table(rows: list[dict], host_arenas: dict) -> None:
    cells = [[title for _, title in COLUMNS]] + [[_fmt(r, k) for k, _ in COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    for n, line in enumerate(cells):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if "error" in r:
            print(f"  {r['model']} / {r['system']}: {r['error'].splitlines()[0][:300]}")
    for model, a in host_arenas.items():
        if "error" in a:
            print(f"TFLM arena, {model}: unknown: {a['error']}")
        else:
            print(f"TFLM arena, {model} (tflite-micro package, 64-bit host): {a['total']:,} B"
                  + (f" (head {a['head']:,} + tail {a['tail']:,})" if a.get("head") is not None else ""))


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", type=Path, default=[],
                    help="extra .tflite models (the mbv2_035_96 fixture is always first unless --only)")
    ap.add_argument("--only", action="store_true", help="only the --models, not the default fixture")
    ap.add_argument("--fuse", nargs="+", default=["none", "auto"], help="our fuse settings (none, auto, N)")
    ap.add_argument("--tuning-log", type=Path, help="also run a 'tuned' row (fuse auto) with this tuning log")
    ap.add_argument("--board", default="qemu-mps2-an500")
    ap.add_argument("--tflm-harness", default=os.environ.get(HARNESS_ENV),
                    help=f"copy of peers/tflm_qemu (default ${HARNESS_ENV})")
    ap.add_argument("--tflm-src", default=os.environ.get("TFLM_SRC", "/tmp/tflm_src/tflite-micro"))
    ap.add_argument("--tflm-build", default=os.environ.get("TFLM_BUILD", "/tmp/tflm_build"))
    ap.add_argument("--flavours", nargs="+", default=list(FLAVOURS), choices=list(FLAVOURS))
    ap.add_argument("--no-tflm", action="store_true", help="our side only")
    ap.add_argument("--no-device", action="store_true",
                    help="our side on the host only: compile, plan, TVM host build vs BUILTIN_REF (no QEMU)")
    ap.add_argument("--no-host-arena", action="store_true", help="skip the tflite-micro package's arena")
    ap.add_argument("--timeout", type=int, default=3000, help="seconds per TFLM QEMU run")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    ap.add_argument("--workdir", type=Path, help="keep firmware projects and inputs here")
    args = ap.parse_args(argv)
    args.models = ([] if args.only else list(DEFAULT_MODELS)) + [m for m in args.models if m not in DEFAULT_MODELS]
    if not args.models:
        ap.error("no models: give --models with --only")
    for m in args.models:
        if not m.is_file():
            ap.error(f"model file {m} not found")
    if args.tuning_log is not None and not args.tuning_log.is_file():
        ap.error(f"tuning log {args.tuning_log} not found (make one with: tvm-fused tune MODEL -o tuning.json)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    harness = Harness(args.tflm_harness, args.tflm_src, args.tflm_build)
    if not args.no_tflm:
        why = next(filter(None, (harness.missing(f) for f in args.flavours)), None)
        if why:
            shared = ROOT.parent / "shared" / "peers" / "tflm_qemu"
            print(SETUP.format(why=why, shared=shared, root=ROOT), file=sys.stderr)
    rows, host_arenas = [], {}
    with tempfile.TemporaryDirectory(prefix="tvmf-peers-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for model in args.models:
            model = model.resolve()
            is_tflite = model.suffix == ".tflite"
            if is_tflite:
                x, source = model_input(model)
                refs = builtin_ref(model, x)
            else:  # ONNX: our side only, no TFLite reference
                import tvm_fused

                shape = tvm_fused.compile(str(model), codegen=False, progress=False).io["inputs"][0]["shape"]
                x, source = model_input(model, shape)
                refs = None
            x_npy = workdir / f"{model.stem}.input.npy"
            np.save(x_npy, x)
            print(f"{model.name}: input {source}", file=sys.stderr, flush=True)
            labels = {"none": "tvm-fused --fuse none", "auto": "tvm-fused --fuse auto"}
            for fuse in args.fuse:
                f = int(fuse) if str(fuse).isdigit() else fuse
                print(f"  tvm-fused fuse={fuse}", file=sys.stderr, flush=True)
                rows.append(ours_row(model, labels.get(str(fuse), f"tvm-fused --fuse {fuse}"), f, x, refs, args,
                                     workdir))
            if args.tuning_log:
                print("  tvm-fused tuned", file=sys.stderr, flush=True)
                rows.append(ours_row(model, "tvm-fused tuned (auto)", "auto", x, refs, args, workdir,
                                     tuning_log=args.tuning_log))
            if is_tflite and not args.no_tflm:
                for flavour in args.flavours:
                    print(f"  TFLM {flavour}", file=sys.stderr, flush=True)
                    rows.append(tflm_row(model, flavour, harness, x_npy, args))
            if is_tflite and not args.no_host_arena:
                host_arenas[model.name] = tflm_host_arena(model)
            if is_tflite:  # one MAC count for every row (the harness's), so per-MAC figures compare
                macs = count_macs(model)
                for r in rows:
                    if r["model"] == model.name:
                        r["macs"] = macs
    finish_rows(rows)
    print_table(rows, host_arenas)
    out = {"board": args.board, "counter": "instructions (QEMU, exact; not cycles)", "rows": rows,
           "tflm_host_arena": host_arenas,
           "tflm_harness": str(harness.dir) if harness.dir else None}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")
    bad = [r for r in rows if r.get("n_diff") not in (0, None) or "error" in r]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
