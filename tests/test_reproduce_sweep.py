"""The reproduce machinery end to end on a tiny grid: real training runs on fake MNIST files.

One row trains (SimCLR on a 64-image fake MNIST written in the real IDX format, 2 epochs),
one row points at an empty folder (a "data not found" note), for two seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.reproduce import runner
from ssl_geom.reproduce import sweep as sweep_module
from ssl_geom.reproduce.plan import plan_runs
from ssl_geom.reproduce.records import load_records
from ssl_geom.reproduce.tables import TABLES, Profile, Row, TableSpec

_CONFIG = """
seed_everything: 0
trainer:
  max_epochs: 2
  accelerator: cpu
  devices: 1
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 1
model:
  class_path: ssl_geom.methods.SimCLR
  init_args:
    backbone: hssl_mnist_plain
    projector_hidden_dims: []
    projector_out_dim: 16
    optimizer: adam
    lr: 1.0e-3
    warmup_epochs: 0
data:
  class_path: ssl_geom.data.MNISTDataModule
  init_args:
    root: {root}
    batch_size: 32
    num_workers: 0
    train_views: simclr
"""


def _tiny_table(tmp_path: Path) -> TableSpec:
    data_root = write_fake_dataset("mnist", tmp_path / "data", n_train=64, n_test=32)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "simclr_present.yaml").write_text(_CONFIG.format(root=data_root))
    (experiments / "simclr_absent.yaml").write_text(_CONFIG.format(root=tmp_path / "nowhere"))
    rows = (
        Row("MNIST", "SimCLR aug.", "CNN", "present"),
        Row("MNIST", "SimCLR aug.", "CNN", "absent"),
    )
    return TableSpec(
        name="tiny",
        title="tiny grid",
        methods=("SimCLR",),
        method_prefix={"SimCLR": "simclr"},
        rows=rows,
        reference={("present", "SimCLR"): (50.0, 1.0)},
        citation="test fixture",
        curves=("probe/acc",),
        profiles={"local": Profile("local", seeds=(0, 1), overrides=(), description="tiny")},
        experiments_dir=experiments,
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


def test_interrupted_run_resumes_from_its_last_checkpoint(
    tiny: TableSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.pytorch import Callback

    class CrashAtSecondEpoch(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            if trainer.current_epoch == 1:
                raise _Crash("killed after the first epoch's checkpoint")

    spec = plan_runs(tiny, tiny.profiles["local"])[0]
    out = tmp_path / "results"
    build = runner._build

    def crashing_build(*args, **kwargs):
        cli = build(*args, **kwargs)
        cli.trainer.callbacks.append(CrashAtSecondEpoch())
        return cli

    monkeypatch.setattr(runner, "_build", crashing_build)
    with pytest.raises(_Crash):
        runner.run_one(spec, out)
    assert not (out / "records").exists() or not list((out / "records").iterdir())
    checkpoint = runner.latest_checkpoint(runner.run_dir(out, spec))
    assert checkpoint is not None

    monkeypatch.setattr(runner, "_build", build)
    record = runner.run_one(spec, out)
    assert record.settings["resumed_from"] == str(checkpoint)
    assert record.epochs == 2
    # Only the epoch after the resume point was trained (and validated) again.
    assert [h["epoch"] for h in record.history] == [1.0]
    assert json.loads((out / "records" / f"{spec.run_id}.json").read_text())["seed"] == 0


def test_submitit_local_executor_runs_a_job(tiny: TableSpec, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = sweep_module.sweep(
        "tiny",
        "local",
        out,
        launcher="submitit",
        submitit_options=sweep_module.SubmititOptions(cluster="local", timeout_min=10),
        limit=1,
    )
    assert (result.finished, result.failed) == (1, [])
    (record,) = load_records(out / "records")
    assert record.seed == 0 and record.epochs == 2
    assert any((out / "submitit").iterdir())
