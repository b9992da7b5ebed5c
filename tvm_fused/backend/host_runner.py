"""Build the generated C library for the host with gcc and run it on an input.

Used by the tests (with ``-fsanitize=address,undefined``) to prove the exported
C computes exactly what TVM's own host build computes, and by users to try the
library without a board.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import TvmFusedError

SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]

_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tvmgen_default.h"
static int8_t in[TVMGEN_DEFAULT_INPUT_SIZE], out[TVMGEN_DEFAULT_OUTPUT_SIZE];
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
/* The application side of a streamed input: rows of `in`, checked to be asked in order, once. */
static int32_t next_row;
int32_t tvmgen_default_read_input_rows(int8_t* rows, int32_t first_row, int32_t n_rows) {
  if (first_row != next_row || n_rows < 1 || first_row + n_rows > TVMGEN_DEFAULT_INPUT_ROWS) exit(6);
  memcpy(rows, in + (size_t)first_row * TVMGEN_DEFAULT_INPUT_ROW_BYTES, (size_t)n_rows * TVMGEN_DEFAULT_INPUT_ROW_BYTES);
  next_row += n_rows;
  return 0;
}
#endif
/* usage: harness IN.bin OUT.bin  -- all int8 inputs (outputs) concatenated in order */
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f || fread(in, 1, sizeof in, f) != sizeof in) return 3;
  fclose(f);
  struct tvmgen_default_inputs i = {@INPUTS@};
  struct tvmgen_default_outputs o = {@OUTPUTS@};
  if (tvmgen_default_run(&i, &o) != 0) return 4;
#ifdef TVMGEN_DEFAULT_STREAM_INPUT
  if (next_row != TVMGEN_DEFAULT_INPUT_ROWS) return 7; /* every row pulled exactly once */
#endif
  f = fopen(argv[2], "wb");
  if (!f || fwrite(out, 1, sizeof out, f) != sizeof out) return 5;
  fclose(f);
  return 0;
}
"""


def _member_inits(header: str, kind: str, buffer: str) -> str:
    """Positional initializers: tensor k starts after the sizes of tensors 0..k-1."""
    count = int(re.search(rf"#define TVMGEN_DEFAULT_NUM_{kind}S (\d+)", header).group(1)) \
        if f"NUM_{kind}S" in header else 1
    sizes = [int(re.search(rf"#define TVMGEN_DEFAULT_{kind}_{k}_SIZE (\d+)", header).group(1))
             for k in range(count)] if count > 1 else [0]
    offsets = [sum(sizes[:k]) for k in range(count)]
    return ", ".join(f"{buffer} + {o}" for o in offsets)


class HostExecutable:
    """The model's C sources + a tiny file-based harness, compiled for this machine."""

    def __init__(self, model_dir, out_shape, sanitize: bool = True, opt: str = "-O2", cc: str = "gcc"):
        model_dir = Path(model_dir)
        self.out_shape = tuple(tuple(s) if isinstance(s, (list, tuple)) else s for s in out_shape)
        self.workdir = Path(tempfile.mkdtemp(prefix="tvm_fused_host_"))
        harness = self.workdir / "harness.c"
        header = (model_dir / "include" / "tvmgen_default.h").read_text()
        harness.write_text(_HARNESS.replace("@INPUTS@", _member_inits(header, "INPUT", "in"))
                           .replace("@OUTPUTS@", _member_inits(header, "OUTPUT", "out")))
        self.exe = self.workdir / "model"
        sources = sorted(str(p) for p in (model_dir / "src").glob("*.c"))
        cmd = [cc, opt, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(model_dir / "include"), *sources, str(harness),
               "-o", str(self.exe)]
        if sanitize:
            cmd[2:2] = SANITIZE_FLAGS
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TvmFusedError(f"host build of the generated C failed:\n{proc.stderr[-4000:]}")

    def __call__(self, *xs: np.ndarray):
        """One int8 array per model input -> the output (several outputs: ``out_shape`` is a list
        of shapes and a list of arrays comes back)."""
        inp, outp = self.workdir / "in.bin", self.workdir / "out.bin"
        np.concatenate([np.ascontiguousarray(x, dtype=np.int8).reshape(-1) for x in xs]).tofile(inp)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        proc = subprocess.run([str(self.exe), str(inp), str(outp)], capture_output=True, text=True, env=env,
                              timeout=600)
        if proc.returncode != 0:
            raise TvmFusedError(f"generated C failed at run time (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        flat = np.fromfile(outp, dtype=np.int8)
        if self.out_shape and isinstance(self.out_shape[0], (tuple, list)):
            sizes = np.cumsum([int(np.prod(s)) for s in self.out_shape])[:-1]
            return [a.reshape(s) for a, s in zip(np.split(flat, sizes), self.out_shape)]
        return flat.reshape(self.out_shape)

    def close(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
