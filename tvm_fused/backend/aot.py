"""AOT-style C library: kernels, const weights, one static arena, ``tvmgen_default_run``.

The entry calls the kernels in execution order with pointers into the arena
(offsets from the memory plan) and into const tables, so the device needs no
TVM runtime, no allocator and no graph interpreter. Names follow microTVM's C
interface (``tvmgen_default.h``) so its users feel at home.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax, tirx

from ..passes.legalize_qdq import OP_ATTR, PARAMS_ATTR
from ..passes.memory_plan import MemoryPlan, OpRecord
from .naming import NameTable, comment_text
from ..schedules import dsp
from .plain_c import lower_to_c

PREFIX = "tvmgen_default"
# Identifiers of the public interface: no layer may take them.
_PUBLIC_NAMES = {"arena", "arena_size", "input_ptr", "output_ptr", "run", "inputs", "outputs", "input_ptr_at",
                 "output_ptr_at", "input_sizes", "output_sizes", "io_in_arena", "read_input_rows"}
_CTYPE = {"int8": "int8_t", "int32": "int32_t", "uint8": "uint8_t", "int16": "int16_t",
          "float64": "double"}


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
        from ..attrs import kernel_params

        try:  # typed KernelParams (pipeline) or a JSON string
            params = kernel_params(attrs[PARAMS_ATTR])
            replaced = list(params["replaced"] if isinstance(params, dict) else params.replaced)
        except (KeyError, AttributeError, ValueError, TypeError):
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
                constants.append(_Constant(names.fresh(f"{call.layer}_{param}"), arg.value.numpy(),
                                           f"{call.label}: {param}"))
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
        cname = f"{PREFIX}_{first.layer if len(its_calls) == 1 else names.fresh(_shape_signature(first.op, plan))}"
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

    ins = _io_tensors(io["inputs"], plan.input_names, plan)
    outs = _io_tensors(io["outputs"], plan.output_names or [plan.output_name], plan)
    P = PREFIX.upper()
    streamed = getattr(plan, "streamed_input", False)
    if streamed:  # the input never enters the arena: the first fused chain pulls its rows
        ins[0]["size"] = int(np.prod(ins[0]["entry"]["shape"]))
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
        f"const uint32_t {PREFIX}_input_sizes[{P}_NUM_INPUTS] = {{{', '.join(str(t['size']) for t in ins)}}};",
        f"const uint32_t {PREFIX}_output_sizes[{P}_NUM_OUTPUTS] = {{{', '.join(str(t['size']) for t in outs)}}};",
        f"static const uint32_t input_offsets[{P}_NUM_INPUTS] = {{{', '.join(str(t['offset']) for t in ins)}}};",
        f"static const uint32_t output_offsets[{P}_NUM_OUTPUTS] = {{{', '.join(str(t['offset']) for t in outs)}}};",
        "",
        f"void* {PREFIX}_input_ptr_at(uint32_t index) {{",
        f"  return index < {P}_NUM_INPUTS ? (void*)({PREFIX}_arena + input_offsets[index]) : (void*)0;"
        if not streamed else "  (void)index; (void)input_offsets; return (void*)0; /* streamed: no input in the arena */",
        "}",
        f"void* {PREFIX}_output_ptr_at(uint32_t index) {{",
        f"  return index < {P}_NUM_OUTPUTS ? (void*)({PREFIX}_arena + output_offsets[index]) : (void*)0;",
        "}",
        f"void* {PREFIX}_input_ptr(void) {{ return {PREFIX}_input_ptr_at(0); }}",
        f"void* {PREFIX}_output_ptr(void) {{ return {PREFIX}_output_ptr_at(0); }}",
        "",
        f"void {PREFIX}_io_in_arena(struct {PREFIX}_inputs* inputs, struct {PREFIX}_outputs* outputs) {{",
        *([f"  inputs->{t['member']} = {PREFIX}_arena + {t['offset']};" for t in ins] if not streamed
          else [f"  inputs->{ins[0]['member']} = 0; /* streamed input: not in the arena */"]),
        *[f"  outputs->{t['member']} = {PREFIX}_arena + {t['offset']};" for t in outs],
        "}",
        "",
        f"int32_t {PREFIX}_run(struct {PREFIX}_inputs* inputs, struct {PREFIX}_outputs* outputs) {{",
        f"  uint8_t* arena = {PREFIX}_arena;",
        "  if (inputs == 0 || outputs == 0) return -1;",
        *([f"  if (inputs->{t['member']} != (void*)(arena + {t['offset']})) "
           f"memmove(arena + {t['offset']}, inputs->{t['member']}, {t['size']});" for t in ins] if not streamed
          else [f"  /* streamed input: rows arrive through {PREFIX}_read_input_rows() */"]),
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
        in_shapes = ", ".join(_shape(plan.shapes[t]) for t in op.inputs if t is not None)
        entry.append(f"  /* {op.index}: {call.label} ({op.op}) {in_shapes} -> {_shape(plan.shapes[op.output])} */")
        entry.append(f"  {cname}({', '.join(exprs)});")
    entry += [
        *[f"  if (outputs->{t['member']} != (void*)(arena + {t['offset']})) "
          f"memmove(outputs->{t['member']}, arena + {t['offset']}, {t['size']});" for t in outs],
        "  return 0;",
        "}",
        "",
    ]

    def describe(kind, i, t):
        e = t["entry"]
        q = f"{P}_{kind}_{i}"
        return "\n".join([
            f"/* {kind.lower()} {i} '{e['name']}' (member {t['member']}): int8 {e.get('layout', '')} {e['shape']}, "
            f"real = {e['scale']!r} * (q - {e['zero_point']}) */",
            f"#define {q}_SIZE {t['size']}",
            f"#define {q}_SHAPE {{{', '.join(str(d) for d in e['shape'])}}}",
            f"#define {q}_NDIM {len(e['shape'])}",
            f"#define {q}_SCALE {e['scale']!r}f",
            f"#define {q}_ZERO_POINT {e['zero_point']}",
        ])

    single = []  # the unindexed names of single-input/-output models, as before
    for kind, tensors in (("INPUT", ins), ("OUTPUT", outs)):
        if len(tensors) == 1:
            single += [f"#define {P}_{kind}_{f} {P}_{kind}_0_{f}" for f in ("SHAPE", "NDIM", "SCALE", "ZERO_POINT")]
    header = f"""/* Generated by tvm-fused. Plain C99: compile every file in src/ with -Iinclude, no TVM runtime needed. */
#ifndef {P}_H_
#define {P}_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {{
#endif

/* Static activation arena, model inputs and outputs included. */
#define {P}_ARENA_SIZE {plan.arena_bytes}
#define {P}_NUM_INPUTS {len(ins)}
#define {P}_NUM_OUTPUTS {len(outs)}
/* Bytes of all inputs / all outputs together (concatenated in order, as the RPC and host harness send them). */
#define {P}_INPUT_SIZE {sum(t['size'] for t in ins)}
#define {P}_OUTPUT_SIZE {sum(t['size'] for t in outs)}
{chr(10).join(describe("INPUT", i, t) for i, t in enumerate(ins))}
{chr(10).join(describe("OUTPUT", i, t) for i, t in enumerate(outs))}
{chr(10).join(single)}

/* One member per model input / output, in order (named after the tensors, as microTVM does). */
struct {PREFIX}_inputs {{ {' '.join(f"void* {t['member']};" for t in ins)} }};
struct {PREFIX}_outputs {{ {' '.join(f"void* {t['member']};" for t in outs)} }};

extern uint8_t {PREFIX}_arena[{P}_ARENA_SIZE];
extern const uint32_t {PREFIX}_input_sizes[{P}_NUM_INPUTS];
extern const uint32_t {PREFIX}_output_sizes[{P}_NUM_OUTPUTS];

/* Where the input/output tensors live inside the arena (write an input there to skip a copy);
   index out of range gives 0. The unindexed forms are tensor 0. */
void* {PREFIX}_input_ptr_at(uint32_t index);
void* {PREFIX}_output_ptr_at(uint32_t index);
void* {PREFIX}_input_ptr(void);
void* {PREFIX}_output_ptr(void);
/* Points every member at its tensor's place in the arena: run() then copies nothing. */
void {PREFIX}_io_in_arena(struct {PREFIX}_inputs* inputs, struct {PREFIX}_outputs* outputs);

{_stream_header(ins[0]["entry"]) if streamed else ""}/* Copies each input into the arena (unless it already points there), runs every kernel,
   copies each output out (unless it points into the arena). Returns 0 on success. */
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
                        f"#define {P}_ARENA_{name.upper()}_SIZE {info['arena_bytes']}\n"
                        f"extern uint8_t {PREFIX}_arena_{name}[{P}_ARENA_{name.upper()}_SIZE];\n"
                        for name, info in extra_banks)
        anchor = f"extern uint8_t {PREFIX}_arena[{P}_ARENA_SIZE];\n"
        assert anchor in header
        header = header.replace(anchor, anchor + decls)
        arena += "".join(f'__attribute__((section("{info["section"]}"), aligned(16))) uint8_t '
                         f"{PREFIX}_arena_{name}[{P}_ARENA_{name.upper()}_SIZE];\n"
                         for name, info in extra_banks)
    files = {
        f"include/{PREFIX}.h": header,
        f"src/{PREFIX}.c": "\n".join(entry),
        "src/kernels.c": "\n".join(kernel_src),
        "src/weights.c": "\n".join(weights),
        "src/arena.c": arena,
    }
    if any(dsp.uses_header(text) for text in definitions.values()):
        files[f"include/{dsp.HEADER_NAME}"] = dsp.HEADER
    return CLibrary(files, weights_bytes, len(kernels))


def _shape_signature(op: OpRecord, plan: MemoryPlan) -> str:
    """``depthwise_conv2d_12x12x96_to_12x12x96``: op and shapes (batch 1 dropped), for a shared kernel."""
    def dims(tensor):
        shape = [int(d) for d in plan.shapes[tensor]]
        return "x".join(str(d) for d in (shape[1:] if len(shape) > 1 and shape[0] == 1 else shape))

    ins = "_".join(dims(t) for t in op.inputs if t is not None)
    return f"{op.op}_{ins}_to_{dims(op.output)}"


def c_member_names(names) -> list[str]:
    """C identifiers for tensor names (``serving_default_x:0`` -> ``serving_default_x_0``), unique."""
    out = []
    for name in names:
        ident = re.sub(r"[^0-9A-Za-z_]", "_", name) or "tensor"
        if ident[0].isdigit():
            ident = "t_" + ident
        base, k = ident, 1
        while ident in out:
            ident, k = f"{base}_{k}", k + 1
        out.append(ident)
    return out


def _io_tensors(entries, buffer_names, plan) -> list[dict]:
    if len(entries) != len(buffer_names):
        raise ValueError(f"io.json lists {len(entries)} tensors, the memory plan {len(buffer_names)}")
    members = c_member_names(e["name"] for e in entries)
    return [{"entry": e, "member": m, "offset": plan.buffers[b].offset, "size": plan.buffers[b].size}
            for e, m, b in zip(entries, members, buffer_names)]


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
