"""Helpers of the reproduce tests: a run record with fixed values for the fields a test is not
about, and the pinned fixtures of tests/data/ (every planned run id, and each table rendered
from synthetic records), which ``python -m tests.reproduce_testing`` rewrites."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from unittest import mock

from ssl_geom.reproduce import plan
from ssl_geom.reproduce.plan import RunSpec, plan_runs
from ssl_geom.reproduce.records import LINEAR_METRIC, RunRecord
from ssl_geom.reproduce.report import aggregate, render_markdown, select_records
from ssl_geom.reproduce.schema import Profile, Row, TableSpec
from ssl_geom.reproduce.selection import SelectionError, resolve_profile, select_setting
from ssl_geom.reproduce.tables import TABLES

#: A fixed selection (``selection.json``) for every table x profile whose columns train with the
#: value another table selects, so the pinned plans do not depend on results on disk: laid out
#: as results are, ``<profile>/<selecting table>/selection.json``.
SELECTIONS = Path(__file__).parent / "data" / "selections"


def planning_profile(table: TableSpec, profile: str) -> Profile:
    """``table``'s ``profile`` with :data:`SELECTIONS` applied (:func:`resolve_profile`)."""
    return resolve_profile(table.profiles[profile], SELECTIONS / profile / table.name)[0]


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


def spec_record(spec: RunSpec, accuracy: float, **extra: Any) -> RunRecord:
    """A finished record of the planned run ``spec`` (its row, ids and cell as a worker writes
    them); ``extra`` sets or replaces any other field."""
    row = {**spec.row.labels(), "dataset": spec.row_label, "key": spec.row.key}
    fields = {"table": spec.table, "profile": spec.profile, "config_hash": spec.config_hash}
    fields.update(cell=spec.cell, **extra)
    return run_record(spec.run_id, row, spec.method, spec.seed, accuracy, **fields)


TINY_ROW = Row("Fashion-MNIST", "SimCLR aug.", "CNN", "tiny")


def simclr_table(experiments: Path, **fields: Any) -> TableSpec:
    """A SimCLR-only table ``tiny`` of the tests, its configs under ``experiments``: the row
    :data:`TINY_ROW`, no published numbers, a local profile of seed 0; ``fields`` replace these
    or set any other :class:`TableSpec` field."""
    local = Profile("local", seeds=(0,), overrides=(), description="tiny")
    table = {"name": "tiny", "title": "tiny grid", "rows": (TINY_ROW,), "reference": {}}
    table.update({"citation": "test fixture", "profiles": {"local": local}, **fields})
    simclr = {"methods": ("SimCLR",), "method_prefix": {"SimCLR": "simclr"}}
    return TableSpec(experiments_dir=experiments, **simclr, **table)


_TINY_SIMCLR = """
seed_everything: 0
trainer:
  max_epochs: {max_epochs}
  accelerator: cpu
  devices: {devices}
  strategy: {strategy}
  precision: 32-true
  enable_progress_bar: false
  enable_model_summary: false
model:
  class_path: ssl_geom.methods.SimCLR
  init_args:
    backbone: hssl_mnist_translation
    projector_hidden_dims: [16]
    projector_out_dim: 8
    optimizer: adam
    lr: 1.0e-3
    warmup_epochs: 0
data:
  class_path: ssl_geom.data.MNISTDataModule
  init_args:
    variant: {variant}
    root: {root}
    batch_size: 32
    num_workers: 0
    train_views: simclr
"""


def tiny_simclr(root: Path, max_epochs: int, variant: str = "fashion", devices: int = 1) -> str:
    """The config of a SimCLR run on the fake (Fashion-)MNIST written under ``root``: seconds on
    a CPU core; ``devices`` > 1 trains with DDP over that many CPU processes."""
    strategy = "ddp" if devices > 1 else "auto"
    return _TINY_SIMCLR.format(
        root=root, max_epochs=max_epochs, variant=variant, devices=devices, strategy=strategy
    )


# Fixtures pinned from the tables as they were when the fixture was written: see main() below.
DATA = Path(__file__).resolve().parent / "data"
PLANNED_RUN_IDS = DATA / "planned_run_ids.json"
RENDERED_TABLES = DATA / "rendered_tables"


def planned_run_ids(profiles: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """``"<table>/<profile>"`` -> the sorted run ids it plans (the real config parse), for
    every table and every profile (or only ``profiles``)."""
    ids = {}
    for name, table in sorted(TABLES.items()):
        for profile in sorted(table.profiles):
            if profiles is None or profile in profiles:
                specs = plan_runs(table, planning_profile(table, profile))
                ids[f"{name}/{profile}"] = sorted(spec.run_id for spec in specs)
    return ids


def config_free_resolve(config: str, overrides: tuple[str, ...]) -> dict[str, Any]:
    """Stand-in for ``plan.resolve_config`` that reads no config: the overrides only, so a table
    rendered from it depends on its spec and the report code, not on ``experiments/``."""
    del config
    return {"overrides": list(overrides), "data": {}}


def _drawn(key: str, scale: float) -> float:
    """A number in [0, scale) fixed by ``key`` (the same in every process, unlike ``hash``)."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32 * scale


HELD_OUT = {"data": {"init_args": {"val_samples": 5000}}}


def synthetic_records(table: TableSpec, specs: list[RunSpec]) -> list[RunRecord]:
    """A record for every planned run but every 7th (so seed counts differ), with a linear
    evaluation on 4 of 5, a history of the table's curves and its test columns; every number
    is drawn from the run's cell, so it does not depend on the configs' content."""
    records = []
    for i, spec in enumerate(specs):
        if i % 7 == 3:
            continue
        cell = spec.cell
        history = [
            {"epoch": float(epoch), **{m: _drawn(f"{cell}{m}{epoch}", 10) for m in table.curves}}
            for epoch in range(3)
        ]
        linear = {
            "metrics": {
                LINEAR_METRIC: _drawn(f"{cell}linear", 1),
                "linear/val_acc": _drawn(f"{cell}validation", 1),
            }
        }
        settings: dict[str, Any] = {"linear_eval": linear} if i % 5 else {}
        if table.selects is not None:  # its runs hold out validation images (selection.py)
            settings = {"linear_eval": linear, "resolved_config": HELD_OUT}
        records.append(
            spec_record(
                spec,
                50 + _drawn(cell, 40),
                git_commit="abc" if i % 11 else "def",
                history=history,
                settings=settings,
                metrics={m: _drawn(f"{cell}{m}", 5) for m, _ in table.test_columns},
            )
        )
    return records


def render_synthetic(table: TableSpec, profile: str) -> str:
    """``table``'s markdown under ``profile`` from :func:`synthetic_records` (current commit
    "abc"); plan with :func:`config_free_resolve` in place of the config parse."""
    planned = planning_profile(table, profile)
    specs = plan_runs(table, planned)
    records = synthetic_records(table, specs)
    cells = aggregate(records, specs)
    selection = None
    if table.selects is not None:
        try:
            selection = select_setting(table, profile, select_records(records, specs).current)
        except SelectionError as error:
            selection = str(error)
    return render_markdown(
        table, planned, specs, cells, {}, records, current_commit="abc", selected=selection
    )


def main() -> None:
    """Rewrite the pinned fixtures from the tables as they are now: ``python -m
    tests.reproduce_testing``. Only for an intended change of the planned runs or the tables'
    text; review the diff of tests/data/ before committing it."""
    PLANNED_RUN_IDS.write_text(json.dumps(planned_run_ids(), indent=1, sort_keys=True) + "\n")
    RENDERED_TABLES.mkdir(parents=True, exist_ok=True)
    with mock.patch.object(plan, "resolve_config", config_free_resolve):
        for name, table in sorted(TABLES.items()):
            (RENDERED_TABLES / f"{name}.local.md").write_text(render_synthetic(table, "local"))


if __name__ == "__main__":
    main()
