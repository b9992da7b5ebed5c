"""TIR PrimFuncs -> plain C99 functions with raw pointer parameters.

TVM's C codegen normally wraps every kernel in the FFI calling convention
(``MakePackedAPI``) and includes TVM runtime headers. A microcontroller has no
TVM runtime, so we register our own TIR pipeline ("tvm_fused_plain_c") that stops
short of ``SplitHostDevice``/``MakePackedAPI``/``LowerTVMBuiltin``, turn buffer
parameters into plain pointers (``DeclBuffer`` keeps the buffer view), and strip
the runtime boilerplate from the emitted source.
"""
from __future__ import annotations

import re

import tvm
from tvm import s_tir, tirx
from tvm.tirx import compilation_pipeline

from ..schedules import dsp
from ..schedules.common import EXACT_BUFFERS_ATTR

PIPELINE_NAME = "tvm_fused_plain_c"
# The same lowering plus TVM's calling convention, for the host reference build:
# both builds then start from identical TIR, only the code generator differs.
HOST_PIPELINE_NAME = "tvm_fused_host"


@tvm.transform.module_pass(opt_level=0, name="TvmFusedCompactBufferAllocation")
def _compact_te_buffers(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """s_tir.CompactBufferAllocation on the TE-made kernels (it shrinks their full-size
    accumulators to one word); the hand-written ones (EXACT_BUFFERS_ATTR) are left alone."""
    compact = s_tir.transform.CompactBufferAllocation()
    funcs = {}
    for gv, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc) and not (func.attrs and func.attrs.get(EXACT_BUFFERS_ATTR)):
            func = compact(tvm.IRModule({gv: func}))[gv]
        funcs[gv] = func
    return tvm.IRModule(funcs, attrs=mod.attrs)


def _lowering_passes():
    return [
            s_tir.transform.CanonicalizeLoop(),
            s_tir.transform.LowerInitBlock(),
            s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
            s_tir.transform.ConvertBlocksToOpaque(),
            _compact_te_buffers,
            s_tir.transform.LowerMatchBuffer(),
            s_tir.transform.LowerOpaqueBlock(),
            tirx.transform.FlattenBuffer(),
            # no NarrowDataType: it trips over the requantizer's Let bindings, and TE
            # index math is int32 already
            tirx.transform.StorageRewrite(),
            tirx.transform.UnrollLoop(),
            tirx.transform.StmtSimplify(),
            tirx.transform.RemoveNoOp(),
            tirx.transform.CommonSubexprElim(),
        ]


def _plain_c_pipeline():
    @tvm.transform.module_pass(opt_level=0, name="TvmFusedPlainCLowering")
    def _lower(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.ir.transform.Sequential(_lowering_passes())(mod)

    def _finalize_host():
        return tvm.ir.transform.Sequential([tirx.transform.LowerIntrin()])

    def _finalize_device():
        return tvm.ir.transform.Sequential([])

    return _lower, _finalize_host, _finalize_device


def _host_pipeline():
    @tvm.transform.module_pass(opt_level=0, name="TvmFusedHostLowering")
    def _lower(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        passes = _lowering_passes() + [
            tirx.transform.VerifyMemory(),
            tirx.transform.AnnotateEntryFunc(),
            tirx.transform.SplitHostDevice(),
            tirx.transform.MakePackedAPI(),
        ]
        return tvm.ir.transform.Sequential(passes)(mod)

    def _finalize_host():
        return tvm.ir.transform.Sequential([tirx.transform.LowerTVMBuiltin(), tirx.transform.LowerIntrin()])

    def _finalize_device():
        return tvm.ir.transform.Sequential([tirx.transform.LowerIntrin()])

    return _lower, _finalize_host, _finalize_device


compilation_pipeline.register_tir_pipeline(PIPELINE_NAME, _plain_c_pipeline)
compilation_pipeline.register_tir_pipeline(HOST_PIPELINE_NAME, _host_pipeline)


def _pointer_params(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Replace each buffer parameter by its data pointer, declaring the buffer in the body."""
    params, body = [], func.body
    for param in func.params:
        if tirx.is_buffer_var(param):
            ptr = tvm.ir.Var(param.name, tirx.buffer_data_pointer_type(param))
            params.append(ptr)
            body = tirx.DeclBuffer(param, body, data=ptr)
        else:
            params.append(param)
    return tirx.PrimFunc(params, body, func.ret_type, func.attrs)


# codegen declares every call_extern; the DSP helpers are static inline in their header
_DSP_PROTOTYPE = re.compile(r"^(TVM_DLL )?int32_t tvmf_\w+\(.*\);$")
_BOILERPLATE = re.compile(
    r'^(#define TVM_EXPORTS|#include "tvm/.*"|void\* __tvm_ffi__library_ctx = NULL;|#ifdef __cplusplus|extern "C"|#endif'
    r'|// tvm target: .*)\s*$'
)


def lower_to_c(kernels: dict[str, tirx.PrimFunc]) -> tuple[list[str], dict[str, str]]:
    """Compile named PrimFuncs to plain C99 functions with raw pointer parameters.

    Returns ``(preamble, functions)``: the ``#include`` lines (and anything else TVM's
    code generator put before the first function, minus its runtime boilerplate and
    our own forward declarations), and each kernel's definition text by name, so the
    caller can order them and add a comment per kernel.
    """
    target = tvm.target.Target("c")
    mod = tvm.IRModule({name: f.with_attr("global_symbol", name) for name, f in kernels.items()})
    mod = tirx.transform.BindTarget(target)(mod)
    lower, finalize, _ = compilation_pipeline.get_tir_pipeline(PIPELINE_NAME)
    mod = lower(mod)
    mod = tvm.IRModule({gv: _pointer_params(f) for gv, f in mod.functions.items()})
    mod = finalize()(mod)
    source = tvm.get_global_func("target.build.c")(mod, target).inspect_source()
    lines = [ln.replace("TVM_DLL ", "") for ln in source.splitlines()
             if not _BOILERPLATE.match(ln) and not _DSP_PROTOTYPE.match(ln)]
    if any("TVMBackend" in ln or "TVMFFI" in ln for ln in lines):
        raise RuntimeError("generated kernel still calls the TVM runtime; a kernel allocated a workspace?")
    starts = {}
    for i, ln in enumerate(lines):
        m = _DEFINITION.match(ln)
        if m and m.group(1) in kernels:
            starts[m.group(1)] = i
    missing = sorted(set(kernels) - set(starts))
    if missing:
        raise RuntimeError(f"TVM's C code generator emitted no definition for {missing}")
    order = sorted(starts, key=starts.get)
    functions = {}
    for name, end in zip(order, [starts[n] for n in order[1:]] + [len(lines)]):
        functions[name] = "\n".join(lines[starts[name]:end]).strip() + "\n"
    preamble = []
    for ln in lines[:starts[order[0]]]:
        m = _DECLARATION.match(ln)
        if (m and m.group(1) in kernels) or not ln.strip() or ln in preamble:
            continue
        preamble.append(ln)
    if any(dsp.uses_header(text) for text in functions.values()):
        preamble.append(f'#include "{dsp.HEADER_NAME}"')
    return preamble, functions


_DEFINITION = re.compile(r"^void (\w+)\(.*\) \{$")
_DECLARATION = re.compile(r"^void (\w+)\(.*\);$")
