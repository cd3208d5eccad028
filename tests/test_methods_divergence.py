"""A diverged run fails: DivergedError (step, loss terms, lr) before any checkpoint is written.

Issue 13.1: ``--model.init_args.lr 1e30`` used to finish with exit code 0 and a NaN
``last.ckpt``. The CLI runs use ``tiny_cnn`` + ``SyntheticSSLData`` (4 steps per epoch).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from ssl_geom.cli import build_cli
from ssl_geom.methods import DivergedError
from ssl_geom.methods.divergence import DivergenceMonitor
from tests.test_cli import TINY_MOCO

TINY_SIMCLR = {
    "seed_everything": 0,
    # test_cli's tiny CPU run; no console or TensorBoard output (only the checkpoint counts).
    "trainer": {**TINY_MOCO["trainer"], "enable_progress_bar": False, "logger": False},
    "model": {
        "class_path": "ssl_geom.methods.SimCLR",
        "init_args": {
            "backbone": "tiny_cnn",
            "projector_hidden_dims": [16],
            "projector_out_dim": 8,
            "optimizer": "adam",
            "lr": 0.01,
            "lr_schedule": "constant",
            "warmup_steps": 0,
        },
    },
    "data": {
        "class_path": "tests.methods_testing.SyntheticSSLData",
        "init_args": {"batch_size": 8, "n": 32},
    },
}


def test_monitor_reports_the_first_non_finite_step_with_its_terms_and_lr() -> None:
    monitor = DivergenceMonitor()
    one = torch.tensor(1.0)
    monitor.record({"train/loss": one, "train/x": one}, step=10, lr=0.1)
    monitor.check()  # healthy: nothing raised, a new window starts
    assert monitor.pending == 0
    monitor.record({"train/loss": one, "train/x": one}, step=11, lr=0.2)
    monitor.record({"train/loss": torch.tensor(math.inf), "train/x": one}, step=12, lr=0.3)
    monitor.record({"train/loss": torch.tensor(math.nan), "train/x": one}, step=13, lr=0.4)
    with pytest.raises(DivergedError, match=r"global step 12: .*train/loss=inf, train/x=1\b"):
        monitor.check()
    with pytest.raises(DivergedError, match=r"lr=0\.3\b"):
        monitor.check()  # the record is kept: a later check (e.g. a checkpoint) raises too


def test_float64_values_beyond_float32_range_are_not_divergence() -> None:
    monitor = DivergenceMonitor()
    monitor.record({"train/loss": torch.tensor(1e300, dtype=torch.float64)}, step=0, lr=1.0)
    monitor.check()


def test_lr_1e30_fails_the_cli_run_and_leaves_the_previous_last_ckpt_untouched(
    tmp_path: Path,
) -> None:
    config = tmp_path / "simclr.yaml"
    config.write_text(yaml.safe_dump(TINY_SIMCLR))
    ckpts = tmp_path / "ckpts"
    common = [
        "fit",
        "--config",
        str(config),
        f"--checkpoint.dirpath={ckpts}",
        # Without the version counter a new run writes last.ckpt again (the overwrite
        # the issue reports), instead of last-v1.ckpt.
        "--checkpoint.enable_version_counter=false",
    ]
    # A healthy run is unaffected and saves last.ckpt.
    healthy = build_cli([*common, f"--trainer.default_root_dir={tmp_path / 'healthy'}"])
    assert healthy.trainer.global_step == 8
    last = ckpts / "last.ckpt"
    before = last.read_bytes()
    files_before = sorted(p.name for p in ckpts.iterdir())
    with pytest.raises(DivergedError, match=r"global step \d+: .*train/loss=nan.*lr=1e\+30"):
        build_cli(
            [*common, f"--trainer.default_root_dir={tmp_path / 'nan'}", "--model.init_args.lr=1e30"]
        )
    assert last.read_bytes() == before
    assert sorted(p.name for p in ckpts.iterdir()) == files_before


def test_the_periodic_check_stops_the_run_before_the_epoch_ends(tmp_path: Path) -> None:
    config = tmp_path / "simclr.yaml"
    config.write_text(yaml.safe_dump(TINY_SIMCLR))
    args = [
        "--config",
        str(config),
        f"--trainer.default_root_dir={tmp_path}",
        "--model.init_args.lr=1e30",
        "--model.init_args.divergence_check_every_n_steps=1",
    ]
    cli = build_cli(args, run=False)
    with pytest.raises(DivergedError) as raised:
        cli.trainer.fit(cli.model, cli.datamodule)
    # Checked after every step: it stops at the first non-finite step, mid-epoch 0.
    step = int(str(raised.value).split("global step ")[1].split(":")[0])
    assert cli.trainer.global_step == step + 1 < 4
