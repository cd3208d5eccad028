"""Expand a table and a profile into the list of runs to do, each identified by its settings.

A run's id is the cell (row, method, seed) plus a hash of the *resolved* configuration: the
config file as ``LightningCLI`` parses it (every default filled in, the profile's overrides
and the seed applied), the table and the profile. Editing a YAML therefore makes a new run
instead of silently reusing the record of the old settings, while moving or renaming a file
with the same content does not. Parsing builds nothing (``ssl_geom.cli.parse_config``'s parser).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .configs import experiments_dir
from .schema import LinearEvalMode, Profile, Row, TableSpec


@dataclass(frozen=True)
class RunSpec:
    """Everything needed to train and evaluate one cell of a table for one seed."""

    table: str
    profile: str
    row: Row
    row_label: str  # dataset name as printed (substitutes applied)
    method: str
    seed: int
    config: str
    overrides: tuple[str, ...]
    metric: str
    config_hash: str  # of the resolved config, table, profile and seed (see settings_hash)
    linear_eval: LinearEvalMode = "none"
    test_geometry: bool = False  # measure the test-set Wahba error and gamma_f (CARE table)
    # The table's linear protocol per dataset name (TableSpec.linear_configs), as pairs.
    linear_configs: tuple[tuple[str, str], ...] = ()

    @property
    def cell(self) -> str:
        """The table cell and seed, without the settings: what an older record shares."""
        # Letters, digits and dots only: "CARE-SimCLR" -> "caresimclr", "CARE λ=0.1" -> "care0.1".
        method = re.sub(r"[^a-z0-9.]", "", self.method.lower())
        return f"{self.row.key}__{method}__seed{self.seed}"

    @property
    def run_id(self) -> str:
        return f"{self.cell}__{self.config_hash[:10]}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["overrides"] = list(self.overrides)
        data["linear_configs"] = [list(pair) for pair in self.linear_configs]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return cls(
            **{
                **data,
                "row": Row(**data["row"]),
                "overrides": tuple(data["overrides"]),
                "linear_configs": tuple(
                    (dataset, name) for dataset, name in data.get("linear_configs", ())
                ),
            }
        )


def seed_overrides(seed: int) -> tuple[str, ...]:
    """``seed_everything`` does not reach the DataModule's own seed (its subsets, shuffling and
    augmentations), so both are set."""
    return (f"--seed_everything={seed}", f"--data.seed={seed}")


def resolve_config(config: str | Path, overrides: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The resolved config of ``config`` + ``overrides`` as plain JSON data, without its path.

    Raises ``FileNotFoundError`` when the file is absent (before any parsing), and the
    parser's own error naming the key when a setting is invalid. Parses are cached on the
    file's *content*, so an edited file is parsed again.
    """
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(
            f"experiment config {config} does not exist; check --experiments or the table spec"
        )
    return json.loads(_resolve_cached(str(path), path.read_text(), tuple(overrides)))


@lru_cache(maxsize=512)
def _resolve_cached(config: str, content: str, overrides: tuple[str, ...]) -> str:
    from ssl_geom.cli import parse_config

    del content  # part of the cache key only: the parser reads the file itself
    with warnings.catch_warnings():
        # LightningCLI warns that sys.argv is ignored when given args: that is the point here.
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        data = parse_config(["--config", config, *overrides]).as_dict()
    data.pop("config", None)  # the file's path is not a setting
    return json.dumps(data, sort_keys=True, default=str)


def settings_hash(
    resolved: dict[str, Any],
    table: str,
    profile: str,
    seed: int,
    linear_eval: str = "none",
    test_geometry: bool = False,
    linear_protocols: dict[str, Any] | None = None,
) -> str:
    """SHA-1 of the resolved config with the table, profile and seed (hex).

    A linear evaluation and the test-set geometry are part of the result, so a run planned
    with one never reuses a record made without it (neither changes the hash when absent).
    With a linear evaluation, ``linear_protocols`` (:func:`linear_protocols`) are hashed too:
    editing a linear config reruns the runs it evaluates.
    """
    settings: dict[str, Any] = {
        "config": resolved,
        "table": table,
        "profile": profile,
        "seed": seed,
    }
    if linear_eval != "none":
        settings["linear_eval"] = linear_eval
        settings["linear_protocols"] = linear_protocols or {}
    if test_geometry:
        settings["test_geometry"] = True
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def linear_protocols(config: str | Path, names: Iterable[str]) -> dict[str, Any]:
    """The linear-evaluation configs ``names`` that exist beside ``config`` (name -> parsed YAML).

    A run is evaluated by its table's protocol for its dataset (``TableSpec.linear_configs``),
    which is known only once its DataModule is built; all the table's protocols are hashed
    instead, so an edit of any of them reruns every linearly evaluated run of that table and
    folder: more reruns than needed, never a record evaluated under a protocol other than the
    current one.
    """
    folder = Path(config).parent
    return {
        name: yaml.safe_load((folder / name).read_text(encoding="utf-8"))
        for name in sorted(set(names))
        if (folder / name).is_file()
    }


def with_seed(resolved: dict[str, Any], seed: int) -> dict[str, Any]:
    """``resolved`` as :func:`seed_overrides` would leave it (the parse is shared by all seeds)."""
    seeded = copy.deepcopy(resolved)
    seeded["seed_everything"] = seed
    seeded["data"].setdefault("init_args", {})["seed"] = seed
    return seeded


def spec_settings(spec: RunSpec) -> dict[str, Any]:
    """The resolved config ``spec`` trains with, re-read from its file now."""
    return resolve_config(spec.config, spec.overrides)


@dataclass(frozen=True)
class PlannedCell:
    """One (row, method) cell of a table under a profile, before seeds and hashing."""

    row: Row
    row_label: str
    method: str
    config: str
    overrides: tuple[str, ...]  # without the seed's


def plan_cells(
    table: TableSpec, profile: Profile, experiments: Path | str | None = None
) -> list[PlannedCell]:
    """The cells of ``table`` under ``profile`` in table order (no config is parsed)."""
    folder = table.experiments_dir or experiments_dir(experiments)
    rows = profile.rows if profile.rows is not None else table.rows
    _check_row_keys(table, profile, rows)
    cells = []
    for row in rows:
        label, extra = _substitute(row, profile)
        for method in table.methods:
            overrides = (
                *profile.overrides,
                *extra,
                *profile.row_overrides.get(row.key, ()),
                *profile.method_overrides.get(method, ()),
            )
            config = str(table.config_path(row, method, folder))
            cells.append(PlannedCell(row, label, method, config, overrides))
    return cells


def _check_row_keys(table: TableSpec, profile: Profile, rows: tuple[Row, ...]) -> None:
    """A profile's per-row overrides must name rows it plans, and it must have seeds."""
    keys = {row.key for row in rows}
    unknown = sorted(set(profile.row_overrides) - keys)
    if unknown:
        raise ValueError(
            f"profile {profile.name!r} of table {table.name!r} sets row_overrides for rows "
            f"{unknown}, which it does not plan; its rows: {', '.join(sorted(keys))}"
        )
    if not profile.seeds:
        raise ValueError(
            f"profile {profile.name!r} of table {table.name!r} has no seeds; give it at least one"
        )


def plan_runs(
    table: TableSpec, profile: Profile, experiments: Path | str | None = None
) -> list[RunSpec]:
    """All (row, method, seed) runs of ``table`` under ``profile``, in table order.

    ``experiments`` is the config folder (default: :func:`configs.experiments_dir`). Each
    cell's config is parsed once; the seeds are applied to the parsed result (:func:`with_seed`),
    which the worker checks against a full parse before training.
    """
    if profile.uses_selection is not None:
        raise ValueError(
            f"profile {profile.name!r} of table {table.name!r} trains {profile.uses_selection.methods}"
            f" with the value table {profile.uses_selection.table!r} selects; apply that selection "
            "first (ssl_geom.reproduce.selection.resolve_profile)"
        )
    runs: list[RunSpec] = []
    # The table's linear configs in each config folder, read once for all its cells.
    protocols_by_folder: dict[Path, dict[str, Any]] = {}
    linear_configs = tuple(sorted(table.linear_configs.items()))
    for cell in plan_cells(table, profile, experiments):
        seeds = profile.seeds
        resolved = resolve_config(cell.config, (*cell.overrides, *seed_overrides(seeds[0])))
        protocols = None
        if table.linear_eval != "none":
            folder = Path(cell.config).parent
            if folder not in protocols_by_folder:
                protocols_by_folder[folder] = linear_protocols(
                    cell.config, table.linear_configs.values()
                )
            protocols = protocols_by_folder[folder]
        for seed in seeds:
            runs.append(
                RunSpec(
                    table=table.name,
                    profile=profile.name,
                    row=cell.row,
                    row_label=cell.row_label,
                    method=cell.method,
                    seed=seed,
                    config=cell.config,
                    overrides=(*cell.overrides, *seed_overrides(seed)),
                    metric=table.metric,
                    config_hash=settings_hash(
                        with_seed(resolved, seed),
                        table.name,
                        profile.name,
                        seed,
                        table.linear_eval,
                        bool(table.test_columns),
                        protocols,
                    ),
                    linear_eval=table.linear_eval,
                    test_geometry=bool(table.test_columns),
                    linear_configs=linear_configs if table.linear_eval != "none" else (),
                )
            )
    return runs


def _substitute(row: Row, profile: Profile) -> tuple[str, tuple[str, ...]]:
    dataset_key = row.config_stem.split("_", 1)[0]
    if dataset_key in profile.substitutes:
        label, overrides = profile.substitutes[dataset_key]
        return label, overrides
    return row.dataset, ()
