"""The ``tvm-fused`` command line: compile, plan, run, demo.

Every failure a user can cause ends in one ``tvm-fused: error: ...`` line naming the
cause and the fix, exit status 2; Ctrl-C ends with ``tvm-fused: interrupted``, 130
(SIGTERM: ``terminated``, 143), at any stage. ``--debug`` or ``TVM_FUSED_DEBUG=1``
adds the Python traceback. Options are checked before any work starts.

Imports flow one way: this module registers the commands of micro/cli.py (run) and
demo.py (demo); neither imports this module."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import traceback
from pathlib import Path

from . import validate
from .boards import BOARDS
from .errors import UsageError, recover

PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".eps", ".ps")
EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def _arg(check):
    """An argparse type from a validate.* check (its UsageError becomes an argparse error, exit 2)."""
    def parse(text):
        try:
            return check(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from e
    parse.__name__ = check.__name__
    return parse


def _add_model_args(p):
    p.add_argument("model", help="int8 model: .onnx (QDQ) or .tflite, or a zoo name such as mbv2-0.35-96")
    p.add_argument("--board", default=None, choices=sorted(BOARDS), help="target board")
    p.add_argument("--fuse", type=_arg(validate.fuse_setting), default="none",
                   help="none | auto | N (fuse the first N blocks)")
    p.add_argument("--ram-budget", type=_arg(validate.ram_budget), default=None,
                   help="fail if the arena exceeds this (e.g. 524288, 512K)")
    p.add_argument("--latency-budget", type=_arg(validate.latency_budget), default=None,
                   help="with --fuse auto: max estimated fused/unfused instruction ratio (e.g. 1.05)")
    p.add_argument("--fuse-objective", default="arena", choices=validate.FUSE_OBJECTIVES,
                   help="with --fuse auto: minimise the whole arena (default) or the arena without the input")
    p.add_argument("--stream-input", action="store_true",
                   help="the input arrives row by row through tvmgen_default_read_input_rows(); the frame "
                        "never sits in RAM (needs --fuse auto or N)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--tuning-log", default=None,
                   help="a `tvm-fused tune` log: each kernel takes its task's best measured schedule")


def _resolve_model(text: str):
    return validate.model_source(text)


def cmd_compile(args) -> int:
    from . import compile as compile_model

    validate.output_dir(args.output, args.force, "output folder")
    model, name = _resolve_model(args.model)
    cm = compile_model(model, board=args.board or "host", fuse=args.fuse, ram_budget=args.ram_budget,
                       name=name, progress=not args.quiet, latency_budget=args.latency_budget,
                       fuse_objective=args.fuse_objective, stream_input=args.stream_input,
                       tuning_log=_tuning_log(args))
    out = cm.export(args.output, force=args.force)
    r = cm.report
    print(f"{r['model']}: {len(r['ops'])} ops, {r['macs']:,} MACs")
    print(f"  arena_bytes            {r['arena_bytes']:>12,}")
    print(f"  layerwise_lower_bound  {r['layerwise_lower_bound']:>12,}  (arena / bound = {r['arena_over_lower_bound']})")
    print(f"  weights_bytes          {r['weights_bytes']:>12,}")
    print(f"  flash_bytes_estimate   {r['flash_bytes_estimate']:>12,}")
    print(f"  compile_seconds        {r['compile_seconds']:>12}")
    print(f"wrote {out}/model (C library), {out}/report.json")
    return 0


def _tuning_log(args):
    """The --tuning-log Database (loaded now: a bad path fails before any work), or None."""
    if getattr(args, "tuning_log", None) is None:
        return None
    from .tune import Database

    return Database.load(args.tuning_log)


def cmd_plan(args) -> int:
    from . import compile as compile_model
    from . import plan
    from .output import atomic_file

    if args.plot:
        validate.output_file(args.plot, "--plot")
        if Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
            raise UsageError(f"--plot {args.plot}: the picture format comes from the file name; end it in "
                             f"{', '.join(PLOT_SUFFIXES)}")
    if args.json:
        validate.output_file(args.json, "--json")
    if args.max_resolution:
        return _max_resolution(args)
    model, name = _resolve_model(args.model)
    unfused = compile_model(model, board=args.board or "host", name=name, codegen=False, progress=not args.quiet)
    print(plan.memory_table(unfused))
    result = {"unfused": unfused.report}
    fused = streamed = None
    if args.fuse != "none":
        fused = compile_model(model, board=args.board or "host", fuse=args.fuse, name=name, codegen=False,
                              progress=not args.quiet, latency_budget=args.latency_budget,
                              fuse_objective=args.fuse_objective)
        if args.stream_input:
            streamed = compile_model(model, board=args.board or "host", fuse=args.fuse, name=name, codegen=False,
                                     progress=not args.quiet, latency_budget=args.latency_budget,
                                     stream_input=True)
        print()
        print(plan.memory_table(fused))
        ratio = fused.report["arena_bytes"] / unfused.report["arena_bytes"]
        print(f"\narena: unfused {unfused.report['arena_bytes']:,} B -> fused {fused.report['arena_bytes']:,} B "
              f"({ratio:.3f}x)")
        result["fused"] = fused.report
    if streamed is not None:
        print()
        print(plan.memory_table(streamed))
        print(f"\narena with --stream-input: {streamed.report['arena_bytes']:,} B (row buffer "
              f"{streamed.report['stream_input']['row_buffer_bytes']:,} B instead of the "
              f"{streamed.report['stream_input']['frame_bytes']:,} B frame)")
        result["fused_streamed"] = streamed.report
    if args.plot:
        with atomic_file(args.plot, "--plot") as tmp:
            plan.plot(unfused, fused or unfused, tmp, streamed)
        print(f"wrote {args.plot}")
    if args.json:
        with atomic_file(args.json, "--json") as tmp:
            plan.dump(result, tmp)
        print(f"wrote {args.json}")
    return 0


def _max_resolution(args) -> int:
    from . import models, plan
    from .output import atomic_file

    if args.ram_budget is None:
        raise UsageError("--max-resolution needs --ram-budget (e.g. 512K for a NUCLEO-F767ZI)")
    if args.model not in models.ZOO:
        raise UsageError("--max-resolution varies the input size of a zoo model: give a zoo name "
                         f"({', '.join(models.zoo_names())})")
    kwargs = dict(models.ZOO[args.model])
    kwargs.pop("resolution", None)
    print(f"largest square input (multiple of 32) that fits {args.ram_budget:,} B "
          f"(arena + {plan.FIRMWARE_STACK_BYTES:,} B stack + {plan.FIRMWARE_RUNTIME_BYTES:,} B runtime data):")
    results = {}
    for fuse in (["none", args.fuse] if args.fuse != "none" else ["none", "auto"]):
        results[str(fuse)] = plan.max_resolution(kwargs, args.ram_budget, fuse)
    if args.stream_input:
        results["auto+stream"] = plan.max_resolution(kwargs, args.ram_budget, "auto", stream_input=True)
    for fuse, r in results.items():
        print(f"  fuse={fuse}: {r['max_resolution']} px" if r["max_resolution"] else
              f"  fuse={fuse}: nothing fits")
    if args.json:
        with atomic_file(args.json, "--json") as tmp:
            plan.dump(results, tmp)
        print(f"wrote {args.json}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with a two-line error (cause, then where to look) instead of the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n  (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import demo
    from .micro import cli as micro_cli  # not optional: a broken device package must show, not hide `run`

    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of an error (also: TVM_FUSED_DEBUG=1)")
    parser = _Parser(prog="tvm-fused", description=__doc__.split("\n\n")[0], parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    def add_parser(name, **kwargs):
        return sub.add_parser(name, parents=[common], **kwargs)

    p = add_parser("compile", help="compile a model to a plain-C library + report.json")
    _add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="output folder (new, empty, or an earlier export)")
    p.add_argument("--force", action="store_true", help="write into the output folder even if tvm-fused did not write it "
                        "(only model/, io.json and report.json are replaced; other files stay)")
    p.set_defaults(func=cmd_compile)

    p = add_parser("plan", help="per-op memory table, unfused vs fused; live-bytes plot; max resolution")
    _add_model_args(p)
    p.add_argument("--plot", default=None, help="write a PNG of live bytes over the execution order")
    p.add_argument("--json", default=None, help="write the reports (or the sweep) as JSON")
    p.add_argument("--max-resolution", action="store_true",
                   help="find the largest square input (multiple of 32) that fits --ram-budget, unfused vs fused")
    p.set_defaults(func=cmd_plan)

    micro_cli.add_commands(add_parser, _add_model_args, _resolve_model)
    from .tune import cli as tune_cli

    tune_cli.add_commands(add_parser, _resolve_model)
    demo.add_parser(add_parser, _resolve_model)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so every `finally` and context manager cleans up."""


class _Signals:
    """SIGINT and SIGTERM raise in the main thread and are remembered: TVM's FFI turns an
    interrupt inside a pass into a RuntimeError, and the flag still tells us what happened."""

    def __init__(self):
        self.received = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (embedded use): leave the handlers alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # a second Ctrl-C must not cut the clean-up of the first short
            return
        self.received = signum
        raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _message(exc: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) for an exception that reached the top."""
    ours = recover(exc)  # also our error after TVM's FFI turned it into a RuntimeError
    if ours is not None:
        return EXIT_USAGE, f"tvm-fused: error: {ours}"
    if isinstance(exc, OSError):
        what = f"{exc.filename}: " if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return EXIT_USAGE, f"tvm-fused: error: {what}no space left on the device; free some space and run again"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return EXIT_USAGE, f"tvm-fused: error: {what}{exc.strerror}; choose a path you can write to"
        return EXIT_USAGE, f"tvm-fused: error: {what}{exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return EXIT_USAGE, "tvm-fused: error: out of memory; try a smaller model or input resolution"
    return EXIT_BUG, (f"tvm-fused: internal error: {type(exc).__name__}: {str(exc).strip()[:500]}\n"
                           "  this is a bug in tvm-fused; run again with --debug for the traceback and report it")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("TVM_FUSED_DEBUG", "") not in ("", "0")
    with _Signals() as signals:
        try:
            return args.func(args)
        except BaseException as exc:  # noqa: BLE001: the one place that turns every failure into a message
            if isinstance(exc, SystemExit):
                raise
            if debug:
                traceback.print_exc()
            if signals.received is not None or isinstance(exc, KeyboardInterrupt):
                terminated = signals.received == signal.SIGTERM or isinstance(exc, _Terminated)
                print("tvm-fused: terminated" if terminated else "tvm-fused: interrupted", file=sys.stderr)
                return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
            status, text = _message(exc)
            print(text, file=sys.stderr)
            return status


if __name__ == "__main__":
    sys.exit(main())
