"""``python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR``: one run in its own process.

Exit code 0: the run has its record now; ``runner.EXIT_ALREADY``: it had one from before
(another process finished it first); 1: it failed, and ``OUT_DIR/failures/`` says why;
``runner.EXIT_BUSY``: another process is training it.

``python -m ssl_geom.reproduce.worker --serve OUT_DIR REPLY_FD``: one run after another in
this process (its imports paid once: ``pool.py``). Each line of stdin is
``{"spec": ..., "log": PATH or null}``; the run's output goes to ``log`` while it runs, and its
exit code, as above, is written as one line to the file descriptor ``REPLY_FD``. It ends when
stdin closes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .plan import RunSpec
from .runner import EXIT_ALREADY, EXIT_BUSY, run_or_record_failure


def exit_code(spec: RunSpec, out_dir: Path) -> int:
    """Train ``spec`` (``run_or_record_failure``); its worker exit code."""
    outcome = run_or_record_failure(spec, out_dir)
    return {"failed": 1, "busy": EXIT_BUSY, "already": EXIT_ALREADY}.get(outcome, 0)


@contextlib.contextmanager
def output_to(log: str | None) -> Iterator[None]:
    """This process's stdout and stderr (the descriptors, so native code's too) appended to
    ``log`` inside the block; left alone when ``log`` is ``None``."""
    if log is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as stream:
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)


def serve(out_dir: Path, reply_fd: int) -> None:
    """Train each requested run in turn (see the module docstring) until stdin closes."""
    with os.fdopen(reply_fd, "w") as replies:
        for line in sys.stdin:
            request = json.loads(line)
            with output_to(request["log"]):
                code = exit_code(RunSpec.from_dict(request["spec"]), out_dir)
            _release_memory()
            replies.write(f"{code}\n")
            replies.flush()


def _release_memory() -> None:
    """Hand a finished run's memory back before the next one (its GPU cache too)."""
    gc.collect()
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 3 and args[0] == "--serve":
        serve(Path(args[1]), int(args[2]))
        return
    if len(args) != 2:
        raise SystemExit(
            "usage: python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR\n"
            "       python -m ssl_geom.reproduce.worker --serve OUT_DIR REPLY_FD"
        )
    raise SystemExit(exit_code(RunSpec.from_dict(json.loads(args[0])), Path(args[1])))


if __name__ == "__main__":
    main()
