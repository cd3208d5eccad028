"""One machine-readable JSON record per finished run, written atomically; failures beside them.

A sweep over hundreds of cluster jobs must survive being killed at any moment:
a record appears only once its run has finished (``ssl_geom.io.write_atomic``,
so a reader never sees half a file), and an existing record is never
overwritten — a rerun of the sweep skips it instead. A run that raised
(a diverged loss, a crash) leaves a :class:`FailureRecord` in ``failures/``
and no accuracy record, so it is reported as failed, never as a result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ssl_geom.io import write_atomic

# The linear evaluation's test accuracy (a fraction) in ``settings["linear_eval"]["metrics"]``.
LINEAR_METRIC = "linear/test_acc"


@dataclass
class RunRecord:
    """What one finished run produced, with everything needed to redo it."""

    run_id: str
    table: str
    row: dict[str, str]
    method: str
    seed: int
    config: str
    overrides: list[str]
    accuracy: float
    epochs: int
    git_commit: str
    wall_time_s: float
    profile: str
    history: list[dict[str, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    # Every scalar logged at test time (e.g. geometry/wahba_error_test), unscaled.
    metrics: dict[str, float] = field(default_factory=dict)
    # Hash of the resolved config the run trained with (plan.settings_hash); "" in old records.
    config_hash: str = ""
    cell: str = ""  # row__method__seedN: the cell an older configuration's record shares

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @property
    def linear_accuracy(self) -> float | None:
        """The run's linear-evaluation accuracy (%, mean over classifiers), if it has one."""
        linear = self.settings.get("linear_eval")
        return 100.0 * linear["metrics"][LINEAR_METRIC] if linear else None


@dataclass
class FailureRecord:
    """A run that raised instead of finishing: what it was and the error, for the report."""

    run_id: str
    cell: str
    table: str
    method: str
    seed: int
    row_key: str
    error_type: str
    message: str
    git_commit: str
    wall_time_s: float
    created: float  # time.time() of the failure, to show the latest attempt

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)


def record_path(records_dir: Path, run_id: str) -> Path:
    return Path(records_dir) / f"{run_id}.json"


def write_record(records_dir: Path, record: RunRecord) -> Path:
    """Write ``record`` atomically; refuse to replace an existing record.

    Raises ``FileExistsError`` if the run already has a record: results are
    never overwritten, a finished run is skipped by the sweep instead.
    """
    target = record_path(records_dir, record.run_id)
    if target.exists():
        raise FileExistsError(
            f"record {target} already exists; finished runs are never overwritten "
            "(delete it yourself to redo that run)"
        )
    return write_atomic(target, record.to_json())


def write_failure(failures_dir: Path, failure: FailureRecord) -> Path:
    """Add ``failure`` as a new file (one per attempt; earlier attempts' files are kept)."""
    failures_dir = Path(failures_dir)
    for attempt in range(1, 10_000):
        target = failures_dir / f"{failure.run_id}.attempt{attempt}.json"
        try:
            return write_atomic(target, failure.to_json())
        except FileExistsError:
            continue
    raise RuntimeError(f"too many failure files for {failure.run_id} in {failures_dir}")


def load_failures(failures_dir: Path) -> dict[str, FailureRecord]:
    """The latest failure of each run id under ``failures_dir``."""
    failures_dir = Path(failures_dir)
    latest: dict[str, FailureRecord] = {}
    if not failures_dir.is_dir():
        return latest
    for path in failures_dir.glob("*.json"):
        if path.name.startswith("."):
            continue
        failure = FailureRecord(**json.loads(path.read_text()))
        if failure.run_id not in latest or failure.created > latest[failure.run_id].created:
            latest[failure.run_id] = failure
    return latest


def load_records(records_dir: Path) -> list[RunRecord]:
    """All finished records under ``records_dir`` (temp files ignored), sorted by run id."""
    records_dir = Path(records_dir)
    if not records_dir.is_dir():
        return []
    return [
        RunRecord(**json.loads(path.read_text()))
        for path in sorted(records_dir.glob("*.json"))
        if not path.name.startswith(".")
    ]
