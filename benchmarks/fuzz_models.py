#!/usr/bin/env python3
"""Fuzz tvm_fused.compile with damaged model files: every case must end in a clean error
(a TvmFusedError naming the file or the problem) or a correct compile, never a crash, a hang
or another exception (a traceback for the user).

    python benchmarks/fuzz_models.py [--cases 2000] [--seconds 600] [--seed 0] [--json benchmarks/results/fuzz_models.json]

Seeds: the TFLite fixtures in tests/fixtures (conv_chain, dw5_stride2) and a tiny QDQ ONNX
model (tests/micro/tiny_onnx.py), plus (here, not in CI) the model-family fixtures in
tests/fixtures/families. Mutations, chosen by a seeded RNG per case:
  truncate        cut the file at a random length (0 .. size-1)
  bitflip         flip 1..16 random bits
  bytes           overwrite a random run of 1..64 bytes with random bytes
  words           (flatbuffer) overwrite 1..8 aligned 32-bit words with 0, 1, -1, 2^31-1 or random:
                  what offsets, lengths, shapes and enum values are made of
  proto           (ONNX) a structural protobuf edit: a dimension set to 0/-1/2^31, an op type or
                  attribute changed, a node or initializer removed, an input renamed, a dtype changed
Each case is compiled (C generated, codegen=True) in a worker process; a worker that dies or
exceeds --case-timeout is recorded as a crash or hang and restarted. "wrapped" is one of our errors
that reached the caller as TVM's RuntimeError (raised inside a pass): a failure too, since an API
caller catching TvmFusedError misses it. tests/test_fuzz_models.py
runs a fixed small budget of this in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULT_TAG = "@@fuzz "
OUTCOMES = ("compiled", "clean_error", "wrapped", "bug", "crash", "hang")
FAILURES = ("wrapped", "bug", "crash", "hang")


# ---- seeds and mutations ---------------------------------------------------------------------------------------------

def seed_models(workdir: Path, families: bool = False) -> dict[str, bytes]:
    """{name: bytes} of the unmutated models (names end in their format's suffix); ``families``
    adds the model-family fixtures (tests/fixtures/families: softmax, MobileNetV3, YOLO head, ...)."""
    sys.path.insert(0, str(ROOT / "tests" / "micro"))
    from tiny_onnx import tiny_qdq_conv

    seeds = {name: (ROOT / "tests" / "fixtures" / name).read_bytes()
             for name in ("conv_chain.tflite", "dw5_stride2.tflite")}
    seeds["tiny.onnx"] = tiny_qdq_conv(workdir / "tiny.onnx").read_bytes()
    if families:
        for path in sorted((ROOT / "tests" / "fixtures" / "families").glob("*.*")):
            if path.suffix in (".onnx", ".tflite"):
                seeds[path.name] = path.read_bytes()
    return seeds


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def _bitflip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    n = rng.randint(1, 64)
    i = rng.randrange(max(len(b) - n, 1))
    b[i:i + n] = bytes(rng.randrange(256) for _ in range(min(n, len(b) - i)))
    return bytes(b)


def _words(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    head = min(len(b) // 4, 1024)  # the tables (offsets, shapes, types) sit before the big weight buffers
    for _ in range(rng.randint(1, 8)):
        i = 4 * rng.randrange(max(head, 1))
        value = rng.choice([0, 1, -1, 2**31 - 1, rng.randrange(-2**31, 2**31)])
        b[i:i + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(b)


def _proto(data: bytes, rng: random.Random) -> bytes:
    import onnx

    m = onnx.load_from_string(data)
    g = m.graph
    edit = rng.choice(["dim", "op_type", "attribute", "drop_node", "drop_initializer", "rename_input", "dtype"])
    if edit == "dim":
        value_infos = list(g.input) + list(g.output)
        dims = [d for vi in value_infos for d in vi.type.tensor_type.shape.dim]
        if dims:
            rng.choice(dims).dim_value = rng.choice([0, 2, 3, 7, 2**31 - 1])
    elif edit == "op_type":
        rng.choice(g.node).op_type = rng.choice(["Conv", "Relu", "Add", "MaxPool", "Gemm", "Softmax", "Foo"])
    elif edit == "attribute":
        attrs = [a for n in g.node for a in n.attribute if a.ints]
        if attrs:
            a = rng.choice(attrs)
            a.ints[rng.randrange(len(a.ints))] = rng.choice([0, -1, 5, 1000])
    elif edit == "drop_node":
        del g.node[rng.randrange(len(g.node))]
    elif edit == "drop_initializer":
        del g.initializer[rng.randrange(len(g.initializer))]
    elif edit == "rename_input":
        n = rng.choice([n for n in g.node if n.input])
        n.input[rng.randrange(len(n.input))] = "missing_tensor"
    elif edit == "dtype":
        rng.choice(g.initializer).data_type = rng.choice([1, 2, 3, 6, 7, 10])
    return m.SerializeToString()


MUTATIONS = {"truncate": _truncate, "bitflip": _bitflip, "bytes": _bytes, "words": _words, "proto": _proto}


def cases(seeds: dict[str, bytes], seed: int):
    """Endless deterministic stream of (case id, seed name, mutation, mutated bytes)."""
    rng = random.Random(seed)
    k = 0
    names = sorted(seeds)
    while True:
        name = names[k % len(names)]
        kinds = ["truncate", "bitflip", "bytes"] + (["proto", "proto"] if name.endswith(".onnx") else ["words", "words"])
        kind = kinds[rng.randrange(len(kinds))]
        case_rng = random.Random(rng.randrange(2**63))
        yield k, name, kind, MUTATIONS[kind](seeds[name], case_rng)
        k += 1


# ---- the worker: compile one file per request ----------------------------------------------------------------------

def worker() -> int:
    """Read model paths on stdin; answer each with one RESULT_TAG JSON line on stdout."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever TVM prints goes to stderr, not into our answers
    import tvm_fused
    from tvm_fused.errors import TvmFusedError, recover

    for line in sys.stdin:
        path = line.strip()
        t = time.perf_counter()
        try:
            cm = tvm_fused.compile(path, progress=False)
            assert cm.report["arena_bytes"] > 0 and cm.library.files, "compiled without an arena or C files"
            result = {"outcome": "compiled", "arena_bytes": cm.report["arena_bytes"]}
        except TvmFusedError as e:
            result = {"outcome": "clean_error", "type": type(e).__name__, "message": str(e)[:300]}
        except Exception as e:  # noqa: BLE001: what the fuzzer is looking for
            ours = recover(e)  # our error, but it reached the caller as TVM's RuntimeError
            result = {"outcome": "wrapped" if ours is not None else "bug",
                      "type": type(ours or e).__name__, "message": str(e)[:300]}
        result["seconds"] = round(time.perf_counter() - t, 3)
        out.write(RESULT_TAG + json.dumps(result) + "\n")
        out.flush()
    return 0


class _Worker:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     start_new_session=True)

    def ask(self, path: Path, timeout: float) -> dict:
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"outcome": "hang", "message": f"no answer within {timeout:.0f} s"}
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                code = self.proc.wait()
                return {"outcome": "crash", "message": f"worker died (exit status {code})"}
            if line.startswith(RESULT_TAG):
                return json.loads(line[len(RESULT_TAG):])

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()


def fuzz(n_cases: int, seconds: float, seed: int = 0, case_timeout: float = 60.0, first_case_timeout: float = 120.0,
         progress=print, families: bool = False) -> dict:
    """Run up to n_cases cases or until ``seconds`` pass; returns the summary and every non-clean case."""
    t0 = time.monotonic()
    summary = {k: 0 for k in OUTCOMES}
    failures, by_kind = [], {}
    with tempfile.TemporaryDirectory(prefix="tvmf-fuzz-") as tmp:
        tmp = Path(tmp)
        seeds = seed_models(tmp, families)
        w = _Worker()
        warm = True  # the first answer includes importing TVM
        try:
            for k, name, kind, data in cases(seeds, seed):
                if k >= n_cases or time.monotonic() - t0 > seconds:
                    break
                path = tmp / f"case{k}-{name}"
                path.write_bytes(data)
                r = w.ask(path, first_case_timeout if warm else case_timeout)
                warm = False
                path.unlink()
                r.update(case=k, seed_model=name, mutation=kind, size=len(data))
                summary[r["outcome"]] += 1
                by_kind.setdefault(kind, {o: 0 for o in OUTCOMES})[r["outcome"]] += 1
                if r["outcome"] in FAILURES:
                    failures.append(r)
                    if progress:
                        progress(f"  case {k} {name} {kind}: {r['outcome']}: {r.get('type', '')} {r['message']}")
                    if r["outcome"] in ("crash", "hang"):
                        w.close()
                        w, warm = _Worker(), True
        finally:
            w.close()
    return {"seed": seed, "seed_models": sorted(seeds), "cases": sum(summary.values()), "seconds": round(time.monotonic() - t0, 1),
            "summary": summary, "by_mutation": by_kind, "failures": failures}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--case-timeout", type=float, default=60)
    ap.add_argument("--no-families", action="store_true",
                    help="only the CI seeds (two TFLite fixtures, the tiny ONNX), not tests/fixtures/families")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fuzz_models.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker()
    result = fuzz(args.cases, args.seconds, args.seed, args.case_timeout, families=not args.no_families)
    print(f"{'mutation':<10} " + " ".join(f"{o:>12}" for o in OUTCOMES))
    for kind, counts in sorted(result["by_mutation"].items()):
        print(f"{kind:<10} " + " ".join(f"{counts[o]:>12}" for o in OUTCOMES))
    print(f"{'total':<10} " + " ".join(f"{result['summary'][o]:>12}" for o in OUTCOMES))
    print(f"{result['cases']} cases in {result['seconds']} s (seed {args.seed})")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
