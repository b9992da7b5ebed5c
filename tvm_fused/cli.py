"""The ``tvm-fused`` command line: compile, run, plan, demo."""
from __future__ import annotations

import argparse
import sys

from .boards import BOARDS
from .errors import TvmFusedError


def _fuse_arg(text: str):
    if text in ("none", "auto"):
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fuse takes none, auto or a number of blocks, not '{text}'") from None
    if n < 0:
        raise argparse.ArgumentTypeError("--fuse N needs N >= 0")
    return n


def _add_model_args(p):
    p.add_argument("model", help="int8 model: .onnx (QDQ) or .tflite, or a zoo name such as mbv2-0.35-96")
    p.add_argument("--board", default=None, choices=sorted(BOARDS), help="target board")
    p.add_argument("--fuse", type=_fuse_arg, default="none", help="none | auto | N (fuse the first N blocks)")
    p.add_argument("--ram-budget", default=None, help="fail if the arena exceeds this (e.g. 524288, 512K)")
    p.add_argument("--latency-budget", type=float, default=None,
                   help="with --fuse auto: max estimated fused/unfused instruction ratio (e.g. 1.05)")
    p.add_argument("--fuse-objective", default="arena", choices=["arena", "arena_without_input"],
                   help="with --fuse auto: minimise the whole arena (default) or the arena without the input")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _resolve_model(text: str):
    """A path, or a name from the model zoo (built deterministically, cached)."""
    import os

    if os.path.exists(text):
        return text, None
    from . import models

    if text in models.ZOO:
        return models.get(text), text
    raise TvmFusedError(f"{text}: no such file, and not a zoo model (zoo: {', '.join(models.zoo_names())})")


def cmd_compile(args) -> int:
    from . import compile as compile_model

    model, name = _resolve_model(args.model)
    cm = compile_model(model, board=args.board or "host", fuse=args.fuse, ram_budget=args.ram_budget,
                       name=name, progress=not args.quiet, latency_budget=args.latency_budget,
                       fuse_objective=args.fuse_objective)
    out = cm.export(args.output)
    r = cm.report
    print(f"{r['model']}: {len(r['ops'])} ops, {r['macs']:,} MACs")
    print(f"  arena_bytes            {r['arena_bytes']:>12,}")
    print(f"  layerwise_lower_bound  {r['layerwise_lower_bound']:>12,}  (arena / bound = {r['arena_over_lower_bound']})")
    print(f"  weights_bytes          {r['weights_bytes']:>12,}")
    print(f"  flash_bytes_estimate   {r['flash_bytes_estimate']:>12,}")
    print(f"  compile_seconds        {r['compile_seconds']:>12}")
    print(f"wrote {out}/model (C library), {out}/report.json")
    return 0


def cmd_plan(args) -> int:
    from . import compile as compile_model
    from . import plan

    if args.max_resolution:
        return _max_resolution(args)
    model, name = _resolve_model(args.model)
    unfused = compile_model(model, board=args.board or "host", name=name, codegen=False, progress=not args.quiet)
    print(plan.memory_table(unfused))
    result = {"unfused": unfused.report}
    fused = None
    if args.fuse != "none":
        fused = compile_model(model, board=args.board or "host", fuse=args.fuse, name=name, codegen=False,
                              progress=not args.quiet, latency_budget=args.latency_budget,
                       fuse_objective=args.fuse_objective)
        print()
        print(plan.memory_table(fused))
        ratio = fused.report["arena_bytes"] / unfused.report["arena_bytes"]
        print(f"\narena: unfused {unfused.report['arena_bytes']:,} B -> fused {fused.report['arena_bytes']:,} B "
              f"({ratio:.3f}x)")
        result["fused"] = fused.report
    if args.plot:
        plan.plot(unfused, fused or unfused, args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        plan.dump(result, args.json)
        print(f"wrote {args.json}")
    return 0


def _max_resolution(args) -> int:
    from . import models, plan

    if args.ram_budget is None:
        raise TvmFusedError("--max-resolution needs --ram-budget (e.g. 512K for a NUCLEO-F767ZI)")
    if args.model not in models.ZOO:
        raise TvmFusedError("--max-resolution varies the input size of a zoo model: give a zoo name "
                            f"({', '.join(models.zoo_names())})")
    kwargs = dict(models.ZOO[args.model])
    kwargs.pop("resolution", None)
    print(f"largest square input (multiple of 32) that fits {args.ram_budget} "
          f"(arena + {plan.FIRMWARE_STACK_BYTES:,} B stack + {plan.FIRMWARE_RUNTIME_BYTES:,} B runtime data):")
    results = {}
    for fuse in (["none", args.fuse] if args.fuse != "none" else ["none", "auto"]):
        results[str(fuse)] = plan.max_resolution(kwargs, args.ram_budget, fuse)
    for fuse, r in results.items():
        print(f"  fuse={fuse}: {r['max_resolution']} px" if r["max_resolution"] else
              f"  fuse={fuse}: nothing fits")
    if args.json:
        plan.dump(results, args.json)
        print(f"wrote {args.json}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tvm-fused", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a model to a plain-C library + report.json")
    _add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("plan", help="per-op memory table, unfused vs fused; live-bytes plot; max resolution")
    _add_model_args(p)
    p.add_argument("--plot", default=None, help="write a PNG of live bytes over the execution order")
    p.add_argument("--json", default=None, help="write the reports (or the sweep) as JSON")
    p.add_argument("--max-resolution", action="store_true",
                   help="find the largest square input (multiple of 32) that fits --ram-budget, unfused vs fused")
    p.set_defaults(func=cmd_plan)

    try:
        from .micro import cli as micro_cli
    except ImportError:
        micro_cli = None
    if micro_cli is not None:
        micro_cli.add_commands(sub, _add_model_args, _resolve_model)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TvmFusedError as exc:
        print(f"tvm-fused: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tvm-fused: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
