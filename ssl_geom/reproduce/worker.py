"""``python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR``: one run in its own process.

Exit code 0: the run has its record now; ``runner.EXIT_ALREADY``: it had one from before
(another process finished it first); 1: it failed, and ``OUT_DIR/failures/`` says why;
``runner.EXIT_BUSY``: another process is training it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .plan import RunSpec
from .runner import EXIT_ALREADY, EXIT_BUSY, run_or_record_failure


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR")
    outcome = run_or_record_failure(RunSpec.from_dict(json.loads(args[0])), Path(args[1]))
    raise SystemExit({"failed": 1, "busy": EXIT_BUSY, "already": EXIT_ALREADY}.get(outcome, 0))


if __name__ == "__main__":
    main()
