"""The reproduce machinery end to end on a tiny grid: real training runs on fake MNIST files.

One row trains (SimCLR on a 64-image fake MNIST written in the real IDX format, 2 epochs),
one row points at an empty folder (a "data not found" note), for two seeds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.reproduce import runner
from ssl_geom.reproduce import sweep as sweep_module
from ssl_geom.reproduce.__main__ import main as reproduce_main
from ssl_geom.reproduce.plan import plan_runs, resolve_config, settings_hash
from ssl_geom.reproduce.process import RunBusy, run_lock
from ssl_geom.reproduce.records import (
    FailureRecord,
    RunRecord,
    UnreadableRecordError,
    load_failures,
    load_records,
    write_failure,
    write_record,
)
from ssl_geom.reproduce.runner import EXIT_ALREADY, EXIT_BUSY
from ssl_geom.reproduce.schema import Profile, Row, TableSpec
from ssl_geom.reproduce.tables import TABLES
from tests.reproduce_testing import simclr_table, spec_record, tiny_simclr


def _threads_of_a_fresh_interpreter() -> int:
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)


def _tiny_table(tmp_path: Path, devices: int = 1) -> TableSpec:
    """The tiny grid; ``devices`` > 1 trains each run with DDP over that many CPU processes."""
    data_root = write_fake_dataset("mnist", tmp_path / "data", n_train=64, n_test=32)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    for key, root in (("present", data_root), ("absent", tmp_path / "nowhere")):
        config = tiny_simclr(root, max_epochs=2, variant="mnist", devices=devices)
        (experiments / f"simclr_{key}.yaml").write_text(config)
    rows = (
        Row("MNIST", "SimCLR aug.", "CNN", "present"),
        Row("MNIST", "SimCLR aug.", "CNN", "absent"),
    )
    return simclr_table(
        experiments,
        rows=rows,
        reference={("present", "SimCLR"): (50.0, 1.0)},
        curves=("probe/acc",),
        profiles={"local": Profile("local", seeds=(0, 1), overrides=(), description="tiny")},
    )


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TableSpec:
    table = _tiny_table(tmp_path)
    monkeypatch.setitem(TABLES, "tiny", table)
    return table


def test_sweep_writes_records_table_and_plots_then_skips_finished_runs(
    tiny: TableSpec, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    result = sweep_module.sweep("tiny", "local", out)

    assert (result.finished, result.skipped, result.failed) == (2, 0, [])
    records = load_records(out / "records")
    assert sorted(r.seed for r in records) == [0, 1]
    for record in records:
        assert 0.0 <= record.accuracy <= 100.0 and record.epochs == 2
        assert record.git_commit and record.wall_time_s > 0
        # One worker inherits this process's environment, so its thread count.
        assert record.settings["torch_threads"] == _threads_of_a_fresh_interpreter()
        assert [h["epoch"] for h in record.history] == [0.0, 1.0]
        assert "probe/acc" in record.history[-1]
    text = result.table_path.read_text()
    present_line = next(
        line
        for line in text.splitlines()
        if line.startswith("| MNIST | SimCLR aug. | CNN | ") and "n=2" in line
    )
    assert "/ *50.0 ± 1.0*" in present_line
    assert f"data not found at {tmp_path / 'nowhere'}" in text
    assert result.plot_path.stat().st_size > 0 and result.curves_path.stat().st_size > 0

    record_bytes = {p: p.read_bytes() for p in (out / "records").iterdir()}
    again = sweep_module.sweep("tiny", "local", out)
    assert (again.finished, again.skipped) == (0, 2)
    assert {p: p.read_bytes() for p in (out / "records").iterdir()} == record_bytes


class _Crash(Exception):
    pass


def _add_callback_to_runs(monkeypatch: pytest.MonkeyPatch, callback: Callback) -> None:
    """Make every run the runner builds in this test also use ``callback``."""
    build = runner._build

    def build_with_callback(*args, **kwargs):
        cli = build(*args, **kwargs)
        cli.trainer.callbacks.append(callback)
        return cli

    monkeypatch.setattr(runner, "_build", build_with_callback)


def test_interrupted_run_resumes_from_its_last_checkpoint(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class CrashAtSecondEpoch(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            if trainer.current_epoch == 1:
                raise _Crash("killed after the first epoch's checkpoint")

    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    with monkeypatch.context() as crashing, pytest.raises(_Crash):
        _add_callback_to_runs(crashing, CrashAtSecondEpoch())
        runner.run_one(spec, out)
    assert not (out / "records").exists() or not list((out / "records").iterdir())
    checkpoint = runner.latest_checkpoint(runner.run_dir(out, spec))
    assert checkpoint is not None

    record = runner.run_one(spec, out)
    assert record.settings["resumed_from"] == str(checkpoint)
    assert record.epochs == 2
    # Only the epoch after the resume point was trained again, but the history saved in the
    # checkpoint keeps the epoch before it (issue 13: was [1.0] before).
    assert [h["epoch"] for h in record.history] == [0.0, 1.0]
    assert json.loads((out / "records" / f"{spec.run_id}.json").read_text())["seed"] == 0
    # And it equals an uninterrupted run's, training averages included (issue 24: each row
    # held the previous epoch's probe/train_acc, which a resumed run does not have).
    uninterrupted = runner.run_one(spec, tmp_path / "uninterrupted")
    assert record.history == uninterrupted.history
    assert "probe/train_acc" in record.history[0]


def test_a_run_killed_after_training_is_evaluated_from_its_checkpoint_on_rerun(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed during the evaluation after the last epoch: the rerun's fit resumes into a
    # finished training that writes no new checkpoint (it used to pass "" on, i.e. ".").
    seen: list[str] = []

    def evaluate(config, checkpoint, dataset):
        seen.append(str(checkpoint))
        if len(seen) == 1:
            raise _Crash("killed during the evaluation")
        return None

    monkeypatch.setattr(runner, "evaluate_run", evaluate)
    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    with pytest.raises(_Crash):
        runner.run_one(spec, out)
    checkpoint = runner.latest_checkpoint(runner.run_dir(out, spec))
    assert checkpoint is not None and seen == [str(checkpoint)]

    record = runner.run_one(spec, out)
    assert seen[1] == str(checkpoint) and Path(seen[1]).is_file()
    assert record.settings["resumed_from"] == str(checkpoint)
    assert record.epochs == 2  # the finished training's, restored from the checkpoint


def _submitit_local(out: Path, gpus_per_job: int = 1) -> sweep_module.SweepResult:
    """The first run of the tiny table as a job of submitit's local executor."""
    options = sweep_module.SubmititOptions(
        cluster="local", gpus_per_job=gpus_per_job, timeout_min=10
    )
    return sweep_module.sweep(
        "tiny", "local", out, launcher="submitit", submitit_options=options, limit=1
    )


def test_submitit_local_executor_runs_a_job(tiny: TableSpec, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = _submitit_local(out)
    assert (result.finished, result.failed) == (1, [])
    (record,) = load_records(out / "records")
    assert record.seed == 0 and record.epochs == 2
    assert any((out / "submitit").iterdir())


@pytest.mark.ddp
@pytest.mark.slow
def test_a_two_task_submitit_job_trains_one_run_with_ddp_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: ``--gpus-per-job 2`` makes a job of two tasks, which train *one* run as a
    2-process DDP group (gloo on CPU here): rank 0 writes the record, rank 1 trains beside it."""
    monkeypatch.setitem(TABLES, "tiny", _tiny_table(tmp_path, devices=2))
    out = tmp_path / "results"
    result = _submitit_local(out, gpus_per_job=2)
    assert (result.finished, result.failed) == (1, [])
    (record,) = load_records(out / "records")
    assert record.seed == 0 and record.epochs == 2
    assert record.settings["resolved_config"]["trainer"]["devices"] == 2
    errors = "".join(p.read_text() for p in (out / "submitit").rglob("*_log.err"))
    for rank in (0, 1):  # both tasks joined one group of two
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in errors


class _Exited:
    """A worker that has already exited with ``code`` (what the launcher polls)."""

    def __init__(self, code: int) -> None:
        self.code = code

    def poll(self) -> int:
        return self.code


def _one_seed(table: TableSpec, monkeypatch: pytest.MonkeyPatch, seeds=(0,)) -> TableSpec:
    profile = dataclasses.replace(table.profiles["local"], seeds=seeds)
    single = dataclasses.replace(table, profiles={"local": profile})
    monkeypatch.setitem(TABLES, "tiny", single)
    return single


def test_editing_a_config_after_a_finished_run_runs_it_again_and_leaves_the_old_record_out(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_seed(tiny, monkeypatch)
    # In-process workers: the same run_or_record_failure without a fresh interpreter's imports.
    codes = {"finished": 0, "already": EXIT_ALREADY, "busy": EXIT_BUSY, "failed": 1}
    monkeypatch.setattr(
        sweep_module.WorkerPool,
        "start",
        lambda pool, spec, log: _Exited(codes[runner.run_or_record_failure(spec, pool.out_dir)]),
    )
    out = tmp_path / "results"
    first = sweep_module.sweep("tiny", "local", out)
    assert (first.finished, first.skipped, first.left_out) == (1, 0, 0)

    config = tiny.experiments_dir / "simclr_present.yaml"
    config.write_text(config.read_text().replace("projector_out_dim: 8", "projector_out_dim: 16"))
    second = sweep_module.sweep("tiny", "local", out)
    assert (second.finished, second.skipped, second.left_out) == (1, 0, 1)
    records = load_records(out / "records")
    assert len(records) == 2  # the old record stays on disk
    dims = sorted(
        r.settings["resolved_config"]["model"]["init_args"]["projector_out_dim"] for r in records
    )
    assert dims == [8, 16]
    text = second.table_path.read_text()
    assert "(n=1)" in text  # one seed in the cell, not the old and new records together
    assert "1 records left out: their cell's configuration changed" in text


def test_a_config_edited_after_planning_fails_the_run_instead_of_training_other_settings(
    tiny: TableSpec, tmp_path: Path
) -> None:
    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    config = Path(spec.config)
    config.write_text(config.read_text().replace("max_epochs: 2", "max_epochs: 3"))
    out = tmp_path / "results"
    assert runner.run_or_record_failure(spec, out) == "failed"
    assert not (out / "records").exists()
    failure = load_failures(out / "failures")[spec.run_id]
    assert failure.error_type == "SettingsChanged"
    assert "no longer resolves to the settings" in failure.message


def test_the_planned_hash_equals_a_full_parse_with_the_seed(tiny: TableSpec) -> None:
    """Planning parses each cell once and applies the seeds to the result (with_seed); the
    worker re-parses with the seed overrides. Both must hash alike or no run could start."""
    for spec in plan_runs(tiny, tiny.profiles["local"])[:2]:
        resolved = resolve_config(spec.config, spec.overrides)
        assert settings_hash(resolved, spec.table, spec.profile, spec.seed) == spec.config_hash


def test_a_folder_from_other_settings_is_moved_aside_not_resumed(
    tiny: TableSpec, tmp_path: Path
) -> None:
    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    directory = runner.run_dir(out, spec)
    (directory / "checkpoints").mkdir(parents=True)
    (directory / "checkpoints" / "last.ckpt").write_bytes(b"from other settings")
    (directory / runner.SETTINGS_FILE).write_text(json.dumps({"config_hash": "other"}))

    record = runner.run_one(spec, out)
    assert record.settings["resumed_from"] is None and record.epochs == 2
    (stale,) = [p for p in directory.parent.iterdir() if ".stale-" in p.name]
    assert (stale / "checkpoints" / "last.ckpt").read_bytes() == b"from other settings"


class _Diverged(RuntimeError):
    """Stands in for ssl_geom.methods.DivergedError (a RuntimeError subclass)."""


def test_a_training_exception_is_recorded_as_a_failure_not_a_result(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Diverge(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            raise _Diverged("non-finite loss (nan) at step 0")

    _add_callback_to_runs(monkeypatch, Diverge())
    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    assert runner.run_or_record_failure(spec, out) == "failed"
    assert load_records(out / "records") == []
    failure = load_failures(out / "failures")[spec.run_id]
    assert (failure.error_type, failure.message) == ("_Diverged", "non-finite loss (nan) at step 0")


def test_a_run_locked_by_another_process_is_busy_and_untouched(
    tiny: TableSpec, tmp_path: Path
) -> None:
    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    lock = runner.run_dir(out, spec).with_name(f"{spec.run_id}.lock")
    with run_lock(lock):
        assert runner.run_or_record_failure(spec, out) == "busy"
        with pytest.raises(RunBusy):
            runner.run_one(spec, out)
    assert not runner.run_dir(out, spec).exists()
    assert not (out / "failures").exists()


def test_sweep_reports_failed_busy_and_finished_elsewhere_runs(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake workers: seed 0 fails (failure record, exit 1), seed 1 exits 1 but its record
    appeared meanwhile (another process finished it), seed 2 is being run elsewhere, seed 3
    found its record (another process finished it first), seed 4 finishes now. Only seed 4
    counts as finished now; seeds 1 and 3 as done before."""
    table = _one_seed(tiny, monkeypatch, seeds=(0, 1, 2, 3, 4))
    specs = plan_runs(table, table.profiles["local"])

    def fake_exit_code(spec, out_dir) -> int:
        if spec.seed == 0:
            failure = FailureRecord(
                run_id=spec.run_id,
                cell=spec.cell,
                table=spec.table,
                method=spec.method,
                seed=0,
                row_key=spec.row.key,
                error_type="DivergedError",
                message="non-finite loss nan",
                git_commit="x",
                wall_time_s=0.1,
                created=1.0,
            )
            write_failure(Path(out_dir) / "failures", failure)
            return 1
        if spec.seed == 1:
            record = RunRecord(
                run_id=spec.run_id,
                table=spec.table,
                row={**spec.row.labels(), "key": spec.row.key},
                method=spec.method,
                seed=1,
                config=spec.config,
                overrides=list(spec.overrides),
                accuracy=42.0,
                epochs=2,
                git_commit="x",
                wall_time_s=1.0,
                profile=spec.profile,
                cell=spec.cell,
            )
            write_record(Path(out_dir) / "records", record)
            return 1
        if spec.seed == 3:
            return EXIT_ALREADY
        if spec.seed == 4:
            return 0
        return EXIT_BUSY

    monkeypatch.setattr(
        sweep_module.WorkerPool,
        "start",
        lambda pool, spec, log: _Exited(fake_exit_code(spec, pool.out_dir)),
    )
    result = sweep_module.sweep("tiny", "local", tmp_path / "results")
    seed = {s.seed: s.run_id for s in specs if s.row.key == "present"}
    assert result.failed == [seed[0]]
    assert result.busy == [seed[2]]
    assert (result.finished, result.skipped) == (1, 2)
    assert result.failure_messages == {seed[0]: "DivergedError: non-finite loss nan"}
    text = result.table_path.read_text()
    assert "42.0 (n=1), 1 failed" in text
    assert f"- `{seed[0]}`: DivergedError: non-finite loss nan" in text


def test_a_killed_sweep_parent_leaves_no_worker_alive(tmp_path: Path) -> None:
    """The parent starts a long 'worker' through spawn_worker, then is SIGKILLed."""
    parent_code = (
        "import sys, time\n"
        "from ssl_geom.reproduce.process import spawn_worker\n"
        "child = spawn_worker([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, env=env
    )
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie may wait for a reaper in containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_workers_below_one_are_refused_before_anything_runs(
    tiny: TableSpec, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"workers must be >= 1 .*got 0"):
        sweep_module.sweep("tiny", "local", tmp_path / "results", workers=0)
    assert not (tmp_path / "results").exists()
    with pytest.raises(SystemExit):
        reproduce_main(["tiny", "--workers", "0", "--out", str(tmp_path / "results")])
    assert not (tmp_path / "results").exists()


def test_an_unreadable_record_is_reported_before_training_and_left_out_of_the_table(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Issue 24 item 7: a truncated record made the dry run and the sweep fail with a bare
    JSONDecodeError, in a sweep with work to do only after every run had trained, and no table
    was written. Now the file is named up front, the other runs train, and the table counts
    it as left out."""
    table = _one_seed(tiny, monkeypatch, seeds=(0, 1))
    seed = {s.seed: s for s in plan_runs(table, table.profiles["local"]) if s.row.key == "present"}
    out = tmp_path / "results"
    truncated = out / "records" / f"{seed[1].run_id}.json"
    truncated.parent.mkdir(parents=True)
    truncated.write_text(spec_record(seed[1], 70.0, config=seed[1].config).to_json()[:120])

    listing = sweep_module.dry_run("tiny", "local", out)
    assert f"  bad   {seed[1].run_id}" in listing and f"  todo  {seed[0].run_id}" in listing
    assert f"{truncated}: not readable as JSON" in listing

    def worker(pool, spec, log):
        print(f"training {spec.run_id}", flush=True)
        write_record(pool.out_dir / "records", spec_record(spec, 40.0, config=spec.config))
        return _Exited(0)

    monkeypatch.setattr(sweep_module.WorkerPool, "start", worker)
    result = sweep_module.sweep("tiny", "local", out)
    printed = capsys.readouterr().out
    assert printed.index(f"{truncated}: not readable as JSON") < printed.index("training")
    assert (result.finished, result.failed) == (1, [])  # seed 1 is not retrained over the file
    assert [f.path for f in result.unreadable] == [truncated]
    text = result.table_path.read_text()
    assert "40.0 (n=1)" in text  # seed 0 only
    assert "1 files left out: they are not valid records" in text
    assert f"- `{truncated}`: not readable as JSON" in text
    with pytest.raises(UnreadableRecordError, match=f"{truncated}: not readable as JSON"):
        load_records(out / "records")


def _unwritable_out(tmp_path: Path) -> Path:
    """An output folder no process can create: below a read-only folder, or (as root, who may
    write anywhere permissions apply) below /sys, where even root may not create folders."""
    if os.geteuid() != 0:
        parent = tmp_path / "read_only"
        parent.mkdir()
        parent.chmod(0o555)
        return parent / "results"
    return Path("/sys/ssl_geom_results")


def _nothing_may_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may run before the arguments are checked")

    monkeypatch.setattr(sweep_module, "check_data", refuse)
    monkeypatch.setattr(sweep_module.WorkerPool, "start", refuse)


def test_an_unwritable_out_is_refused_before_anything_runs(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 item 9: every worker started, failed, and three tracebacks followed."""
    _nothing_may_run(monkeypatch)
    out = _unwritable_out(tmp_path)
    with pytest.raises(ValueError, match=f"cannot write to {out} .*Pass a writable folder"):
        sweep_module.sweep("tiny", "local", out)
    with pytest.raises(SystemExit, match=f"^error: the sweep cannot write to {out} "):
        reproduce_main(["tiny", "--out", str(out)])
    assert not out.exists()


def test_a_limit_below_one_is_refused_before_anything_runs(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Issue 24 item 10: --limit -1 ran all but the last run and rewrote the table."""
    _nothing_may_run(monkeypatch)
    out = tmp_path / "results"
    for limit in (0, -1):
        with pytest.raises(ValueError, match=f"limit must be >= 1 .*got {limit}"):
            sweep_module.sweep("tiny", "local", out, limit=limit)
        with pytest.raises(SystemExit):
            reproduce_main(["tiny", "--limit", str(limit), "--out", str(out)])
        assert (
            f"--limit must be >= 1 (the first N planned runs), got {limit}"
            in capsys.readouterr().err
        )
    assert not out.exists()
