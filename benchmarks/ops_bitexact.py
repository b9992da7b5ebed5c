#!/usr/bin/env python3
"""Long sweep: the compile-time arithmetic of the activation / arithmetic ops vs TFLite BUILTIN_REF.

    python benchmarks/ops_bitexact.py [--cases 300] [--json benchmarks/results/ops_bitexact.json]

For each op, ``--cases`` random quantization parameter sets (scales 1e-3..2, any zero point,
random alpha / beta / broadcast shapes) on single-op models written by tests/tflite_builder.py:
LUT ops over all 256 int8 inputs, softmax and the binary ops on random tensors. Compares our
numpy goldens (the tables the kernels load, the softmax / binary kernel arithmetic) with the
interpreter's reference kernels and prints how many outputs differ. The kernels themselves
are checked against these goldens through the compiler in tests/test_ops_tflite.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> int:
    from tflite_builder import ModelBuilder, run_reference, single_op_model

    from tvm_fused.schedules import lut
    from tvm_fused.schedules.binary import BinaryParams, binary_reference
    from tvm_fused.schedules.softmax import SoftmaxParams, softmax_reference

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300, help="random parameter sets per op")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/ops_bitexact.json"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    all_int8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)

    def scale():
        return float(np.float32(10.0 ** rng.uniform(-3, 0.3)))

    def zp():
        return int(rng.integers(-128, 128))

    def q(shape, s, z):
        return dict(shape=list(shape), dtype="int8", scale=s, zero_point=z)

    def lut_case(op):
        s_in, z_in, s_out, z_out = scale(), zp(), scale(), zp()
        fields, options = {}, None
        if op == "LOGISTIC":
            s_out = 1 / 256
            table = lut.logistic_table(s_in, z_in, s_out, z_out)
        elif op == "TANH":
            table = lut.tanh_table(s_in, z_in, s_out, z_out)
        elif op == "HARD_SWISH":
            s_out = max(s_out, s_in / 64)
            table = lut.hard_swish_table(s_in, z_in, s_out, z_out)
        elif op == "LEAKY_RELU":
            fields, options = {"alpha": float(np.float32(rng.uniform(-1, 1)))}, "LeakyReluOptions"
            table = lut.leaky_relu_table(s_in, z_in, s_out, z_out, fields["alpha"])
        elif op == "RELU":
            table = lut.relu_table(s_in, z_in, s_out, z_out)
        elif op == "RELU6":
            table = lut.relu_table(s_in, z_in, s_out, z_out, 0.0, 6.0)
        else:  # QUANTIZE
            table = lut.requantize_table(s_in, z_in, s_out, z_out)
        model = single_op_model(op, [q([1, 256], s_in, z_in)], [q([1, 256], s_out, z_out)], options, **fields)
        (want,) = run_reference(model, [all_int8])
        return int((lut.apply_table(all_int8, table) != want).sum()), want.size

    def softmax_case(_):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 300)))
        s_in, z_in = float(np.float32(10.0 ** rng.uniform(-2.5, 0.5))), zp()
        beta = float(np.float32(rng.choice([1.0, rng.uniform(0.2, 3.0)])))
        x = rng.integers(-128, 128, shape, dtype=np.int8)
        model = single_op_model("SOFTMAX", [q(shape, s_in, z_in)], [q(shape, 1 / 256, -128)], "SoftmaxOptions",
                                beta=beta)
        (want,) = run_reference(model, [x])
        got = softmax_reference(x, SoftmaxParams(shape, s_in, z_in, 1 / 256, -128, beta))
        return int((got != want).sum()), want.size

    def binary_case(op):
        out = tuple(int(d) for d in rng.integers(1, 5, int(rng.integers(1, 5))))
        rank = int(rng.integers(1, len(out) + 1))
        b_shape = tuple(d if rng.random() < 0.5 else 1 for d in out[len(out) - rank:])
        a_shape = out
        sa, za, sb, zb, so, zo = scale(), zp(), scale(), zp(), scale(), zp()
        b = ModelBuilder()
        ta, tb = b.tensor(a_shape, "int8", sa, za), b.tensor(b_shape, "int8", sb, zb)
        to = b.tensor(out, "int8", so, zo)
        options = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}.get(op)
        b.op(op, [ta, tb], [to], options, **({"fused_activation_function": "NONE"} if options else {}))
        xa = rng.integers(-128, 128, a_shape, dtype=np.int8)
        xb = rng.integers(-128, 128, b_shape, dtype=np.int8)
        (want,) = run_reference(b.build([ta, tb], [to]), [xa, xb])
        got = binary_reference(xa, xb, BinaryParams(op.lower(), a_shape, b_shape, sa, za, sb, zb, so, zo))
        return int((got != want).sum()), want.size

    sweeps = {op: lut_case for op in ("LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "QUANTIZE")}
    sweeps["SOFTMAX"] = softmax_case
    sweeps.update({op: binary_case for op in ("ADD", "SUB", "MUL", "PRELU")})
    rows = []
    print(f"{'op':<12} {'cases':>6} {'outputs':>9} {'differing':>9} {'s':>6}")
    for op, case in sweeps.items():
        t = time.perf_counter()
        differing = total = 0
        for _ in range(args.cases):
            d, n = case(op)
            differing, total = differing + d, total + n
        secs = time.perf_counter() - t
        rows.append({"op": op, "cases": args.cases, "outputs": total, "differing": differing,
                     "seconds": round(secs, 1)})
        print(f"{op:<12} {args.cases:>6} {total:>9} {differing:>9} {secs:>6.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"seed": args.seed, "results": rows}, indent=2) + "\n")
    return 1 if any(r["differing"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
