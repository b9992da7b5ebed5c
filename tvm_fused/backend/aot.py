"""AOT-style C library: kernels, const weights, one static arena, ``tvmgen_default_run``.

The entry calls the kernels in execution order with pointers into the arena
(offsets from the memory plan) and into const tables, so the device needs no
TVM runtime, no allocator and no graph interpreter. Names follow microTVM's C
interface (``tvmgen_default.h``) so its users feel at home.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax, tirx

from ..passes.legalize_qdq import OP_ATTR, PARAMS_ATTR
from ..passes.memory_plan import MemoryPlan, OpRecord
from .naming import NameTable, comment_text
from .plain_c import lower_to_c

PREFIX = "tvmgen_default"
# Identifiers of the public interface: no layer may take them.
_PUBLIC_NAMES = {"arena", "arena_size", "input_ptr", "output_ptr", "run", "inputs", "outputs", "read_input_rows"}
_CTYPE = {"int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t", "int16": "int16_t"}


def _c_array(values: np.ndarray, per_line: int = 24) -> str:
    flat = values.reshape(-1).tolist()
    rows = [", ".join(str(v) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "  " + ",\n  ".join(rows)


def _shape(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class CLibrary:
    """Generated sources of one compiled model (file name -> text), plus size facts."""

    def __init__(self, files: dict[str, str], weights_bytes: int, kernel_count: int):
        self.files = files
        self.weights_bytes = weights_bytes
        self.kernel_count = kernel_count


@dataclass
class _Call:
    """One kernel call of the entry function, named after its layer."""

    layer: str  # C identifier of the layer (unique per call)
    label: str  # the layer name as the model gives it, for comments
    op: OpRecord
    args: list  # ("arena", tensor name) | ("const", constant index)
    fused: list = field(default_factory=list)  # layers a fused chain replaced
    kernel: str = ""  # C name of the kernel it calls


@dataclass
class _Constant:
    name: str
    values: np.ndarray
    what: str  # "<layer>: <parameter>", for the comment


def _layer_label(binding, kernel) -> tuple[str, list]:
    """The layer a call computes: its binding's name; a fused chain names its first and last layer."""
    attrs = kernel.attrs or {}
    if OP_ATTR in attrs and str(attrs[OP_ATTR]) == "fused_chain":
        try:
            replaced = list(json.loads(str(attrs[PARAMS_ATTR]))["replaced"])
        except (KeyError, ValueError, TypeError):
            replaced = []
        if replaced:
            return f"fused_{replaced[0]}_to_{replaced[-1]}", replaced
    return binding.var.name, []


_STREAM_PROTO = f"int32_t {PREFIX}_read_input_rows(int8_t* rows, int32_t first_row, int32_t n_rows);"


def _stream_header(inp) -> str:
    h, w, c = inp["shape"][1:]
    return f"""/* Streamed input (compiled with stream_input=True): the model never holds the frame.
   {PREFIX}_run() calls {PREFIX}_read_input_rows() whenever it needs the next rows;
   the application copies rows first_row .. first_row + n_rows - 1 of the int8 NHWC frame
   ({PREFIX.upper()}_INPUT_ROW_BYTES bytes each, in order, each row once) into `rows`
   (a buffer inside the arena) and returns 0. {PREFIX}_input_ptr() is NULL; inputs->input is unused. */
#define {PREFIX.upper()}_STREAM_INPUT 1
#define {PREFIX.upper()}_INPUT_ROWS {h}
#define {PREFIX.upper()}_INPUT_ROW_BYTES {w * c}
{_STREAM_PROTO}

"""


def generate_c(mod: tvm.IRModule, plan: MemoryPlan, io: dict) -> CLibrary:
    """Emit ``include/tvmgen_default.h`` and ``src/{tvmgen_default,kernels,weights,arena}.c``.

    Every name in the output comes from the model (layer names) or from the order of
    the calls, so the same model always gives the same bytes.
    """
    func = mod["main"]
    bindings = [b for block in func.body.blocks for b in block.bindings if isinstance(b.value, relax.Call)]
    names = NameTable(reserved=_PUBLIC_NAMES)
    calls: list[_Call] = []
    constants: list[_Constant] = []
    users: dict[str, list[_Call]] = {}  # kernel GlobalVar name -> its calls, in execution order
    gvs: dict[str, tvm.ir.GlobalVar] = {}
    for op, binding in zip(plan.ops, bindings):
        gv = binding.value.args[0]
        label, fused = _layer_label(binding, mod[gv])
        call = _Call(names.fresh(label), comment_text(label), op, [], [comment_text(f) for f in fused])
        params = mod[gv].params
        for i, (arg, tensor) in enumerate(zip(binding.value.args[1].fields, op.inputs)):
            if tensor is not None:
                call.args.append(("arena", tensor))
            else:
                call.args.append(("const", len(constants)))
                param = params[i].name if i < len(params) else f"arg{i}"
                constants.append(_Constant("", arg.value.numpy(), f"{call.label}: {param}"))
                constants[-1].name = names.fresh(f"{call.layer}_{param}")
        call.args.append(("arena", op.output))
        if op.scratch:
            call.args.append(("arena", op.scratch))
        calls.append(call)
        users.setdefault(gv.name_hint, []).append(call)
        gvs[gv.name_hint] = gv

    # A kernel used by one layer is named after it; one shared by several layers (same
    # shapes and constants folded into the code, tables passed as arguments) after its
    # op and shapes, with the layers listed in its comment.
    kernels: dict[str, tirx.PrimFunc] = {}
    n_inputs: dict[str, int] = {}
    comments: dict[str, str] = {}
    for gv_name, its_calls in users.items():
        first = its_calls[0]
        if len(its_calls) == 1:
            cname = f"{PREFIX}_{first.layer}"
        else:
            op = first.op
            ins = [plan.shapes[t] for t in op.inputs if t is not None]
            sig = "_".join("x".join(str(d) for d in _drop_batch(s)) for s in ins)
            cname = f"{PREFIX}_{names.fresh(f'{op.op}_{sig}_to_' + 'x'.join(str(d) for d in _drop_batch(plan.shapes[op.output])))}"
        kernels[cname] = mod[gvs[gv_name]]
        n_inputs[cname] = len(first.op.inputs)
        comments[cname] = _kernel_comment(its_calls, plan)
        for c in its_calls:
            c.kernel = cname

    preamble, definitions = lower_to_c(kernels)
    kernel_src = ["/* Generated by tvm-fused from TVM's C codegen. Plain C99, no TVM runtime.",
                  "   Kernels in order of their first call; inputs are const, the last argument(s) the output",
                  "   (and a fused chain's scratch). */",
                  "#include <stdint.h>", "#include <stdbool.h>", "#include <math.h>"]
    kernel_src += [ln for ln in preamble if ln not in kernel_src]
    prototypes = []
    for cname, kernel in kernels.items():
        proto = _prototype(cname, kernel, n_inputs[cname])
        prototypes.append(proto + ";")
        body = definitions[cname]
        body = proto + " {" + body[body.index("\n"):]  # TVM's signature line -> ours (const inputs)
        if kernel.attrs and '"stream_input"' in str(kernel.attrs.get(PARAMS_ATTR, "")):
            body = body.replace(" {", " {\n  (void)x; /* streamed: rows come from the callback */", 1)
        kernel_src += ["", comments[cname], body.rstrip("\n")]
    kernel_src.append("")

    weights = ["/* Weights and requantization tables: const, so the linker puts them in flash. */",
               "#include <stdint.h>", ""]
    externs = []
    weights_bytes = 0
    for const in constants:
        values = const.values
        ctype = _CTYPE[str(values.dtype)]
        decl = f"const {ctype} {PREFIX}_{const.name}[{values.size}]"
        weights.append(f"/* {const.what}, {values.dtype} {_shape(values.shape)} */")
        weights.append(f"{decl} __attribute__((aligned(4))) = {{\n{_c_array(values)}\n}};\n")
        externs.append(f"extern {decl};")
        weights_bytes += values.nbytes

    inp = io["inputs"][0]
    out = io["outputs"][0]
    in_name, out_name = plan.input_names[0], plan.output_name
    in_off, out_off = plan.buffers[in_name].offset, plan.buffers[out_name].offset
    in_size, out_size = plan.buffers[in_name].size, plan.buffers[out_name].size
    streamed = getattr(plan, "streamed_input", False)
    if streamed:  # the input never enters the arena: the first fused chain pulls its rows
        in_size = int(np.prod(inp["shape"]))
        kernel_src.insert(kernel_src.index("#include <math.h>") + 1, _STREAM_PROTO)

    entry = [
        f"/* AOT entry generated by tvm-fused: {len(calls)} kernel calls, arena {plan.arena_bytes} bytes. */",
        f'#include "{PREFIX}.h"',
        "#include <string.h>",
        "",
        *prototypes,
        "",
        *externs,
        "",
        f"void* {PREFIX}_input_ptr(void) {{ return {'0' if streamed else f'{PREFIX}_arena + {in_off}'}; }}",
        f"void* {PREFIX}_output_ptr(void) {{ return {PREFIX}_arena + {out_off}; }}",
        "",
        f"int32_t {PREFIX}_run(struct {PREFIX}_inputs* inputs, struct {PREFIX}_outputs* outputs) {{",
        f"  uint8_t* arena = {PREFIX}_arena;",
        "  if (inputs == 0 || outputs == 0) return -1;",
        f"  if (inputs->input != (void*)(arena + {in_off})) memmove(arena + {in_off}, inputs->input, {in_size});"
        if not streamed else "  /* streamed input: rows arrive through tvmgen_default_read_input_rows() */",
    ]
    for call in calls:
        cname = call.kernel
        params = kernels[cname].params
        exprs = []
        for (kind, ref), param in zip(call.args, params):
            if kind == "arena":
                bank = plan.buffers[ref].bank
                base = f"{PREFIX}_arena_{bank}" if bank else "arena"
                exprs.append(f"({_CTYPE[str(param.dtype)]}*)({base} + {plan.buffers[ref].offset})")
            else:
                exprs.append(f"{PREFIX}_{constants[ref].name}")
        op = call.op
        ins = ", ".join(_shape(plan.shapes[t]) for t in op.inputs if t is not None)
        entry.append(f"  /* {op.index}: {call.label} ({op.op}) {ins} -> {_shape(plan.shapes[op.output])} */")
        entry.append(f"  {cname}({', '.join(exprs)});")
    entry += [
        f"  if (outputs->output != (void*)(arena + {out_off})) memmove(outputs->output, arena + {out_off}, {out_size});",
        "  return 0;",
        "}",
        "",
    ]

    header = f"""/* Generated by tvm-fused. Plain C99: compile every file in src/ with -Iinclude, no TVM runtime needed. */
#ifndef {PREFIX.upper()}_H_
#define {PREFIX.upper()}_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {{
#endif

/* Static activation arena, model input and output included. */
#define {PREFIX.upper()}_ARENA_SIZE {plan.arena_bytes}
#define {PREFIX.upper()}_INPUT_SIZE {in_size}
#define {PREFIX.upper()}_OUTPUT_SIZE {out_size}
/* Input {inp['name']}: int8 {inp['layout']} {inp['shape']}, real = {inp['scale']!r} * (q - {inp['zero_point']}) */
#define {PREFIX.upper()}_INPUT_SHAPE {{{', '.join(str(d) for d in inp['shape'])}}}
#define {PREFIX.upper()}_INPUT_NDIM {len(inp['shape'])}
#define {PREFIX.upper()}_INPUT_SCALE {inp['scale']!r}f
#define {PREFIX.upper()}_INPUT_ZERO_POINT {inp['zero_point']}
/* Output: int8 {out['shape']}, real = {out['scale']!r} * (q - {out['zero_point']}) */
#define {PREFIX.upper()}_OUTPUT_SHAPE {{{', '.join(str(d) for d in out['shape'])}}}
#define {PREFIX.upper()}_OUTPUT_NDIM {len(out['shape'])}
#define {PREFIX.upper()}_OUTPUT_SCALE {out['scale']!r}f
#define {PREFIX.upper()}_OUTPUT_ZERO_POINT {out['zero_point']}

struct {PREFIX}_inputs {{ void* input; }};
struct {PREFIX}_outputs {{ void* output; }};

extern uint8_t {PREFIX}_arena[{PREFIX.upper()}_ARENA_SIZE];

/* Where the input/output tensors live inside the arena (write the input there to skip a copy). */
void* {PREFIX}_input_ptr(void);
void* {PREFIX}_output_ptr(void);

{_stream_header(inp) if streamed else ""}/* Copies the input into the arena (unless it already points there), runs every kernel,
   copies the output out (unless it points into the arena). Returns 0 on success. */
int32_t {PREFIX}_run(struct {PREFIX}_inputs* inputs, struct {PREFIX}_outputs* outputs);

#ifdef __cplusplus
}}
#endif
#endif
"""
    arena = f"""/* The static arena. A firmware may define {PREFIX.upper()}_ARENA_ATTR (e.g. a section
   attribute) to place it, for instance between canary words. */
#include "{PREFIX}.h"
#ifndef {PREFIX.upper()}_ARENA_ATTR
#define {PREFIX.upper()}_ARENA_ATTR
#endif
{PREFIX.upper()}_ARENA_ATTR __attribute__((aligned(16))) uint8_t {PREFIX}_arena[{PREFIX.upper()}_ARENA_SIZE];
"""
    extra_banks = [(name, info) for name, info in getattr(plan, "banks", {}).items()
                   if any(b.bank == name for b in plan.buffers.values())]
    if extra_banks:  # activations spread over memory banks: one array per extra bank, in its section
        decls = "".join(f"/* Memory bank {name}: {info['arena_bytes']} of {info['capacity']} bytes. */\n"
                        f"#define {PREFIX.upper()}_ARENA_{name.upper()}_SIZE {info['arena_bytes']}\n"
                        f"extern uint8_t {PREFIX}_arena_{name}[{PREFIX.upper()}_ARENA_{name.upper()}_SIZE];\n"
                        for name, info in extra_banks)
        header = header.replace(f"extern uint8_t {PREFIX}_arena[{PREFIX.upper()}_ARENA_SIZE];\n",
                                f"extern uint8_t {PREFIX}_arena[{PREFIX.upper()}_ARENA_SIZE];\n" + decls)
        arena += "".join(f'__attribute__((section("{info["section"]}"), aligned(16))) uint8_t '
                         f"{PREFIX}_arena_{name}[{PREFIX.upper()}_ARENA_{name.upper()}_SIZE];\n"
                         for name, info in extra_banks)
    files = {
        f"include/{PREFIX}.h": header,
        f"src/{PREFIX}.c": "\n".join(entry),
        "src/kernels.c": "\n".join(kernel_src),
        "src/weights.c": "\n".join(weights),
        "src/arena.c": arena,
    }
    return CLibrary(files, weights_bytes, len(kernels))


def _drop_batch(shape) -> list:
    dims = [int(d) for d in shape]
    return dims[1:] if len(dims) > 1 and dims[0] == 1 else dims


def _kernel_comment(calls: list, plan: MemoryPlan) -> str:
    """``/* layer: op, input shapes -> output shape, MACs */`` for the kernel's definition."""
    op = calls[0].op
    ins = ", ".join(_shape(plan.shapes[t]) for t in op.inputs if t is not None)
    lines = [f"/* {op.op}: {ins} -> {_shape(plan.shapes[op.output])}, {op.macs:,} MACs per call"]
    if op.scratch:
        lines.append(f"   scratch (ring buffers): {plan.buffers[op.scratch].size} bytes")
    for c in calls:
        lines.append(f"   layer {c.label}" + (f" (fuses {', '.join(c.fused)})" if c.fused else ""))
    lines[-1] += " */"
    return "\n".join(lines)


def _prototype(name: str, func: tirx.PrimFunc, n_inputs: int) -> str:
    """``void name(const int8_t* data, ..., int8_t* out)``: inputs are read-only."""
    params = []
    for i, p in enumerate(func.params):
        const = "const " if i < n_inputs else ""
        params.append(f"{const}{_CTYPE[str(p.dtype)]}* {p.name}")
    return f"void {name}({', '.join(params)})"
