"""Train and evaluate one run of a table, resuming if it was interrupted.

Each run lives in ``<out>/runs/<run_id>/`` (Lightning logs and checkpoints);
its result is one JSON record in ``<out>/records/``, written only when the run
finished. A run killed mid-way leaves its ``last.ckpt`` behind, and the next
attempt continues from it instead of starting over — but only after checking
that the folder's ``settings.json`` names the same resolved configuration;
otherwise the old attempt is moved aside (never deleted) and the run starts over.

The run trains from ``resolved_config.yaml``, the exact configuration its id
hashes, not from the experiment file (which may be edited while it trains).
One process at a time trains a run: ``<out>/runs/<run_id>.lock`` is held with
``fcntl.flock`` (released by the kernel when the process dies). A job of several processes
(one per GPU, e.g. a submitit job with ``tasks_per_node > 1``) is one run: its rank 0 takes
the lock, prepares the folder and writes the record; the other ranks wait for the folder's
settings stamp and train beside it (:func:`job_rank`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer

from ssl_geom.io import write_atomic

from .equivariance_on_test_set import equivariance_on_test_set
from .evaluation import evaluate_run, protocol_for
from .plan import RunSpec, linear_protocols, settings_hash, spec_settings
from .process import RunBusy, run_lock
from .records import (
    LINEAR_METRIC,
    FailureRecord,
    RunRecord,
    read_json_record,
    record_path,
    write_failure,
    write_record,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = "settings.json"
RESOLVED_FILE = "resolved_config.yaml"
# How a run trains beyond its resolved config (not part of its settings hash): checkpoints
# at the end of each training epoch, once MetricHistory has its row (see there).
RUN_OVERRIDES = ("--checkpoint.save_on_train_epoch_end=true",)
# Exit code of a worker whose run another process is training (BSD's EX_TEMPFAIL).
EXIT_BUSY = 75
# Worker exit code of a run another process finished first (its record was found).
EXIT_ALREADY = 76
# How long a job's rank > 0 waits for rank 0 to prepare the run's folder.
RANK_WAIT_S = 600.0
Outcome = Literal["finished", "already", "busy", "failed"]


class DataMissing(Exception):
    """The run's dataset is not on disk; the table shows a note instead of a number."""


class SettingsChanged(RuntimeError):
    """The config file no longer resolves to the settings the run was planned with."""


class MetricHistory(Callback):
    """Keeps the scalar metrics of every epoch that validated, for curves over training.

    A row is taken at the end of the training epoch, not at validation: during validation the
    epoch-averaged training metrics (``probe/train_acc``) are still the previous epoch's, and
    a run resumed from a checkpoint has no previous epoch in memory, so its history would
    differ from an uninterrupted run's (found by tests/test_reproduce_kill.py). The run saves
    its checkpoints at the end of the training epoch too, after this callback
    (``RUN_OVERRIDES``), so a checkpoint holds the row of its epoch; its state is saved in
    checkpoints, so a resumed run's history still starts at epoch 0.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._validated = False

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._validated:
            return
        self._validated = False
        row = {"epoch": float(trainer.current_epoch), "step": float(trainer.global_step)}
        for name, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 1)() == 1:
                row[name] = float(value)
        self.history.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(point) for point in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(point) for point in state_dict["history"]]


def git_commit() -> str:
    """The code version a record was produced with (``-dirty`` if uncommitted changes).

    ``unknown`` for an installed copy without a checkout (records then name the version only).
    """
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


def _build(config: Path, directory: Path, overrides: tuple[str, ...] = ()) -> Any:
    from ssl_geom.cli import build_cli

    return build_cli(
        ["--config", str(config), *overrides, f"--trainer.default_root_dir={directory}"],
        run=False,
    )


def check_data(spec: RunSpec) -> str | None:
    """``None`` if the run's dataset loads, else the message saying where it was looked for."""
    with tempfile.TemporaryDirectory(prefix="ssl_geom_check_") as scratch:
        cli = _build(Path(spec.config), Path(scratch), spec.overrides)
        try:
            cli.datamodule.prepare_data()
            cli.datamodule.setup("fit")
        except FileNotFoundError as error:
            return str(error)
    return None


def _prepare_directory(directory: Path, config_hash: str, resolved: dict[str, Any]) -> Path | None:
    """Make ``directory`` hold this configuration's attempt; return a checkpoint to resume.

    A folder left by another configuration (or without a settings stamp) is renamed to
    ``<dir>.stale-<time>`` and the run starts over: resuming it would train other settings
    than the record will claim.
    """
    stamp = directory / SETTINGS_FILE
    if directory.exists():
        stamped = json.loads(stamp.read_text()).get("config_hash") if stamp.is_file() else None
        if stamped != config_hash:
            directory.rename(directory.with_name(f"{directory.name}.stale-{int(time.time())}"))
    directory.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        # The stamp last: a folder with a stamp always holds the configuration it names.
        write_atomic(directory / RESOLVED_FILE, yaml.safe_dump(resolved, sort_keys=True))
        write_atomic(stamp, json.dumps({"config_hash": config_hash}, indent=2))
    return latest_checkpoint(directory)


def _existing_record(records_dir: Path, run_id: str) -> RunRecord | None:
    """The run's record if it has one (an unreadable one raises, naming the file and the fix)."""
    path = record_path(records_dir, run_id)
    return read_json_record(path, RunRecord) if path.exists() else None


def job_rank() -> int:
    """This process's rank in a job of several processes (``RANK``, else srun's
    ``SLURM_PROCID``), 0 in a job of one process; read before Lightning starts."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))


def run_one(spec: RunSpec, out_dir: Path) -> RunRecord:
    """Train ``spec`` (resuming from its last checkpoint), test it, and write its record.

    Returns the existing record untouched if the run had already finished (here or in another
    process meanwhile). Raises :class:`RunBusy` if another process is training it, and
    :class:`SettingsChanged` if its config file no longer matches its id. On a job's rank > 0
    it trains beside rank 0 instead (:func:`_beside_rank_zero`).
    """
    out_dir = Path(out_dir)
    records_dir = out_dir / "records"
    existing = _existing_record(records_dir, spec.run_id)
    if existing is not None:
        return existing
    if job_rank() > 0:
        return _beside_rank_zero(spec, out_dir)
    directory = run_dir(out_dir, spec)
    with run_lock(directory.with_name(f"{spec.run_id}.lock")):
        existing = _existing_record(records_dir, spec.run_id)
        if existing is not None:  # finished by another process while we waited
            return existing
        resolved = spec_settings(spec)
        protocols = (
            linear_protocols(spec.config, dict(spec.linear_configs).values())
            if spec.linear_eval != "none"
            else None
        )
        config_hash = settings_hash(
            resolved,
            spec.table,
            spec.profile,
            spec.seed,
            spec.linear_eval,
            spec.test_geometry,
            protocols,
        )
        if config_hash != spec.config_hash:
            raise SettingsChanged(
                f"{spec.config} (with the run's overrides) no longer resolves to the settings "
                f"run {spec.run_id} was planned with; rerun the sweep to plan it anew"
            )
        resume_from = _prepare_directory(directory, config_hash, resolved)
        return _train_and_record(spec, out_dir, directory, resolved, resume_from)


def _beside_rank_zero(spec: RunSpec, out_dir: Path) -> RunRecord:
    """A job's rank > 0: wait until rank 0 has stamped the run's folder, then train the same
    resolved config from the same checkpoint (Lightning joins the ranks); rank 0 writes the
    record. Rank 0 writes no checkpoint before every rank has joined, so both resume alike."""
    directory = run_dir(out_dir, spec)
    stamp = directory / SETTINGS_FILE
    deadline = time.monotonic() + RANK_WAIT_S
    while not (
        stamp.is_file() and json.loads(stamp.read_text())["config_hash"] == spec.config_hash
    ):
        existing = _existing_record(out_dir / "records", spec.run_id)
        if existing is not None:
            return existing
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"rank {job_rank()} of run {spec.run_id} waited {RANK_WAIT_S:.0f} s for rank 0 "
                f"to prepare {directory}; see rank 0's log (or {out_dir / 'failures'})"
            )
        time.sleep(0.2)
    resolved = yaml.safe_load((directory / RESOLVED_FILE).read_text())
    return _train_and_record(spec, out_dir, directory, resolved, latest_checkpoint(directory))


def _train_and_record(
    spec: RunSpec, out_dir: Path, directory: Path, resolved: dict, resume_from: Path | None
) -> RunRecord:
    cli = _build(directory / RESOLVED_FILE, directory, RUN_OVERRIDES)
    protocol = protocol_for(
        spec.linear_eval, cli.datamodule, Path(spec.config).parent, dict(spec.linear_configs)
    )
    history = MetricHistory()
    cli.trainer.callbacks.append(history)

    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=resume_from)
    results = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    wall_time = time.perf_counter() - start

    metrics = dict(results[0]) if results else {}
    if spec.metric not in metrics:
        raise KeyError(
            f"run {spec.run_id} logged no {spec.metric!r} at test time; logged: {sorted(metrics)}"
        )
    accuracy = 100.0 * float(metrics[spec.metric])
    if spec.test_geometry:  # CARE: Wahba error and gamma_f over the test set
        metrics.update(equivariance_on_test_set(cli.model, cli.datamodule))
    # A run killed after its last epoch but before its record resumes into a finished fit that
    # trains and saves nothing; its weights are then the checkpoint it resumed from.
    checkpoint = cli.trainer.checkpoint_callback.last_model_path or resume_from
    if not checkpoint:
        raise RuntimeError(
            f"run {spec.run_id} finished training without writing a checkpoint; the linear "
            "evaluation needs one (keep trainer.enable_checkpointing on)"
        )
    linear = evaluate_run(protocol, checkpoint, cli.datamodule)
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
            # Another thread count sums in another order: results agree to rounding only
            # (benchmarks/parallel_runs.py), so the record says which it was.
            "torch_threads": torch.get_num_threads(),
            "resolved_config": resolved,
            "linear_eval": linear,
        },
        metrics={name: float(value) for name, value in metrics.items()},
        config_hash=spec.config_hash,
        cell=spec.cell,
    )
    if cli.trainer.is_global_zero:
        try:
            write_record(out_dir / "records", record)
        except FileExistsError:  # another process finished the same run meanwhile
            return _existing_record(out_dir / "records", spec.run_id) or record
    return record


def run_or_record_failure(spec: RunSpec, out_dir: Path) -> Outcome:
    """:func:`run_one`, turning any training exception into a failure record (no result).

    A diverged loss (``ssl_geom.methods.DivergedError``), a crash or a changed config are all
    recorded in ``<out>/failures/`` with their message and reported by the sweep and the table.
    """
    out_dir = Path(out_dir)
    had_record = record_path(out_dir / "records", spec.run_id).exists()
    start = time.perf_counter()
    try:
        run_one(spec, out_dir)
    except RunBusy as error:
        print(f"{spec.run_id}: {error}", flush=True)
        return "busy"
    except Exception as error:
        traceback.print_exc()
        write_failure(
            out_dir / "failures",
            FailureRecord(
                run_id=spec.run_id,
                cell=spec.cell,
                table=spec.table,
                method=spec.method,
                seed=spec.seed,
                row_key=spec.row.key,
                error_type=type(error).__name__,
                message=str(error).strip().splitlines()[0] if str(error).strip() else "",
                git_commit=git_commit(),
                wall_time_s=time.perf_counter() - start,
                created=time.time(),
            ),
        )
        return "failed"
    return "already" if had_record else "finished"
