"""Expand a table and a profile into the list of runs to do.

A run's id is derived from everything that determines its result (table,
row, method, seed, config file, overrides), so rerunning a sweep finds the
runs already finished, and changing a setting makes a new run instead of
silently reusing an old record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .tables import LinearEvalMode, Profile, Row, TableSpec


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
    linear_eval: LinearEvalMode = "none"

    @property
    def run_id(self) -> str:
        # A linear evaluation is part of the result: records made without one are not reused.
        linear = [self.linear_eval] if self.linear_eval != "none" else []
        digest = hashlib.sha1(
            json.dumps([self.config, list(self.overrides), *linear], sort_keys=True).encode()
        ).hexdigest()[:8]
        method = self.method.lower().replace("-", "").replace(" ", "")
        return f"{self.row.key}__{method}__seed{self.seed}__{digest}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["overrides"] = list(self.overrides)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return cls(**{**data, "row": Row(**data["row"]), "overrides": tuple(data["overrides"])})


def plan_runs(table: TableSpec, profile: Profile) -> list[RunSpec]:
    """All (row, method, seed) runs of ``table`` under ``profile``, in table order."""
    rows = profile.rows if profile.rows is not None else table.rows
    runs: list[RunSpec] = []
    for row in rows:
        label, extra = _substitute(row, profile)
        for method in table.methods:
            config = table.config_path(row, method)
            for seed in profile.seeds:
                runs.append(
                    RunSpec(
                        table=table.name,
                        profile=profile.name,
                        row=row,
                        row_label=label,
                        method=method,
                        seed=seed,
                        config=str(Path(config)),
                        # seed_everything does not reach the DataModule's own seed (its
                        # subsets, shuffling and augmentations), so both are set.
                        overrides=(
                            *profile.overrides,
                            *extra,
                            f"--seed_everything={seed}",
                            f"--data.seed={seed}",
                        ),
                        metric=table.metric,
                        linear_eval=table.linear_eval,
                    )
                )
    return runs


def _substitute(row: Row, profile: Profile) -> tuple[str, tuple[str, ...]]:
    dataset_key = row.config_stem.split("_", 1)[0]
    if dataset_key in profile.substitutes:
        label, overrides = profile.substitutes[dataset_key]
        return label, overrides
    return row.dataset, ()
