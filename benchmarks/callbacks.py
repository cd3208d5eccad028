"""Cost of the geometry callbacks: epoch time with all of them at their defaults vs none.

Setup: SimCLR (lightly's ``NTXentLoss``, temperature 0.5) with a small CNN ``backbone`` and a
linear ``projection_head`` (the geometry paper's projector, which FVU needs at its defaults)
defined here, trained on Fashion-MNIST through ``ssl_geom.data.MNISTDataModule(variant=
"fashion")`` (all 60,000 training images by default, validation on the 10,000 test images
with a feature-norm readout as a stand-in for an online probe). One epoch per ``fit``; the two
arms alternate (none, all, all, none, ...) in the same process so drifts in machine speed hit
both. Reported: median epoch time per arm, the overhead ``all / none - 1``, and the time the
callbacks themselves took inside each "all" epoch (timed around their hook), a less noisy
estimate of the same overhead.

Usage::

    python benchmarks/callbacks.py                        # full: 60,000 images, 3 repeats
    python benchmarks/callbacks.py --quick                 # tiny run to check it works
    python benchmarks/callbacks.py --max-train-samples 20000 --json out.json
    python benchmarks/callbacks.py --max-train-samples 20000 --repeats 2 --profiler simple

Needs Fashion-MNIST in ``/usr/share/datasets/fashion-mnist`` (``apt-get install
dataset-fashion-mnist``) or under ``--root``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightly.loss import NTXentLoss
from quiet_trainer import quiet_trainer
from torch import Tensor, nn

from ssl_geom.callbacks import (
    FractionUnexplainedVariance,
    KNNAccuracy,
    LabelMatch,
    ProjectorRank,
    RelativeEquivariance,
    WahbaError,
)
from ssl_geom.data import MNISTDataModule

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class SmallSimCLR(L.LightningModule):
    """A user's own SimCLR module: lightly-style ``backbone`` + ``projection_head``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            *_block(1, 32, stride=2),
            *_block(32, 64, stride=2),
            *_block(64, 128, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.projection_head = nn.Linear(128, 64, bias=False)
        self.criterion = NTXentLoss(temperature=0.5)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        (x1, x2), _ = batch
        z1 = self.projection_head(self.backbone(x1))
        z2 = self.projection_head(self.backbone(x2))
        loss = self.criterion(z1, z2)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, _ = batch
        self.log("val/feature_norm", self.backbone(x).norm(dim=1).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class EpochTimer(L.Callback):
    """Wall time from the start of the training epoch to its end (validation included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class HookTimer(L.Callback):
    """Pair of callbacks placed around the geometry callbacks; times their validation hook."""

    def __init__(self, record: list[float], is_end: bool) -> None:
        self.record = record
        self.is_end = is_end

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.is_end:
            self.record[-1] = time.perf_counter() - self.record[-1]
        else:
            self.record.append(time.perf_counter())


def geometry_callbacks() -> list[L.Callback]:
    """Every callback of ssl_geom.callbacks at its defaults."""
    return [
        ProjectorRank(),
        WahbaError(),
        RelativeEquivariance(),
        FractionUnexplainedVariance(),
        LabelMatch(),
        KNNAccuracy(),
    ]


def run_epoch(
    datamodule: MNISTDataModule,
    with_callbacks: bool,
    limit: int | float,
    hooks: list[float],
    profiler: str | None = None,
) -> float:
    """Seconds of one training epoch (with validation) of a fresh model.

    ``profiler="simple"`` prints Lightning's per-hook times after the fit, so each
    callback's share can be checked against the epoch-time difference.
    """
    torch.manual_seed(0)
    timer = EpochTimer()
    callbacks: list[L.Callback] = []
    if with_callbacks:
        callbacks = [HookTimer(hooks, False), *geometry_callbacks(), HookTimer(hooks, True)]
    trainer = quiet_trainer(
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_train_batches=limit,
        callbacks=[*callbacks, timer],
        profiler=profiler,
    )
    trainer.fit(SmallSimCLR(), datamodule=datamodule)
    return timer.seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="Fashion-MNIST folder (default: Debian's)")
    parser.add_argument("--max-train-samples", type=int, default=None, help="default: all")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per arm")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="tiny run (checks the script)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profiler", choices=("simple",), default=None, help="print per-hook times per epoch"
    )
    args = parser.parse_args()
    if args.root is None and not FASHION_DIR.is_dir():
        raise SystemExit(
            f"Fashion-MNIST not found in {FASHION_DIR}: apt-get install dataset-fashion-mnist, "
            "or pass --root"
        )
    limit: int | float = 1.0
    if args.quick:
        args.max_train_samples, args.repeats, limit = 2048, 1, 2

    datamodule = MNISTDataModule(
        root=args.root,
        variant="fashion",
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        max_train_samples=args.max_train_samples,
    )
    run_epoch(datamodule, True, 2, [])  # warm-up: file reading, worker start, lazy imports
    times: dict[str, list[float]] = {"none": [], "all": []}
    hooks: list[float] = []
    for repeat in range(args.repeats):
        order = ("none", "all") if repeat % 2 == 0 else ("all", "none")
        for arm in order:
            seconds = run_epoch(datamodule, arm == "all", limit, hooks, args.profiler)
            times[arm].append(seconds)
            print(f"repeat {repeat} {arm:4s}: {seconds:7.2f} s/epoch", flush=True)

    none, every = statistics.median(times["none"]), statistics.median(times["all"])
    hook = statistics.median(hooks)
    results = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_samples": len(datamodule.source("ssl_train")),
        "seconds_per_epoch": times,
        "callback_seconds_per_epoch": hooks,
        "median_none_s": none,
        "median_all_s": every,
        "overhead_epoch_ratio": every / none - 1,
        "overhead_callback_time_ratio": hook / none,
    }
    print(
        f"train samples {results['train_samples']}: none {none:.2f} s, all callbacks "
        f"{every:.2f} s per epoch -> overhead {100 * results['overhead_epoch_ratio']:+.1f}% "
        f"(callbacks' own time {hook:.2f} s = {100 * results['overhead_callback_time_ratio']:.1f}%"
        " of an epoch without them)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
