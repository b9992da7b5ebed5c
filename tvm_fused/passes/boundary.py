"""Our exceptions across TVM's pass boundary.

TVM's FFI turns a Python exception raised inside a pass into a ``RuntimeError`` (our
``UnsupportedModelError`` arrives as ``RuntimeError('...')``, ``KeyboardInterrupt`` as
``RuntimeError('')``). ``guarded`` wraps a pass's ``transform_module``: it stashes the
exception and raises a marked ``RuntimeError`` for TVM to unwind with; ``reraise_stashed``
(called by ``tvm_fused.pipeline.Pipeline.__call__`` around the FFI call) finds the mark and
raises the original exception again: same type, message, traceback and ``__cause__``.

A pass run inside a caller's own ``Sequential`` (not through ``Pipeline``) still unwinds
with the ``RuntimeError``, whose message names the original type and message.
"""
from __future__ import annotations

import contextvars
import functools
import itertools
import re
import time
from collections import OrderedDict

_MARK = "tvm_fused-exception#"
_PENDING: "OrderedDict[int, BaseException]" = OrderedDict()
_MAX_PENDING = 16  # stashed but never re-raised (a pass inside someone else's Sequential): keep a few
_IDS = itertools.count(1)

# Called as hook(pass_name, seconds) after each guarded pass (compile's progress lines).
pass_done_hook: contextvars.ContextVar = contextvars.ContextVar("tvm_fused_pass_done_hook", default=None)


def guarded(name: str):
    """Decorator for ``transform_module(self, mod, ctx)`` of our module passes (see module doc);
    also records ``self.seconds``, the pass's wall time."""

    def wrap(transform_module):
        @functools.wraps(transform_module)
        def run(self, mod, ctx):
            start = time.perf_counter()
            try:
                result = transform_module(self, mod, ctx)
            except BaseException as exc:  # noqa: B036 (KeyboardInterrupt must survive too)
                key = next(_IDS)
                _PENDING[key] = exc
                while len(_PENDING) > _MAX_PENDING:
                    _PENDING.popitem(last=False)
                raise RuntimeError(f"{type(exc).__name__}: {exc} [{_MARK}{key}]") from None
            self.seconds = time.perf_counter() - start
            hook = pass_done_hook.get()
            if hook is not None:
                hook(name, self.seconds)
            return result

        return run

    return wrap


def reraise_stashed(error: BaseException) -> None:
    """If ``error`` (raised by TVM) carries the mark of a stashed exception, raise that one."""
    match = re.search(re.escape(_MARK) + r"(\d+)", str(error))
    if match is None:
        return
    original = _PENDING.pop(int(match.group(1)), None)
    if original is None:
        return
    # keep the original's own cause (e.g. TVM's error that our error explains); drop the
    # RuntimeError TVM unwound with, which says nothing more
    raise original.with_traceback(original.__traceback__) from original.__cause__
