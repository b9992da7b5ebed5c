"""``tvm-fused tune``: measure kernel configs on a device and write a tuning log (docs/tuning.md)."""
from __future__ import annotations

import argparse
import sys

from ..errors import UsageError


def _positive(what):
    def parse(text):
        try:
            n = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{what} '{text}' is not a whole number") from e
        if n < 1:
            raise argparse.ArgumentTypeError(f"{what} must be >= 1, got {n}")
        return n
    parse.__name__ = what
    return parse


def _host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--tracker '{text}': give HOST:PORT, e.g. 127.0.0.1:9190")
    return host, int(port)


def add_commands(add_parser, resolve_model) -> None:
    from ..micro.project import BOARDS

    p = add_parser("tune", help="measure kernel schedules on a device, fit an XGBoost cost model, write a tuning log")
    p.add_argument("model", help="int8 model: .onnx (QDQ) or .tflite, or a zoo name")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="device to measure on")
    p.add_argument("--trials", type=_positive("--trials"), required=True,
                   help="total measured configs in the log (earlier runs' records count: a rerun resumes)")
    p.add_argument("-o", "--output", required=True, help="tuning log (JSON); an existing log is resumed")
    p.add_argument("--parallel", type=_positive("--parallel"), default=1,
                   help="QEMU instances (or tracker servers) measuring at once")
    p.add_argument("--tracker", type=_host_port, default=None, help="TVM RPC tracker HOST:PORT to measure through")
    p.add_argument("--key", default=None, help="with --tracker: device key of the rpc-servers to use")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=lambda args: cmd_tune(args, resolve_model))

    p = add_parser("rpc-server", help="serve a board (or a QEMU) to `tune --tracker` through a TVM RPC tracker")
    p.add_argument("--tracker", type=_host_port, required=True, help="TVM RPC tracker HOST:PORT")
    p.add_argument("--key", required=True, help="device key to register under (e.g. the board name)")
    p.add_argument("--board", default="qemu-mps2-an500", choices=sorted(BOARDS))
    p.add_argument("--port", default=None, help="serial port of a flashed board (default: a QEMU per request)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.set_defaults(func=cmd_rpc_server)


def cmd_tune(args, resolve_model) -> int:
    from .. import validate
    from .database import Database
    from .tuner import tune

    validate.output_file(args.output, "-o/--output tuning log")
    if args.tracker and not args.key:
        raise UsageError("--tracker needs --key (the key the rpc-servers registered with)")
    from pathlib import Path
    if Path(args.output).exists():
        Database.load(args.output)  # a clear error before any work if it is not a log
    model, _name = resolve_model(args.model)
    remote = None
    if args.tracker:
        from .rpc import TrackerRunner

        remote = TrackerRunner(args.tracker, args.key)
    tune(model, args.board, args.trials, args.output, parallel=args.parallel, remote=remote, seed=args.seed,
         out=sys.stderr)
    print(f"wrote {args.output}")
    return 0


def cmd_rpc_server(args) -> int:
    from .rpc import serve

    serve(args.tracker, args.key, args.board, args.port, args.host)
    return 0
