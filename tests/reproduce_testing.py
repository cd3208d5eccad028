"""A run record for the reproduce tests: the fields a test is about, fixed values for the rest."""

from __future__ import annotations

from typing import Any

from ssl_geom.reproduce.records import RunRecord


def run_record(
    run_id: str, row: dict[str, str], method: str, seed: int, accuracy: float, **extra: Any
) -> RunRecord:
    """A finished table1 run of one epoch; ``extra`` sets or replaces any other field."""
    fields: dict[str, Any] = {
        "table": "table1",
        "config": "x.yaml",
        "overrides": [],
        "epochs": 1,
        "git_commit": "abc",
        "wall_time_s": 1.0,
        "profile": "local",
    }
    return RunRecord(
        run_id=run_id,
        row=row,
        method=method,
        seed=seed,
        accuracy=accuracy,
        **{**fields, **extra},
    )
