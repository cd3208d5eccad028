"""One machine-readable JSON record per finished run, written atomically; failures beside them.

A sweep over hundreds of cluster jobs must survive being killed at any moment:
a record appears only once its run has finished (``ssl_geom.io.write_atomic``,
so a reader never sees half a file), and an existing record is never
overwritten — a rerun of the sweep skips it instead. A run that raised
(a diverged loss, a crash) leaves a :class:`FailureRecord` in ``failures/``
and no accuracy record, so it is reported as failed, never as a result.

Files a person edited, truncated or copied are read defensively: every field's JSON type is
checked against the dataclass, a record must be named after its run id (a copy would count
twice), and a file that fails is an :class:`UnreadableFile` naming its path, the reason and
the fix. The sweep and the table leave such files out and count them
(:func:`scan_records`); :func:`load_records` refuses them.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar, get_args, get_origin, get_type_hints

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


# How to get rid of an unreadable file without losing anything.
UNREADABLE_FIX = (
    "move it out of the folder (nothing else is touched; a record's run is trained again by "
    "the next sweep) or restore the file the sweep wrote"
)


@dataclass(frozen=True)
class UnreadableFile:
    """A file under ``records/`` or ``failures/`` that is not a valid record, and why."""

    path: Path
    reason: str

    def text(self) -> str:
        return f"{self.path}: {self.reason}"


class UnreadableRecordError(ValueError):
    """A record or failure file that cannot be read; the message names it and the fix."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}; {UNREADABLE_FIX}")
        self.file = UnreadableFile(path, reason)


_Loaded = TypeVar("_Loaded", RunRecord, FailureRecord)


def read_json_record(path: Path, kind: type[_Loaded]) -> _Loaded:
    """The :class:`RunRecord` or :class:`FailureRecord` stored at ``path``, checked field by field.

    Raises:
        UnreadableRecordError: not JSON, not an object, missing or unknown fields, a field
            of the wrong JSON type, a non-finite accuracy, or a name that does not start with
            the run id it holds; the message names ``path`` and how to fix it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        _refuse(path, f"not readable as JSON ({error})")
    if not isinstance(data, dict):
        _refuse(path, f"holds a JSON {type(data).__name__}, expected an object")
    declared = fields(kind)
    names = {f.name for f in declared}
    required = {f.name for f in declared if f.default is MISSING and f.default_factory is MISSING}
    unknown, missing = sorted(set(data) - names), sorted(required - set(data))
    if unknown or missing:
        parts = [
            f"unknown field(s) {unknown}" if unknown else "",
            f"missing {missing}" if missing else "",
        ]
        _refuse(
            path,
            "; ".join(p for p in parts if p)
            + f" of a {kind.__name__} (hand-edited, or written by another version of ssl_geom)",
        )
    hints = get_type_hints(kind)
    for name, value in data.items():
        if not _matches(value, hints[name]):
            _refuse(
                path, f"field {name!r} is {reprlib.repr(value)}, expected {_type_name(hints[name])}"
            )
    if kind is RunRecord and not math.isfinite(data["accuracy"]):
        _refuse(path, f"accuracy is {data['accuracy']}, expected a finite number")
    stem = path.name.removesuffix(".json")
    if stem != data["run_id"] and not stem.startswith(f"{data['run_id']}.attempt"):
        _refuse(
            path,
            f"it holds run {data['run_id']!r} under another name (a record is "
            f"<run_id>.json; a copy or renamed file would be counted twice)",
        )
    return kind(**data)


def _refuse(path: Path, reason: str) -> NoReturn:
    raise UnreadableRecordError(path, reason)


def _matches(value: Any, hint: Any) -> bool:
    """Whether the JSON ``value`` fits the dataclass annotation ``hint`` (ints count as floats)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items()
        )
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    """``str``, ``float``, ``dict[str, float]``: the annotation as it is written."""
    return hint.__name__ if get_origin(hint) is None and hasattr(hint, "__name__") else str(hint)


def _json_files(folder: Path) -> list[Path]:
    """The ``*.json`` files of ``folder`` (hidden temporary files of a write left out)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]


@dataclass(frozen=True)
class RecordScan:
    """What :func:`scan_records` found: the readable records and the files it left out."""

    records: list[RunRecord]
    unreadable: list[UnreadableFile]


def scan_records(records_dir: Path) -> RecordScan:
    """Every readable record under ``records_dir`` (sorted by run id) and every file left out."""
    records, unreadable = [], []
    for path in _json_files(records_dir):
        try:
            records.append(read_json_record(path, RunRecord))
        except UnreadableRecordError as error:
            unreadable.append(error.file)
    return RecordScan(sorted(records, key=lambda r: r.run_id), unreadable)


def load_records(records_dir: Path) -> list[RunRecord]:
    """All finished records under ``records_dir``, sorted by run id; refuses an unreadable one.

    Raises:
        UnreadableRecordError: for the first file that is not a valid record (see
            :func:`read_json_record`); :func:`scan_records` leaves such files out instead.
    """
    scan = scan_records(records_dir)
    if scan.unreadable:
        raise UnreadableRecordError(scan.unreadable[0].path, scan.unreadable[0].reason)
    return scan.records


def scan_failures(
    failures_dir: Path,
) -> tuple[dict[str, FailureRecord], list[UnreadableFile]]:
    """The latest failure of each run id under ``failures_dir``, and the files left out."""
    latest: dict[str, FailureRecord] = {}
    unreadable = []
    for path in _json_files(failures_dir):
        try:
            failure = read_json_record(path, FailureRecord)
        except UnreadableRecordError as error:
            unreadable.append(error.file)
            continue
        if failure.run_id not in latest or failure.created > latest[failure.run_id].created:
            latest[failure.run_id] = failure
    return latest, unreadable


def load_failures(failures_dir: Path) -> dict[str, FailureRecord]:
    """The latest failure of each run id under ``failures_dir``; refuses an unreadable file."""
    latest, unreadable = scan_failures(failures_dir)
    if unreadable:
        raise UnreadableRecordError(unreadable[0].path, unreadable[0].reason)
    return latest
