"""Build the generated C library for the host with gcc and run it on an input.

Used by the tests (with ``-fsanitize=address,undefined``) to prove the exported
C computes exactly what TVM's own host build computes, and by users to try the
library without a board.
"""
from __future__ import annotations

import os
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
/* usage: harness IN.bin OUT.bin  -- raw int8 tensors */
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f || fread(in, 1, sizeof in, f) != sizeof in) return 3;
  fclose(f);
  struct tvmgen_default_inputs i = {in};
  struct tvmgen_default_outputs o = {out};
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


class HostExecutable:
    """The model's C sources + a tiny file-based harness, compiled for this machine."""

    def __init__(self, model_dir, out_shape, sanitize: bool = True, opt: str = "-O2", cc: str = "gcc"):
        model_dir = Path(model_dir)
        self.out_shape = tuple(out_shape)
        self.workdir = Path(tempfile.mkdtemp(prefix="tvm_fused_host_"))
        harness = self.workdir / "harness.c"
        harness.write_text(_HARNESS)
        self.exe = self.workdir / "model"
        sources = sorted(str(p) for p in (model_dir / "src").glob("*.c"))
        cmd = [cc, opt, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(model_dir / "include"), *sources, str(harness),
               "-o", str(self.exe)]
        if sanitize:
            cmd[2:2] = SANITIZE_FLAGS
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TvmFusedError(f"host build of the generated C failed:\n{proc.stderr[-4000:]}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        inp, outp = self.workdir / "in.bin", self.workdir / "out.bin"
        np.ascontiguousarray(x, dtype=np.int8).tofile(inp)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        proc = subprocess.run([str(self.exe), str(inp), str(outp)], capture_output=True, text=True, env=env,
                              timeout=600)
        if proc.returncode != 0:
            raise TvmFusedError(f"generated C failed at run time (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return np.fromfile(outp, dtype=np.int8).reshape(self.out_shape)

    def close(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
