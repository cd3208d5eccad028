"""``make demo``: CARE on real Fashion-MNIST in a few minutes on a CPU, with the geometry callbacks.

What it shows, end to end, with the pieces a researcher would use:

1. trains CARE (SimCLR base, CARE paper Sec. 3) from ``experiments/care_fashion.yaml`` through
   the same ``LightningCLI`` that ``lightning fit --config ...`` uses, with the geometry
   callbacks attached: projector rank, Wahba error and relative equivariance gamma_f over
   20 same-parameter augmentations of a fixed reference set, and weighted kNN accuracy;
2. trains the *Frozen* baseline (H-SSL Tables 1-2): the same randomly initialised backbone,
   where only the linear probe learns — what the SSL training must beat;
3. prints a summary: linear-probe (test split) and kNN accuracy of both, the geometry of the
   CARE embedding, and the command that opens the TensorBoard logs.

Logs go to a new version folder under ``--out`` (default ``runs/demo``); nothing there is
overwritten. ``--epochs`` / ``--max-train-samples`` shrink the budget (the tests use them).
The config is found in the checkout's ``experiments/`` or, for an installed package, in the
copy installed with it; ``--experiments DIR`` names another folder.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from ssl_geom.callbacks import KNNAccuracy, ProjectorRank, RelativeEquivariance, WahbaError
from ssl_geom.cli import build_cli
from ssl_geom.data.base import SSLDataModule
from ssl_geom.data.mnist import MNISTDataModule
from ssl_geom.methods import Frozen
from ssl_geom.reproduce.configs import experiments_dir

DEMO_CONFIG_NAME = "care_fashion.yaml"


def demo_config(experiments: Path | None = None) -> Path:
    """The demo's config in ``experiments`` (default: the checkout's or the installed copy)."""
    config = experiments_dir(experiments) / DEMO_CONFIG_NAME
    if not config.is_file():
        raise FileNotFoundError(f"the demo config {config} does not exist")
    return config


@dataclass(frozen=True)
class DemoResult:
    """The numbers the summary prints (accuracies in %, geometry as logged)."""

    care_probe_acc: float
    care_knn_acc: float
    frozen_probe_acc: float
    frozen_knn_acc: float
    wahba_mean: float
    wahba_max: float
    gamma_f: float
    projector_rank: float
    embedding_rank: float
    log_dir: Path
    wall_time_s: float


def _geometry_callbacks(with_projector: bool) -> list:
    # Every epoch: the demo runs a few epochs and shows each value, so the cost-based default
    # cadences (kNN every 10 epochs, Wahba and gamma_f every 20) would measure nothing.
    callbacks: list = [KNNAccuracy(every_n_epochs=1)]
    if with_projector:
        callbacks += [
            ProjectorRank(),
            WahbaError(every_n_epochs=1),
            RelativeEquivariance(every_n_epochs=1),
        ]
    return callbacks


def _metric(metrics: dict[str, float], name: str) -> float:
    if name not in metrics:
        raise KeyError(f"the demo run logged no {name!r}; logged: {sorted(metrics)}")
    return metrics[name]


def _fit_metrics(trainer: Trainer) -> dict[str, float]:
    """The last values logged while fitting (``trainer.test`` replaces them)."""
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def train_care(
    out: Path, overrides: list[str], experiments: Path | None = None
) -> tuple[Trainer, SSLDataModule, dict[str, float], float]:
    """CARE from the demo config with the geometry callbacks.

    Returns the trainer, the DataModule, the metrics logged during fit, and the probe's
    test accuracy.
    """
    cli = build_cli(
        [
            "--config",
            str(demo_config(experiments)),
            f"--trainer.default_root_dir={out}",
            *overrides,
        ],
        run=False,
    )
    # Lightning sets Trainer.callbacks at run time without declaring it on the class
    cli.trainer.callbacks.extend(_geometry_callbacks(with_projector=True))  # type: ignore[attr-defined]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fitted = _fit_metrics(cli.trainer)
    (tested,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    datamodule = cast(SSLDataModule, cli.datamodule)  # the demo config's MNISTDataModule
    return cli.trainer, datamodule, fitted, float(tested["probe/test_acc"])


def train_frozen(
    datamodule: SSLDataModule, care_trainer: Trainer, logger: TensorBoardLogger
) -> tuple[dict[str, float], float]:
    """The same backbone, randomly initialised and frozen; only the linear probe trains."""
    model = Frozen(
        backbone="hssl_mnist_translation",
        in_channels=datamodule.in_channels,
        num_classes=datamodule.num_classes,
        projector_hidden_dims=[],
        projector_out_dim=64,
        optimizer="adam",
        lr=1e-3,
        warmup_epochs=0,
    )
    trainer = Trainer(
        max_epochs=care_trainer.max_epochs,
        limit_train_batches=care_trainer.limit_train_batches,
        limit_val_batches=care_trainer.limit_val_batches,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[RichProgressBar(), *_geometry_callbacks(with_projector=False)],
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, datamodule=datamodule)
    fitted = _fit_metrics(trainer)
    (tested,) = trainer.test(model, datamodule=datamodule, verbose=False)
    return fitted, float(tested["probe/test_acc"])


def run_demo(
    out: Path,
    epochs: int | None = None,
    max_train_samples: int | None = None,
    experiments: Path | None = None,
) -> DemoResult:
    """Train CARE and the frozen baseline; return the summary numbers."""
    demo_config(experiments)  # names the folders looked at if the config is absent
    MNISTDataModule(variant="fashion").prepare_data()  # names the paths looked at if absent
    start = time.perf_counter()
    overrides = []
    if epochs is not None:
        overrides.append(f"--trainer.max_epochs={epochs}")
    if max_train_samples is not None:
        overrides.append(f"--data.max_train_samples={max_train_samples}")
    care_trainer, datamodule, care, care_acc = train_care(out / "care", overrides, experiments)
    logger = TensorBoardLogger(out, name="frozen")
    frozen, frozen_acc = train_frozen(datamodule, care_trainer, logger)
    return DemoResult(
        care_probe_acc=100 * care_acc,
        care_knn_acc=100 * _metric(care, "knn/acc"),
        frozen_probe_acc=100 * frozen_acc,
        frozen_knn_acc=100 * _metric(frozen, "knn/acc"),
        wahba_mean=_metric(care, "geometry/wahba_mean"),
        wahba_max=_metric(care, "geometry/wahba_max"),
        gamma_f=_metric(care, "geometry/gamma_f"),
        projector_rank=_metric(care, "geometry/projector_rank"),
        embedding_rank=_metric(care, "geometry/embedding_rank"),
        log_dir=out,
        wall_time_s=time.perf_counter() - start,
    )


def summary(result: DemoResult) -> str:
    """The text ``make demo`` ends with."""
    return "\n".join(
        [
            "",
            "ssl_geom demo: CARE (SimCLR base) on Fashion-MNIST, hssl_mnist_translation backbone",
            f"{'':22}{'linear probe':>14}{'kNN (k=200)':>14}",
            f"{'CARE':22}{result.care_probe_acc:>13.1f}%{result.care_knn_acc:>13.1f}%",
            f"{'Frozen random backbone':22}{result.frozen_probe_acc:>13.1f}%"
            f"{result.frozen_knn_acc:>13.1f}%",
            "",
            "Geometry of the CARE embedding (reference set, 20 same-parameter augmentations):",
            f"  Wahba error   mean {result.wahba_mean:.3f}   worst {result.wahba_max:.3f}"
            "   (0 = every augmentation acts as one rotation)",
            f"  gamma_f       {result.gamma_f:.3f}   (relative equivariance; lower = more equivariant)",
            f"  projector rank {result.projector_rank:.0f}   embedding covariance rank "
            f"{result.embedding_rank:.0f}",
            "",
            f"wall time {result.wall_time_s / 60:.1f} min",
            f"TensorBoard: tensorboard --logdir {result.log_dir}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssl_geom.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument(
        "--experiments", type=Path, default=None, help="folder holding care_fashion.yaml"
    )
    args = parser.parse_args(argv)
    try:
        result = run_demo(args.out, args.epochs, args.max_train_samples, args.experiments)
    except FileNotFoundError as error:
        raise SystemExit(f"error: {error}") from None
    print(summary(result))


if __name__ == "__main__":
    main()
