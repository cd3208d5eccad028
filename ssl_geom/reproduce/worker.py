"""``python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR``: one run in its own process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .plan import RunSpec
from .runner import run_one


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m ssl_geom.reproduce.worker SPEC_JSON OUT_DIR")
    run_one(RunSpec.from_dict(json.loads(args[0])), Path(args[1]))


if __name__ == "__main__":
    main()
