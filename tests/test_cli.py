"""The ``lightning`` CLI: subclass mode, saved config, TensorBoard, progress bar, resuming.

Runs use a tiny YAML (``tiny_cnn`` + ``SyntheticSSLData``, 2 steps per epoch) written into
the test's folder, the same way a user's ``experiments/*.yaml`` is read.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from ssl_geom.analysis import read_scalars
from ssl_geom.checkpoint_file import CheckpointFileError, read_checkpoint
from ssl_geom.checkpoint_io import AtomicCheckpointIO
from ssl_geom.cli import build_cli, main, parse_config
from ssl_geom.exception_checkpoint import ExceptionCheckpoint
from ssl_geom.methods import MoCoV2
from ssl_geom.step_memory import SMOKE_TEST, activation_bytes, cpu_fit_warning

REPO = Path(__file__).resolve().parents[1]

TINY_MOCO = {
    "seed_everything": 0,
    "trainer": {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "limit_val_batches": 0,
        "enable_model_summary": False,
    },
    "model": {
        "class_path": "ssl_geom.methods.MoCoV2",
        "init_args": {
            "backbone": "tiny_cnn",
            "projector_hidden_dims": [16],
            "projector_out_dim": 8,
            "queue_size": 48,
            "ema_momentum": 0.9,
            "symmetric": True,  # 16 keys per step, so the queue wraps within the run
            "bn_splits": 4,  # key BatchNorm sub-batches of 2 samples at batch 8
            "optimizer": "adam",
            "lr": 0.01,
            "warmup_steps": 1,
        },
    },
    "data": {
        "class_path": "tests.methods_testing.SyntheticSSLData",
        "init_args": {"batch_size": 8, "n": 16},
    },
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_MOCO))
    return path


def test_console_scripts_point_at_the_cli() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["lightning"] == "ssl_geom.cli:main"
    assert scripts["ssl-geom"] == "ssl_geom.cli:main"


def test_fit_saves_the_resolved_config_logs_to_tensorboard_and_shows_rich_progress(
    config: Path, tmp_path: Path
) -> None:
    cli = build_cli(["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"])
    assert isinstance(cli.model, MoCoV2)
    # Linked from the DataModule, not written in the YAML.
    assert (cli.model.hparams.num_classes, cli.model.hparams.batch_size) == (4, 8)
    assert isinstance(cli.trainer.logger, TensorBoardLogger)
    assert any(isinstance(c, RichProgressBar) for c in cli.trainer.callbacks)
    log_dir = Path(cli.trainer.log_dir)
    saved = yaml.safe_load((log_dir / "config.yaml").read_text())
    assert saved["model"]["init_args"]["queue_size"] == 48
    assert saved["data"]["class_path"] == "tests.methods_testing.SyntheticSSLData"
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert (log_dir / "checkpoints" / "last.ckpt").exists()


def test_progress_bar_can_be_switched_off(config: Path, tmp_path: Path) -> None:
    cli = build_cli(
        ["--config", str(config), "--trainer.enable_progress_bar=false"],
        run=False,
    )
    assert not any(isinstance(c, RichProgressBar) for c in cli.trainer.callbacks)


def test_resume_with_ckpt_path_matches_an_uninterrupted_run(config: Path, tmp_path: Path) -> None:
    # Run A: 2 epochs of 2 steps, checkpoint after each epoch. Run B: resume from A's
    # epoch-0 checkpoint. Equal results need the weights, the Adam moments, the
    # schedule position and MoCo's queue + pointer all restored.
    quiet = ["--trainer.enable_progress_bar=false"]
    a = build_cli(
        [
            "fit",
            "--config",
            str(config),
            *quiet,
            f"--trainer.default_root_dir={tmp_path / 'a'}",
            "--checkpoint.save_top_k=-1",
            "--checkpoint.every_n_epochs=1",
        ]
    )
    ckpt = next(Path(a.trainer.log_dir, "checkpoints").glob("epoch=0-step=2.ckpt"))
    saved = read_checkpoint(ckpt)  # our own checkpoints load with weights_only=True
    # 2 steps of 16 keys
    assert int(saved["state_dict"]["momentum_encoder.memory_bank.bank_ptr"]) == 2 * 16
    b = build_cli(
        [
            "fit",
            "--config",
            str(config),
            *quiet,
            f"--trainer.default_root_dir={tmp_path / 'b'}",
            f"--ckpt_path={ckpt}",
        ]
    )
    assert b.trainer.global_step == a.trainer.global_step == 4
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    for name, value in state_a.items():
        assert torch.allclose(value.float(), state_b[name].float(), atol=1e-6), name
    assert int(state_b["momentum_encoder.memory_bank.bank_ptr"]) == 4 * 16 % 48  # wrapped
    opt_a, opt_b = (t.trainer.optimizers[0].state_dict()["state"] for t in (a, b))
    for key, moments in opt_a.items():
        for name, value in moments.items():
            assert torch.allclose(torch.as_tensor(value), torch.as_tensor(opt_b[key][name])), name
    sched_a, sched_b = (t.trainer.lr_scheduler_configs[0].scheduler for t in (a, b))
    assert sched_a.last_epoch == sched_b.last_epoch == 4
    assert sched_a.get_last_lr() == sched_b.get_last_lr()


def test_validate_and_test_subcommands_report_probe_accuracy(config: Path, tmp_path: Path) -> None:
    fit = build_cli(
        ["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path / 'fit'}"]
    )
    ckpt = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    for subcommand, metric in (("validate", "probe/acc"), ("test", "probe/test_acc")):
        cli = build_cli(
            [
                subcommand,
                "--config",
                str(config),
                "--trainer.limit_val_batches=2",
                f"--trainer.default_root_dir={tmp_path / subcommand}",
                f"--ckpt_path={ckpt}",
            ]
        )
        assert 0.0 <= float(cli.trainer.callback_metrics[metric]) <= 1.0


def test_print_config_shows_the_resolved_config(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(config), "--model.init_args.queue_size=32", "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "ssl_geom.methods.MoCoV2"
    assert printed["model"]["init_args"]["queue_size"] == 32
    assert printed["model"]["init_args"]["temperature"] == 0.2  # MoCoV2's default, resolved


def test_parse_config_validates_without_building(config: Path) -> None:
    parsed = parse_config(["--config", str(config)])
    assert parsed.model.init_args.ema_momentum == 0.9
    with pytest.raises(SystemExit):  # jsonargparse reports the unknown key and exits
        parse_config(["--config", str(config), "--model.init_args.not_an_arg=1"])


def test_unknown_backbone_fails_at_construction_naming_the_choices(config: Path) -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet9000'; registered backbones:"):
        build_cli(["--config", str(config), "--model.init_args.backbone=resnet9000"], run=False)


def test_n_split_not_dividing_the_data_batch_fails_at_construction() -> None:
    care = REPO / "experiments" / "care_simclr_fashion.yaml"
    with pytest.raises(ValueError, match="n_split=16 must divide the batch size 100"):
        build_cli(
            ["--config", str(care), "--data.init_args.batch_size=100", "--data.init_args.root=."],
            run=False,
        )


@pytest.fixture(scope="module")
def moco_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One epoch of the tiny MoCo run: ``(its config file, its last.ckpt)``."""
    folder = tmp_path_factory.mktemp("moco")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_MOCO))
    cli = build_cli(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={folder}",
        ]
    )
    return config, Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"


def _resume(config: Path, ckpt: Path, root: Path, *extra: str):
    return build_cli(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={root}",
            f"--ckpt_path={ckpt}",
            *extra,
        ]
    )


def test_resume_refuses_a_checkpoint_of_another_method_class(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    _, ckpt = moco_checkpoint
    care = {
        **TINY_MOCO,
        "model": {
            "class_path": "ssl_geom.methods.CARE",
            "init_args": {"backbone": "tiny_cnn", "projector_out_dim": 8, "n_split": 2},
        },
    }
    config = tmp_path / "care.yaml"
    config.write_text(yaml.safe_dump(care))
    # Plain LightningCLI would build MoCoV2 from the checkpoint and train it silently.
    with pytest.raises(
        ValueError,
        match=r"class_path: checkpoint 'ssl_geom.methods.MoCoV2', config 'ssl_geom.methods.CARE'",
    ):
        _resume(config, ckpt, tmp_path)
    assert not list(tmp_path.rglob("*.ckpt"))  # refused before anything ran


def test_resume_refuses_a_changed_projector_naming_the_key(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    config, ckpt = moco_checkpoint
    with pytest.raises(ValueError, match=r"- projector_out_dim: checkpoint 8, config 16\n") as info:
        _resume(config, ckpt, tmp_path, "--model.init_args.projector_out_dim=16")
    assert "lr:" not in str(info.value)  # only the differing keys are listed
    assert "--allow_changed_config true" in str(info.value)


def test_allow_changed_config_resumes_with_the_configs_values(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    config, ckpt = moco_checkpoint
    with pytest.raises(ValueError, match=r"- lr: checkpoint 0.01, config 0.05"):
        _resume(config, ckpt, tmp_path / "refused", "--model.init_args.lr=0.05")
    with pytest.warns(UserWarning, match=r"- lr: checkpoint 0.01, config 0.05"):
        cli = _resume(
            config,
            ckpt,
            tmp_path / "allowed",
            "--model.init_args.lr=0.05",
            "--allow_changed_config=true",
        )
    assert cli.model.hparams.lr == 0.05  # the config's value, not the checkpoint's
    assert cli.trainer.global_step == 4  # resumed at step 2, trained epoch 1


def _logged_lr(cli) -> dict[int, float]:
    """The ``lr`` the method logged at each optimizer step, read back from TensorBoard."""
    scalars = read_scalars(cli.trainer.log_dir)["lr"]
    return {
        int(step): float(value) for step, value in zip(scalars.steps, scalars.values, strict=True)
    }


def test_extending_a_finished_run_is_refused_before_training_naming_max_epochs(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    """Issue 24 item 1: ``--trainer.max_epochs 3 --ckpt_path <1-epoch run>`` trained every
    added step at lr 0 (the schedule's length comes back from the checkpoint)."""
    config, ckpt = moco_checkpoint
    with pytest.raises(ValueError, match=r"- trainer.max_epochs: checkpoint 1, config 3\n") as info:
        _resume(config, ckpt, tmp_path, "--trainer.max_epochs=3")
    assert "--allow_changed_config true" in str(info.value)
    assert not list(tmp_path.rglob("*.ckpt"))

    # A checkpoint that predates the recorded training length: the restored schedule itself
    # is compared with the one the config builds, before any step.
    old = read_checkpoint(ckpt)
    del old["callbacks"]["ResumeCheck"]
    torch.save(old, tmp_path / "old.ckpt")
    schedule = r"- lr schedule CosineWarmupScheduler max_epochs: checkpoint 2, config 6\n"
    with pytest.raises(ValueError, match=schedule):
        _resume(config, tmp_path / "old.ckpt", tmp_path / "old", "--trainer.max_epochs=3")
    assert not list((tmp_path / "old").rglob("*.ckpt"))  # no step, no on_exception.ckpt


def test_an_allowed_extension_trains_on_the_configs_schedule_for_the_new_length(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    """With --allow_changed_config the schedule is rebuilt for 3 epochs and continues from
    the checkpoint's step 2: the lr of steps 2-5 is that of a fresh 3-epoch run (the same
    warm-up + cosine, independently built by its own configure_optimizers), not the old
    schedule's final 0."""
    config, ckpt = moco_checkpoint
    logging = ["--trainer.max_epochs=3", "--trainer.log_every_n_steps=1"]
    fresh = build_cli(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.enable_progress_bar=false",
            *logging,
            f"--trainer.default_root_dir={tmp_path / 'fresh'}",
        ]
    )
    with pytest.warns(UserWarning, match=r"lr of each param group at this step: \[0\.0, "):
        extended = _resume(
            config, ckpt, tmp_path / "extended", *logging, "--allow_changed_config=true"
        )
    expected = _logged_lr(fresh)
    resumed = _logged_lr(extended)
    assert sorted(resumed) == [2, 3, 4, 5]
    assert resumed == {step: expected[step] for step in resumed}
    assert resumed[2] > 0.0
    saved = read_checkpoint(Path(extended.trainer.log_dir) / "checkpoints" / "last.ckpt")
    assert saved["callbacks"]["ResumeCheck"]["training_length"]["max_epochs"] == 3
    (change,) = saved["callbacks"]["ResumeCheck"]["config_changes"]
    assert change["global_step"] == 2
    assert "trainer.max_epochs: checkpoint 1, config 3" in change["changes"]


def test_allow_changed_config_trains_at_the_new_lr_and_records_it(
    config: Path, tmp_path: Path
) -> None:
    """Issue 24 item 2: the optimizer state restored from the checkpoint kept the old lr while
    the new checkpoint's hyper-parameters recorded the new one. Resumed from epoch 0 with lr
    0.05, steps 2-3 must log the lr of a fresh run at 0.05 (same schedule), and the new
    checkpoint must hold 0.05 wherever it records an lr."""
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.log_every_n_steps=1"]
    every_epoch = ["--checkpoint.save_top_k=-1", "--checkpoint.every_n_epochs=1"]
    old = build_cli(
        [
            "fit",
            "--config",
            str(config),
            *quiet,
            *every_epoch,
            f"--trainer.default_root_dir={tmp_path / 'old'}",
        ]
    )
    new = build_cli(
        [
            "fit",
            "--config",
            str(config),
            *quiet,
            "--model.init_args.lr=0.05",
            f"--trainer.default_root_dir={tmp_path / 'new'}",
        ]
    )
    ckpt = next(Path(old.trainer.log_dir, "checkpoints").glob("epoch=0-step=2.ckpt"))
    changed = _resume(
        config,
        ckpt,
        tmp_path / "changed",
        *quiet[1:],
        "--model.init_args.lr=0.05",
        "--allow_changed_config=true",
    )
    resumed = _logged_lr(changed)
    assert sorted(resumed) == [2, 3]
    assert resumed == {step: _logged_lr(new)[step] for step in resumed}
    assert resumed[2] != _logged_lr(old)[2]
    saved = read_checkpoint(Path(changed.trainer.log_dir) / "checkpoints" / "last.ckpt")
    assert saved["hyper_parameters"]["lr"] == 0.05
    assert {g["initial_lr"] for g in saved["optimizer_states"][0]["param_groups"][:2]} == {0.05}
    assert saved["lr_schedulers"][0]["base_lrs"][:2] == [0.05, 0.05]
    (change,) = saved["callbacks"]["ResumeCheck"]["config_changes"]
    assert "lr: checkpoint 0.01, config 0.05" in change["changes"]


def test_ckpt_path_that_is_not_a_checkpoint_is_named(config: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=f"not a checkpoint file: {bogus}"):
        build_cli(["fit", "--config", str(config), f"--ckpt_path={bogus}"])


def test_ckpt_path_lightning_did_not_write_or_of_another_class_is_refused_even_when_allowed(
    moco_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    """Found probing issue 24: a backbone state dict as --ckpt_path passed the config check
    (it has no hyper-parameters) and ended in ``KeyError: 'pytorch-lightning_version'``; with
    --allow_changed_config a checkpoint of another class was loaded into the config's class
    (``Missing key(s) in state_dict``)."""
    config, ckpt = moco_checkpoint
    weights = tmp_path / "backbone.pt"
    torch.save(MoCoV2(backbone="tiny_cnn").backbone.state_dict(), weights)
    allowed = "--allow_changed_config=true"
    with pytest.raises(
        ValueError, match=f"--ckpt_path {weights} is not a checkpoint that Lightning"
    ):
        _resume(config, weights, tmp_path, allowed)
    care = {**TINY_MOCO, "model": {"class_path": "ssl_geom.methods.CARE", "init_args": {}}}
    care_config = tmp_path / "care.yaml"
    care_config.write_text(yaml.safe_dump(care))
    with pytest.raises(ValueError, match="--allow_changed_config cannot change the class"):
        _resume(care_config, ckpt, tmp_path, allowed)
    assert not list(tmp_path.rglob("*.ckpt"))


class StopWithError(Callback):
    """Raises before optimiser step ``at_step`` (a corrupt file or a NaN loss mid-epoch)."""

    def __init__(self, at_step: int = 3) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            raise RuntimeError("simulated failure mid-epoch")


def test_an_exception_mid_epoch_leaves_on_exception_ckpt_and_spares_last_ckpt(
    tmp_path: Path,
) -> None:
    failing = {
        **TINY_MOCO,
        "trainer": {
            **TINY_MOCO["trainer"],
            "callbacks": [{"class_path": "tests.test_cli.StopWithError"}],
        },
    }
    config = tmp_path / "failing.yaml"
    config.write_text(yaml.safe_dump(failing))
    folder = tmp_path / "ckpts"
    folder.mkdir()
    (folder / "on_exception.ckpt").write_bytes(b"an earlier run's file")
    args = ["fit", "--config", str(config), "--trainer.enable_progress_bar=false"]
    args += [f"--trainer.default_root_dir={tmp_path}", f"--checkpoint.dirpath={folder}"]
    with pytest.raises(RuntimeError, match="simulated failure"):
        build_cli(args)
    # Epoch 0 (steps 1-2) ended normally: last.ckpt is that state, not the failing one.
    assert read_checkpoint(folder / "last.ckpt")["global_step"] == 2
    assert read_checkpoint(folder / "on_exception-v1.ckpt")["global_step"] == 3
    assert (folder / "on_exception.ckpt").read_bytes() == b"an earlier run's file"


def test_the_exception_checkpoint_is_a_default_callback(config: Path) -> None:
    cli = build_cli(["--config", str(config)], run=False)
    assert sum(isinstance(c, ExceptionCheckpoint) for c in cli.trainer.callbacks) == 1


def test_a_global_batch_not_splitting_over_the_devices_fails_at_construction() -> None:
    care = REPO / "experiments" / "care_simclr_fashion.yaml"
    devices = ["--trainer.accelerator=cpu", "--trainer.devices=3", "--trainer.strategy=ddp"]
    # 128 is divisible by CARE's n_split=16 but not by 3 processes; nothing is read or run.
    with pytest.raises(ValueError, match=r"batch_size=128 is the global batch .* over the 3 "):
        args = ["--config", str(care), "--data.init_args.batch_size=128"]
        build_cli([*args, "--data.init_args.root=.", *devices], run=False)


def test_activation_bytes_counts_what_autograd_keeps_for_backward() -> None:
    """By hand, float32 (4 bytes) on 1 x 8 x 8 images: the conv keeps its input (64 values an
    image) and its weight (4 x 9), the ReLU its output (4 x 64 an image), the linear layer its
    input (256 an image) and its weight (3 x 256). Per image (64 + 256 + 256) x 4 = 2304 bytes;
    fixed (36 + 768) x 4 = 3216 bytes."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert activation_bytes(net.train(), (1, 8, 8)) == (2304, 3216)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_paper_config_resolved_to_the_cpu_says_so_with_an_estimate_and_the_smoke_test(
    tmp_path: Path,
) -> None:
    """Issue 24 item 11: care_cifar10.yaml with `accelerator: auto` on a machine without a
    GPU kept bf16-mixed; one step of the paper batch took over 20 minutes and 11 GB, with
    nothing saying why. The warning comes before the data is even read (here: missing)."""
    care = REPO / "experiments" / "care_cifar10.yaml"
    args = ["fit", "--config", str(care), "--trainer.fast_dev_run=true"]
    args += [
        f"--data.init_args.root={tmp_path / 'nowhere'}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    with (
        pytest.warns(UserWarning, match="sized for a GPU but runs on the CPU") as warned,
        pytest.raises(FileNotFoundError, match="CIFAR-10 not found"),
    ):
        build_cli(args)
    (message,) = [str(w.message) for w in warned if "sized for a GPU" in str(w.message)]
    assert "in precision bf16-mixed" in message
    assert "256 images x 3 views through resnet50_cifar" in message  # 2 SimCLR views + original
    assert "(an estimate:" in message
    assert SMOKE_TEST in message
    assert SMOKE_TEST == (
        "--trainer.precision 32-true --data.init_args.batch_size 32 --trainer.fast_dev_run true"
    )
    # The number is the traced activations scaled to the batch, plus 16 bytes a parameter.
    model = build_cli(["--config", str(care), f"--data.init_args.root={tmp_path}"], run=False).model
    per_image, fixed = activation_bytes(model.backbone, (3, 32, 32))
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    gib = (256 * 3 * per_image + fixed + 16 * parameters) / 2**30
    assert f"needs about {gib:.1f} GiB" in message


def test_the_small_cpu_configs_get_no_gpu_warning() -> None:
    cli = build_cli(["--config", str(REPO / "experiments" / "simclr_fashion.yaml")], run=False)
    assert cpu_fit_warning(cli.trainer, cli.model, cli.datamodule) is None


def test_checkpoints_are_written_whole_or_not_at_all(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found probing issue 24: Lightning's own save writes a temporary file in the system's temp
    folder and shutil.move-s it, which is a copy when that folder is on another file system; a
    job killed during the copy left a truncated last.ckpt. Simulated by a move that copies half
    the bytes and is then killed: Lightning's TorchCheckpointIO loses the previous checkpoint,
    the CLI's AtomicCheckpointIO keeps it (its own interruption point: before the rename)."""
    cli = build_cli(["--config", str(config), f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert type(cli.trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    path = tmp_path / "last.ckpt"
    previous = {"state_dict": {"w": torch.ones(1000)}, "global_step": 2}
    new = {"state_dict": {"w": torch.zeros(1000)}, "global_step": 4}

    def killed_copy(source: str, target: str) -> None:
        data = Path(source).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    def killed_before_rename(fd: int) -> None:
        raise KeyboardInterrupt

    for io_class, patch in (
        (TorchCheckpointIO, ("shutil.move", killed_copy)),
        (AtomicCheckpointIO, ("ssl_geom.io.os.fsync", killed_before_rename)),
    ):
        io_class().save_checkpoint(previous, path)
        with monkeypatch.context() as killed, pytest.raises(KeyboardInterrupt):
            killed.setattr(*patch)
            io_class().save_checkpoint(new, path)
        if io_class is TorchCheckpointIO:
            with pytest.raises(CheckpointFileError, match="not a checkpoint file"):
                read_checkpoint(path)
        else:
            assert read_checkpoint(path)["global_step"] == 2
