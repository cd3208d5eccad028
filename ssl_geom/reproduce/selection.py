"""Settings a table selects on its validation split, and the tables that train with them.

A local profile may not pick a hyper-parameter by looking at the verdicts it then decides,
nor at the test split (issue 26). So a selecting table (CARE's λ sweep) trains one column per
candidate value with ``val_samples`` training images held out (``SSLDataModule(val_samples)``),
and :func:`select` takes the candidate whose linear evaluation is most accurate on those held-
out images (mean over seeds) — the criterion of CARE App. Fig. 8, "linear readout error". The
sweep writes the result to ``selection.json`` beside its table; a table whose profile
:class:`~ssl_geom.reproduce.schema.UsesSelection` reads it when it is planned
(:func:`resolve_profile`) and trains with the chosen value, so its run ids follow the choice.
Every record the selector reads must have held out its validation images: a run validated on
the test split is refused, not used.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from ssl_geom.io import write_atomic

from .records import RunRecord
from .schema import Profile, TableSpec

SELECTION_FILE = "selection.json"


@dataclass(frozen=True)
class Candidate:
    """One candidate value and its validation scores (%, one per seed)."""

    column: str
    value: float
    scores: tuple[float, ...]
    run_ids: tuple[str, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)


@dataclass(frozen=True)
class SelectedSetting:
    """What a selecting table chose, from what, and how (written to ``selection.json``)."""

    table: str
    profile: str
    setting: str
    option: str
    metric: str
    chosen: str  # the winning column
    value: float
    candidates: tuple[Candidate, ...]
    validation_images: int
    commits: tuple[str, ...]

    def criterion(self) -> str:
        return (
            f"highest mean over seeds of {self.metric} (the linear evaluation on "
            f"{self.validation_images:,} training images held out from pretraining; the test "
            "split is never read); ties go to the first candidate in grid order"
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SelectedSetting:
        data = json.loads(text)
        candidates = tuple(
            Candidate(c["column"], c["value"], tuple(c["scores"]), tuple(c["run_ids"]))
            for c in data.pop("candidates")
        )
        data["commits"] = tuple(data["commits"])
        return cls(candidates=candidates, **data)


class SelectionError(ValueError):
    """The records cannot select: a candidate has no validated run, or a run read the test
    split as its validation split."""


def validation_images(record: RunRecord) -> int | None:
    """How many training images ``record``'s run held out for validation (None: none)."""
    data = record.settings.get("resolved_config", {}).get("data", {})
    value = data.get("init_args", {}).get("val_samples")
    return int(value) if value is not None else None


def _score(record: RunRecord, metric: str) -> float:
    held_out = validation_images(record)
    if held_out is None:
        raise SelectionError(
            f"run {record.run_id} held out no validation images (its data.val_samples is "
            f"unset), so its {metric} was measured on the test split; a selection never reads "
            "the test split. Plan the selecting table with --data.val_samples=N"
        )
    linear = record.settings.get("linear_eval") or {}
    value = linear.get("metrics", {}).get(metric)
    if value is None:
        raise SelectionError(f"run {record.run_id} has no {metric} in its linear evaluation")
    return 100.0 * float(value)


def select_setting(table: TableSpec, profile: str, records: list[RunRecord]) -> SelectedSetting:
    """The candidate of ``table.selects`` with the highest mean validation score.

    ``records``: the table's current records under ``profile`` (one per planned run). Reads
    nothing but each run's validation metric; raises :class:`SelectionError` when a
    candidate has no record or a record was not validated on held-out training images.
    """
    choice = table.selects
    if choice is None:
        raise ValueError(f"table {table.name!r} selects nothing")
    candidates = []
    held_out: set[int] = set()
    for column, value in choice.values.items():
        runs = sorted((r for r in records if r.method == column), key=lambda r: r.seed)
        if not runs:
            raise SelectionError(
                f"{table.name}/{profile}: no finished run of {column!r}; the selection needs "
                "every candidate (rerun the sweep)"
            )
        scores = tuple(_score(r, choice.metric) for r in runs)
        held_out.update(validation_images(r) or 0 for r in runs)
        candidates.append(Candidate(column, value, scores, tuple(r.run_id for r in runs)))
    if len(held_out) != 1:
        raise SelectionError(
            f"{table.name}/{profile}: the candidates were validated on different numbers of "
            f"held-out images ({sorted(held_out)}); rerun them with one val_samples"
        )
    best = max(candidates, key=lambda c: c.mean)  # max keeps the first of equal means
    return SelectedSetting(
        table=table.name,
        profile=profile,
        setting=choice.setting,
        option=choice.option,
        metric=choice.metric,
        chosen=best.column,
        value=best.value,
        candidates=tuple(candidates),
        validation_images=held_out.pop(),
        commits=tuple(sorted({r.git_commit for r in records})),
    )


def selection_path(out_dir: Path, source_table: str) -> Path:
    """Where table ``source_table``'s selection lies for a table written to ``out_dir``: its
    folder beside ``out_dir`` (``results/<profile>/<table>`` side by side)."""
    return Path(out_dir).parent / source_table / SELECTION_FILE


def write_selection(out_dir: Path, selection: SelectedSetting) -> Path:
    return write_atomic(Path(out_dir) / SELECTION_FILE, selection.to_json(), overwrite=True)


def read_selection(path: Path, table: str, profile: str) -> SelectedSetting:
    """The selection at ``path``, checked to be ``table``'s under ``profile``."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: this profile trains with the value that table {table!r} "
            f"selects on its validation split. Run `python -m ssl_geom.reproduce {table} "
            f"--profile {profile}` (make reproduce-care-lambda for CARE) first, with its "
            "results folder beside this one"
        )
    selection = SelectedSetting.from_json(path.read_text(encoding="utf-8"))
    if (selection.table, selection.profile) != (table, profile):
        raise ValueError(
            f"{path} holds the selection of {selection.table}/{selection.profile}, expected "
            f"{table}/{profile}"
        )
    return selection


def resolve_profile(profile: Profile, out_dir: Path) -> tuple[Profile, SelectedSetting | None]:
    """``profile`` with its selected value applied (``UsesSelection``), and that selection."""
    uses = profile.uses_selection
    if uses is None:
        return profile, None
    selection = read_selection(selection_path(out_dir, uses.table), uses.table, profile.name)
    override = f"{selection.option}={selection.value:g}"
    overrides = dict(profile.method_overrides)
    for method in uses.methods:
        overrides[method] = (*overrides.get(method, ()), override)
    resolved = dataclasses.replace(
        profile,
        method_overrides=overrides,
        uses_selection=None,
        description=(
            f"{profile.description} {selection.setting} = {selection.value:g}, selected by "
            f"table {selection.table} (see its Selection section)."
        ),
    )
    return resolved, selection


def selection_lines(selection: SelectedSetting) -> list[str]:
    """The Selection section of the selecting table (markdown)."""
    lines = [
        "",
        "## Selection",
        "",
        f"{selection.setting} = **{selection.value:g}** ({selection.chosen}), chosen by "
        f"{selection.criterion()}. Tables that train with it read `{SELECTION_FILE}` beside "
        "this table.",
        "",
        f"| candidate | {selection.setting} | {selection.metric} (%, mean over seeds) | n |",
        "|---|---|---|---|",
    ]
    for c in selection.candidates:
        mark = " ← chosen" if c.column == selection.chosen else ""
        lines.append(f"| {c.column}{mark} | {c.value:g} | {c.mean:.2f} | {len(c.scores)} |")
    return lines
