"""`tvm-fused run`: compile (or take an export dir), build the firmware, run it on
QEMU or a board, and write report.json with the device measurements added.
Also registers `tvm-fused demo` (tvm_fused/demo.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import TvmFusedError


def add_commands(sub, add_model_args, resolve_model) -> None:
    p = sub.add_parser("run", help="build the firmware and run the model on QEMU or a board")
    add_model_args(p)
    p.add_argument("--port", default=None, help="serial port of a flashed board (default: QEMU)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--project-dir", default=None, help="keep the firmware project here")
    p.add_argument("--input", default=None,
                   help="input tensor (.npy): int8 of the model's input shape (NHWC), or float32 of "
                        "that shape, quantized with the input's scale/zero point (default: seeded random); "
                        "several inputs: a .npz with one array per input name")
    p.add_argument("--output", default=None,
                   help="save the device's outputs (int8): OUT.npz holds all by name; OUT.npy the one output, "
                        "or one OUT_<name>.npy per output")
    p.add_argument("--json", default=None, help="write report.json (with device figures) here")
    p.set_defaults(func=lambda args: cmd_run(args, resolve_model))

    from ..demo import add_parser as add_demo_parser

    add_demo_parser(sub, resolve_model)


def cmd_run(args, resolve_model) -> int:
    from . import Session, build_project, generate_project

    board = args.board or "qemu-mps2-an500"
    if board == "host":
        raise TvmFusedError("tvm-fused run needs a device board (qemu-mps2-an500, nucleo-f767zi, nucleo-h743zi)")
    path = Path(args.model)
    compiled = None
    if path.is_dir() and (path / "model" / "include" / "tvmgen_default.h").is_file():
        source = path  # an export dir: no reference to compare against
    else:
        from .. import compile as compile_model

        model, name = resolve_model(args.model)
        compiled = compile_model(model, board=board, fuse=args.fuse, ram_budget=args.ram_budget, name=name,
                                 progress=not args.quiet, latency_budget=args.latency_budget,
                                 fuse_objective=args.fuse_objective)
        source = compiled
    project = generate_project(source, board=board, project_dir=args.project_dir,
                               ram_budget=_budget(args.ram_budget))
    build_project(project)
    report = json.loads((project / "report.json").read_text()) if (project / "report.json").is_file() else {}
    io = report.get("io") or {}
    with Session(project, board=board, port=args.port) as s:
        info = s.info()
        specs = io.get("inputs") or [{"name": "input", "shape": info["input_shape"]}]
        xs = _load_inputs(args.input, specs) if args.input else \
            [np.random.default_rng(i).integers(-128, 128, size=spec["shape"], dtype=np.int8)
             for i, spec in enumerate(specs)]
        s.set_input(xs, progress=None if args.quiet else _progress)
        m = s.measure(repeat=args.repeat)
        ys = s.get_outputs()
    report.update({k: m[k] for k in ("stack_bytes", "peak_ram_bytes", "flash_bytes") if k in m})
    report[s.count_name] = m[s.count_name]
    if compiled:
        ref = compiled.reference(*xs)
        ref = ref if isinstance(ref, list) else [ref]
        report["output_matches_reference"] = len(ref) == len(ys) and all(
            np.array_equal(np.asarray(r).reshape(-1), y.reshape(-1)) for r, y in zip(ref, ys))
    else:
        report["output_matches_reference"] = None
    report["canaries_ok"] = m["canaries_ok"]
    for k in ("arena_bytes", "stack_bytes", "peak_ram_bytes", "flash_bytes", s.count_name):
        print(f"  {k:<24} {report.get(k, m.get(k)):>12,}")
    print(f"  output_matches_reference {report['output_matches_reference']}")
    if args.output:
        for written in save_outputs(args.output, ys, io.get("outputs")):
            print(f"wrote {written}")
    out = Path(args.json) if args.json else project / "report.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if report["output_matches_reference"] in (True, None) else 1


def save_outputs(path, outputs, specs=None) -> list[Path]:
    """``--output``: ``x.npz`` holds every output by name; ``x.npy`` the one output, or for a model
    with several outputs one file per output, ``x_<name>.npy`` (names as the C struct members)."""
    from ..backend.aot import c_member_names

    path = Path(path)
    specs = specs if specs and len(specs) == len(outputs) else \
        [{"name": f"output_{i}", "shape": list(y.shape)} for i, y in enumerate(outputs)]
    arrays = [np.asarray(y).reshape(spec["shape"]) for y, spec in zip(outputs, specs)]
    names = c_member_names(spec["name"] for spec in specs)
    if path.suffix == ".npz":
        np.savez(path, **dict(zip(names, arrays)))
        return [path]
    if len(arrays) == 1:
        np.save(path, arrays[0])
        return [path if path.suffix == ".npy" else path.with_name(path.name + ".npy")]
    written = []
    for name, a in zip(names, arrays):
        target = path.with_name(f"{path.stem}_{name}.npy")
        np.save(target, a)
        written.append(target)
    return written


def _load_inputs(path, specs) -> list[np.ndarray]:
    """``--input``: a .npy for a single-input model, or a .npz with one array per input (by input
    name, or arr_0, arr_1, ... in input order)."""
    if str(path).endswith(".npz"):
        try:
            archive = np.load(path)
        except (OSError, ValueError) as exc:
            raise TvmFusedError(f"--input {path}: cannot read a .npz archive ({exc})") from None
        from ..backend.aot import c_member_names

        xs = []
        for i, (spec, member) in enumerate(zip(specs, c_member_names(s["name"] for s in specs))):
            key = next((k for k in (spec["name"], member, f"arr_{i}") if k in archive.files), None)
            if key is None:
                raise TvmFusedError(f"--input {path}: no array for input '{spec['name']}' "
                                    f"(keys {archive.files}; use the input name or arr_{i})")
            xs.append(_as_int8(archive[key], spec, f"{path}[{key}]"))
        return xs
    if len(specs) != 1:
        raise TvmFusedError(f"--input {path}: the model has {len(specs)} inputs "
                            f"({', '.join(s['name'] for s in specs)}); give a .npz with one array per input")
    try:
        x = np.load(path)
    except (OSError, ValueError) as exc:
        raise TvmFusedError(f"--input {path}: cannot read a .npy array ({exc})") from None
    return [_as_int8(x, specs[0], path)]


def _as_int8(x, spec, where):
    """An int8 tensor of the input's shape, from int8 or from float32 quantized as TFLite's QUANTIZE
    does (float32 division, round half away from zero, zero point, clamp)."""
    shape = spec["shape"]
    if int(np.prod(x.shape)) != int(np.prod(shape)):
        raise TvmFusedError(f"--input {where}: shape {list(x.shape)} does not match the model input {list(shape)} "
                            "(int8 NHWC, or float32 NHWC to be quantized)")
    if x.dtype == np.int8:
        return x.reshape(shape)
    if x.dtype.kind != "f" or "scale" not in spec:
        raise TvmFusedError(f"--input {where}: dtype {x.dtype}; give int8, or float32 with a compiled model")
    real = np.asarray(x, np.float32) / np.float32(spec["scale"])
    rounded = np.sign(real).astype(np.float64) * np.floor(np.abs(real).astype(np.float64) + 0.5) + spec["zero_point"]
    return np.clip(rounded, -128, 127).astype(np.int8).reshape(shape)


def _budget(text):
    if text is None:
        return None
    from ..boards import parse_bytes

    return parse_bytes(text)


def _progress(done, total):
    end = "\n" if done >= total else "\r"
    print(f"  uploading input {done}/{total} bytes", end=end, flush=True)
