"""Stub exporter: writes an export dir exactly as docs/interfaces.md specifies,
so the device stack can be tested before the real compiler exists.

The "model" computes ``output[i] = sat_int8(input[i % IN] * 3 + i)``; its input
sits at arena offset 0 and its output right after it (16-byte aligned).
Options make it misbehave on purpose (overwrite its input, write past the arena)
to exercise the firmware's checks."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

HEADER = """\
#ifndef TVMGEN_DEFAULT_H_
#define TVMGEN_DEFAULT_H_
#include <stdint.h>
#define TVMGEN_DEFAULT_ARENA_SIZE  {arena}   /* bytes, includes input and output */
#define TVMGEN_DEFAULT_INPUT_SIZE  {insize}    /* bytes of the (single) int8 input */
#define TVMGEN_DEFAULT_OUTPUT_SIZE {outsize}       /* bytes of the (single) int8 output */
struct tvmgen_default_inputs  {{ void* input; }};
struct tvmgen_default_outputs {{ void* output; }};
extern uint8_t tvmgen_default_arena[TVMGEN_DEFAULT_ARENA_SIZE];
void* tvmgen_default_input_ptr(void);
void* tvmgen_default_output_ptr(void);
int32_t tvmgen_default_run(struct tvmgen_default_inputs* inputs,
                           struct tvmgen_default_outputs* outputs);
#endif
"""

ARENA_C = """\
#include "tvmgen_default.h"
#ifndef TVMGEN_DEFAULT_ARENA_ATTR
#define TVMGEN_DEFAULT_ARENA_ATTR
#endif
TVMGEN_DEFAULT_ARENA_ATTR __attribute__((aligned(16))) uint8_t tvmgen_default_arena[TVMGEN_DEFAULT_ARENA_SIZE];
"""

KERNELS_C = """\
#include <stdint.h>
extern const int8_t stub_weights[];
void stub_kernel(const int8_t* in, int8_t* out, uint32_t in_size, uint32_t out_size)
{{
    for (uint32_t i = 0; i < out_size; i++) {{
        int32_t v = (int32_t)in[i % in_size] * 3 + (int32_t)i + stub_weights[0];
        out[i] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
    }}
}}
"""

WEIGHTS_C = """\
#include <stdint.h>
/* Dummy constants so the image has a .rodata part of known size. */
const int8_t stub_weights[{n}] = {{0}};
"""

AOT_C = """\
#include <string.h>
#include "tvmgen_default.h"
#define INPUT_OFFSET 0
#define OUTPUT_OFFSET {out_off}
void stub_kernel(const int8_t* in, int8_t* out, uint32_t in_size, uint32_t out_size);
void* tvmgen_default_input_ptr(void) {{ return tvmgen_default_arena + INPUT_OFFSET; }}
void* tvmgen_default_output_ptr(void) {{ return tvmgen_default_arena + OUTPUT_OFFSET; }}
int32_t tvmgen_default_run(struct tvmgen_default_inputs* inputs,
                           struct tvmgen_default_outputs* outputs)
{{
    uint8_t* in = tvmgen_default_arena + INPUT_OFFSET;
    uint8_t* out = tvmgen_default_arena + OUTPUT_OFFSET;
    if (inputs->input != in) memcpy(in, inputs->input, TVMGEN_DEFAULT_INPUT_SIZE);
    stub_kernel((const int8_t*)in, (int8_t*)out, TVMGEN_DEFAULT_INPUT_SIZE, TVMGEN_DEFAULT_OUTPUT_SIZE);
{misbehave}
    if (outputs->output != out) memcpy(outputs->output, out, TVMGEN_DEFAULT_OUTPUT_SIZE);
    return 0;
}}
"""

FAULT = "    __builtin_trap();  /* stub option: undefined instruction -> fault */\n"
CLOBBER_INPUT = "    in[0] ^= 0x55;  /* stub option: reuse the input buffer */\n"
OVERFLOW_ARENA = ("    {{ uint8_t* volatile p = tvmgen_default_arena; "
                  "p[TVMGEN_DEFAULT_ARENA_SIZE + {k}] ^= 0xFF; }}  /* stub option: write past the arena */\n")


def stub_expected(x: np.ndarray, output_size: int) -> np.ndarray:
    """Bit-exact host reference of the stub model."""
    x = np.asarray(x, dtype=np.int8).reshape(-1).astype(np.int32)
    i = np.arange(output_size, dtype=np.int32)
    return np.clip(x[i % x.size] * 3 + i, -128, 127).astype(np.int8)


def write_stub_export(out_dir, input_shape=(1, 8, 8, 3), output_shape=(1, 10), arena_bytes=None,
                      weights_bytes=256, macs=1000, name="stub", clobber_input=False,
                      overflow_arena_by=0, fault=False) -> Path:
    """Write DIR/model/{include,src}, DIR/io.json and DIR/report.json; returns DIR."""
    out_dir = Path(out_dir)
    insize = int(np.prod(input_shape))
    outsize = int(np.prod(output_shape))
    out_off = (insize + 15) // 16 * 16
    arena = max(arena_bytes or 0, out_off + outsize)
    misbehave = ""
    if clobber_input:
        misbehave += CLOBBER_INPUT
    if fault:
        misbehave += FAULT
    if overflow_arena_by:
        misbehave += OVERFLOW_ARENA.format(k=overflow_arena_by - 1).replace("{{", "{").replace("}}", "}")
    inc, src = out_dir / "model" / "include", out_dir / "model" / "src"
    inc.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    (inc / "tvmgen_default.h").write_text(HEADER.format(arena=arena, insize=insize, outsize=outsize))
    (src / "arena.c").write_text(ARENA_C)
    (src / "kernels.c").write_text(KERNELS_C.format())
    (src / "weights.c").write_text(WEIGHTS_C.format(n=max(1, weights_bytes)))
    (src / "tvmgen_default.c").write_text(AOT_C.format(out_off=out_off, misbehave=misbehave))
    io = {"inputs": [{"name": "input", "shape": list(input_shape), "dtype": "int8", "scale": 0.0078,
                      "zero_point": -1, "layout": "NHWC" if len(input_shape) == 4 else "NC"}],
          "outputs": [{"name": "output", "shape": list(output_shape), "dtype": "int8", "scale": 0.1,
                       "zero_point": 3}]}
    (out_dir / "io.json").write_text(json.dumps(io, indent=1))
    report = {"model": name, "board": "qemu-mps2-an500", "fuse": {"mode": "none", "chains": []},
              "arena_bytes": arena, "layerwise_lower_bound": out_off + outsize,
              "arena_over_lower_bound": arena / (out_off + outsize),
              "flash_bytes_estimate": weights_bytes + 1024, "weights_bytes": weights_bytes, "macs": macs,
              "ops": [{"index": 0, "name": "stub_0", "op": "stub", "inputs": [list(input_shape)],
                       "output": list(output_shape), "macs": macs, "live_bytes": out_off + outsize,
                       "arena_offset": 0}]}
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return out_dir


class StubCompiledModel:
    """Quacks like CompiledModel (.export, .io, .report, .reference) for generate_project tests."""

    def __init__(self, **kw):
        self._kw = kw
        self.input_shape = tuple(kw.get("input_shape", (1, 8, 8, 3)))
        self.output_shape = tuple(kw.get("output_shape", (1, 10)))

    def export(self, directory):
        return write_stub_export(directory, **self._kw)

    def reference(self, x):
        return stub_expected(x, int(np.prod(self.output_shape))).reshape(self.output_shape)


if __name__ == "__main__":  # python tests/micro/stub_model.py DIR
    import sys
    print(write_stub_export(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()))
