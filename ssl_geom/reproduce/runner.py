"""Train and evaluate one run of a table, resuming if it was interrupted.

Each run lives in ``<out>/runs/<run_id>/`` (Lightning logs and checkpoints);
its result is one JSON record in ``<out>/records/``, written only when the run
finished. A run killed mid-way leaves its ``last.ckpt`` behind, and the next
attempt continues from it instead of starting over.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from .evaluation import METRIC as LINEAR_METRIC
from .evaluation import evaluate_run
from .plan import RunSpec
from .records import RunRecord, load_records, record_path, write_record

REPO_ROOT = Path(__file__).resolve().parents[2]


class DataMissing(Exception):
    """The run's dataset is not on disk; the table shows a note instead of a number."""


class MetricHistory(Callback):
    """Keeps the scalar metrics of every validation epoch, for curves over training."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        for name, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 1)() == 1:
                row[name] = float(value)
        self.history.append(row)


def git_commit() -> str:
    """The code version a record was produced with (``-dirty`` if uncommitted changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def run_dir(out_dir: Path, spec: RunSpec) -> Path:
    return Path(out_dir) / "runs" / spec.run_id


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest ``last.ckpt`` under a run's folder, if an earlier attempt left one."""
    candidates = sorted(Path(directory).rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


def _build(spec: RunSpec, directory: Path) -> Any:
    from ssl_geom.cli import build_cli

    return build_cli(
        [
            "--config",
            spec.config,
            *spec.overrides,
            f"--trainer.default_root_dir={directory}",
        ],
        run=False,
    )


def check_data(spec: RunSpec) -> str | None:
    """``None`` if the run's dataset loads, else the message saying where it was looked for."""
    with tempfile.TemporaryDirectory(prefix="ssl_geom_check_") as scratch:
        cli = _build(spec, Path(scratch))
        try:
            cli.datamodule.prepare_data()
            cli.datamodule.setup("fit")
        except FileNotFoundError as error:
            return str(error)
    return None


def run_one(spec: RunSpec, out_dir: Path) -> RunRecord:
    """Train ``spec`` (resuming from its last checkpoint), test it, and write its record.

    Returns the existing record untouched if the run had already finished.
    """
    out_dir = Path(out_dir)
    records_dir = out_dir / "records"
    if record_path(records_dir, spec.run_id).exists():
        return next(r for r in load_records(records_dir) if r.run_id == spec.run_id)

    directory = run_dir(out_dir, spec)
    directory.mkdir(parents=True, exist_ok=True)
    resume_from = latest_checkpoint(directory)
    cli = _build(spec, directory)
    history = MetricHistory()
    cli.trainer.callbacks.append(history)

    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume_from)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    wall_time = time.perf_counter() - start

    metrics = results[0] if results else {}
    if spec.metric not in metrics:
        raise KeyError(
            f"run {spec.run_id} logged no {spec.metric!r} at test time; logged: {sorted(metrics)}"
        )
    linear = evaluate_run(
        spec.linear_eval, cli.trainer.checkpoint_callback.last_model_path, cli.datamodule
    )
    accuracy = 100.0 * float(metrics[spec.metric])
    if linear is not None and spec.linear_eval == "headline":
        accuracy = 100.0 * linear["metrics"][LINEAR_METRIC]
    record = RunRecord(
        run_id=spec.run_id,
        table=spec.table,
        row={**spec.row.labels(), "dataset": spec.row_label, "key": spec.row.key},
        method=spec.method,
        seed=spec.seed,
        config=spec.config,
        overrides=list(spec.overrides),
        accuracy=accuracy,
        epochs=int(cli.trainer.current_epoch),
        git_commit=git_commit(),
        wall_time_s=wall_time,
        profile=spec.profile,
        history=history.history,
        settings={
            "resumed_from": str(resume_from) if resume_from else None,
            "config_text": Path(spec.config).read_text(),
            "linear_eval": linear,
        },
    )
    if cli.trainer.is_global_zero:
        write_record(records_dir, record)
    return record


def run_in_subprocess(spec: RunSpec, out_dir: Path) -> int:
    """Run ``spec`` in a fresh Python process (isolates memory and crashes); return its exit code."""
    import json

    return subprocess.call(
        [
            sys.executable,
            "-m",
            "ssl_geom.reproduce.worker",
            json.dumps(spec.to_dict()),
            str(out_dir),
        ]
    )
