"""Every ``experiments/*.yaml`` parses, builds, and completes a ``fast_dev_run`` on fixtures.

The data root points at tiny datasets written in the real on-disk formats
(``ssl_geom.data.fake``); the configs are otherwise used as written except for what a CPU
test needs: ``num_workers=0``, one CPU device, fp32, and a small batch (CARE's ``n_split``
so the chunks still divide it, and two samples per MoCo key-BatchNorm sub-batch; CARE's
``equivariance_batch_size`` then becomes that batch). Costs
decide the suite:

- default: every config parses (class paths, argument names and types); every config
  whose backbone builds in well under a second is constructed (model, data, trainer) so
  ``__init__`` checks run; the small MNIST-sized configs complete a ``fast_dev_run``;
- slow: the ``fast_dev_run`` of all the others (the ResNets at CIFAR/STL10/ImageNet
  sizes), and building the CIFAR CNN (6 x CHW) baseline at all (~560M parameters).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from lightning.pytorch.trainer.states import TrainerStatus

from ssl_geom.cli import build_cli, parse_config
from ssl_geom.data.fake import write_fake_dataset

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Pretraining configs; the linear-evaluation ones (linear_*.yaml) need a checkpoint and are
# tested in tests/test_evaluation_configs.py.
CONFIGS = sorted(p for p in EXPERIMENTS.glob("*.yaml") if not p.name.startswith("linear_"))
# Fixture sizes: enough samples for the largest test batch (16) in every split.
FAKE = {
    "mnist": 32,
    "fashion": 32,
    "cifar10": 32,
    "cifar100": 32,
    "stl10": 16,
    "tiny_imagenet": 32,
    "imagenet100": 16,
}
HEAVY_BACKBONE_PARTS = ("hssl_resnet20_cnn6x",)
SMALL_DATA = ("ssl_geom.data.MNISTDataModule",)
LIGHT_BACKBONE_PREFIX = ("hssl_mnist_",)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def backbone_of(config: dict) -> str:
    return config["model"].get("init_args", {}).get("backbone", "")


def heavy_to_build(config: dict) -> bool:
    return any(part in backbone_of(config) for part in HEAVY_BACKBONE_PARTS)


def light_to_train(config: dict) -> bool:
    return config["data"]["class_path"] in SMALL_DATA and backbone_of(config).startswith(
        LIGHT_BACKBONE_PREFIX
    )


def _marks(config: dict, fast: bool) -> tuple:
    """Slow when ``fast`` is False; also heavy (one at a time) for the ~10 GB backbones."""
    if fast:
        return ()
    return (pytest.mark.slow, pytest.mark.heavy) if heavy_to_build(config) else (pytest.mark.slow,)


def marked(predicate) -> list:
    """``CONFIGS`` as pytest params, the ones ``predicate`` rejects marked slow (and heavy)."""
    return [pytest.param(p, id=p.name, marks=_marks(load(p), predicate(load(p)))) for p in CONFIGS]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake_data")
    for name, n in FAKE.items():
        write_fake_dataset(name, root, n_train=n, n_test=n)
    return root


def test_the_required_and_the_table_configs_exist() -> None:
    names = {p.name for p in CONFIGS}
    assert "care_cifar10.yaml" in names
    for prefix in ("simclr", "mocov2", "care_simclr", "care_mocov2"):
        for data in ("fashion", "cifar10", "cifar100", "stl10", "imagenet100"):
            assert f"{prefix}_{data}.yaml" in names
    for strength in ("large", "moderate", "small"):
        assert f"geometry_cifar100_{strength}.yaml" in names


def cpu_overrides(config: dict, root: Path, out: Path) -> list[str]:
    init = config["model"].get("init_args", {})
    batch = init.get("n_split", 4) if config["model"]["class_path"].endswith("CARE") else 4
    if "bn_splits" in init:  # MoCo's key BatchNorm sub-batches need >= 2 samples each
        batch = math.lcm(batch, 2 * init["bn_splits"])
    # A CPU batch is smaller than CARE's equivariance subset: the subset is the whole batch.
    subset = [f"--model.init_args.equivariance_batch_size={batch}"] * (
        init.get("equivariance_batch_size") is not None
    )
    return [
        *subset,
        f"--data.init_args.root={root}",
        "--data.init_args.num_workers=0",
        f"--data.init_args.batch_size={batch}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={out}",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses_with_its_classes_and_arguments(path: Path) -> None:
    written = load(path)
    parsed = parse_config(["--config", str(path)])
    assert parsed.model.class_path == written["model"]["class_path"]
    assert parsed.data.class_path == written["data"]["class_path"]
    for key, value in written["model"].get("init_args", {}).items():
        assert parsed.model.init_args[key] == value, key


@pytest.mark.parametrize("path", marked(lambda c: not heavy_to_build(c)))
def test_config_constructs(path: Path, data_root: Path, tmp_path: Path) -> None:
    config = load(path)
    cli = build_cli(["--config", str(path), *cpu_overrides(config, data_root, tmp_path)], run=False)
    assert type(cli.model).__name__ == config["model"]["class_path"].rsplit(".", 1)[1]
    assert cli.model.hparams.backbone == backbone_of(config)
    assert cli.model.hparams.batch_size == cli.datamodule.batch_size  # linked from the data


@pytest.mark.parametrize("path", marked(light_to_train))
def test_config_completes_a_fast_dev_run(path: Path, data_root: Path, tmp_path: Path) -> None:
    config = load(path)
    args = [*cpu_overrides(config, data_root, tmp_path), "--trainer.fast_dev_run=true"]
    cli = build_cli(["--config", str(path), *args], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.state.status == TrainerStatus.FINISHED
    assert cli.trainer.global_step == 1
    logged = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if v.numel() == 1}
    assert "train/loss" in logged or "probe/train_loss" in logged
    assert all(math.isfinite(v) for v in logged.values()), logged
