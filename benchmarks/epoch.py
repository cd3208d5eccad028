"""End-to-end epoch throughput: SimCLR through ``lightning fit``'s own path vs the step alone.

What runs: a CIFAR-10-format fixture of ``--n-images`` images (``ssl_geom.data.fake``, the real
pickle format) in a temporary folder, then ``ssl_geom.cli.build_cli`` on
``experiments/simclr_cifar10.yaml`` with overrides (backbone, batch size, precision, workers,
``augment_on``, 2 epochs, no validation) and ``trainer.fit``: the real DataModule, loader
workers, transforms, online probe, logger and Trainer a user gets. A callback times each epoch
from its first batch's start to its last batch's end (synchronised), so the checkpoint
written after the epoch is not counted; the last epoch is reported (the first one includes
worker start-up and cuDNN's algorithm search).

The step-only figure is ``benchmarks/training_step.py``'s Trainer run (a synthetic batch
resident on the device, so no loading or augmentation), measured in the same process, and
the ratio end-to-end / step-only says how much of the step's speed a user's epoch keeps.

Usage:
    python benchmarks/epoch.py --device cuda --n-images 50000 --batch-size 512 \
        --precision bf16-mixed --augment-on loader device
    python benchmarks/epoch.py --device cpu --n-images 2000 --batch-size 128 --workers 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from ssl_geom.cli import build_cli
from ssl_geom.data.fake import write_fake_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import training_step

CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "simclr_cifar10.yaml"


class EpochTimer(L.Callback):
    """Per-epoch wall time and batch count, first batch start to last batch end."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.batches: list[int] = []
        self._start = 0.0
        self._count = 0
        self._end = 0.0

    @staticmethod
    def _sync(pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._sync(pl_module)
        self._start, self._count = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._count += 1
        if self._count == trainer.num_training_batches:
            self._sync(pl_module)
            self._end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(self._end - self._start)
        self.batches.append(self._count)


def run_epochs(args: argparse.Namespace, root: Path, augment_on: str, work: Path) -> float:
    """Images per second of the last of ``args.epochs`` epochs through ``build_cli``."""
    overrides = [
        f"--config={CONFIG}",
        f"--trainer.accelerator={args.device}",
        "--trainer.devices=1",
        f"--trainer.precision={args.precision}",
        f"--trainer.max_epochs={args.epochs}",
        "--trainer.limit_val_batches=0",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={work / augment_on}",
        f"--model.init_args.backbone={args.backbone}",
        f"--data.init_args.root={root}",
        f"--data.init_args.batch_size={args.batch_size}",
        f"--data.init_args.num_workers={args.workers}",
        f"--data.init_args.augment_on={augment_on}",
    ]
    cli = build_cli(overrides, run=False)
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return timer.batches[-1] * args.batch_size / timer.seconds[-1]


def step_only(args: argparse.Namespace) -> float:
    """``training_step.py``'s Trainer images/s on a resident synthetic batch (same settings)."""
    ts_args = argparse.Namespace(
        backbone=args.backbone,
        dataset="cifar10",
        batch_size=args.batch_size,
        precision=args.precision,
        steps=args.step_steps,
        warmup=3,
        channels_last=args.device == "cuda",  # what the e2e run's model picks by default
        compile=False,
    )
    device = torch.device(args.device)
    seconds = training_step.time_lightning(
        ts_args, device, lambda: training_step.SimCLR(**training_step.model_kwargs(ts_args))
    )
    return args.batch_size * args.step_steps / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backbone", default="resnet18_cifar")
    p.add_argument("--n-images", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="bf16-mixed")
    p.add_argument("--epochs", type=int, default=2, help="the last one is reported")
    p.add_argument("--workers", type=int, default=8, help="loader workers")
    p.add_argument("--augment-on", nargs="+", choices=("loader", "device"), default=["loader"])
    p.add_argument("--step-steps", type=int, default=20, help="timed steps of the step-only run")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    if args.n_images < args.batch_size:
        raise SystemExit(f"--n-images {args.n_images} is below one batch ({args.batch_size})")
    # training_step.py names its precision "32" / "bf16-mixed".
    step_args = argparse.Namespace(
        **{**vars(args), "precision": args.precision.replace("-true", "")}
    )
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = write_fake_dataset("cifar10", Path(tmp) / "data", n_train=args.n_images, n_test=64)
        print(
            f"fixture: {args.n_images} CIFAR-10-format images in {time.perf_counter() - start:.1f} s"
        )
        rates = {a: run_epochs(args, root, a, Path(tmp)) for a in args.augment_on}
    step = step_only(step_args)
    print(
        f"device={args.device} ({name}) backbone={args.backbone} batch={args.batch_size} "
        f"precision={args.precision} images={args.n_images} workers={args.workers} "
        f"threads={torch.get_num_threads()}"
    )
    print(f"  step only (training_step.py, Trainer, resident batch): {step:10.1f} images/s")
    for augment_on, rate in rates.items():
        print(
            f"  end to end, augment_on={augment_on:6s}: {rate:10.1f} images/s  "
            f"= {rate / step:.3f} of the step-only figure"
        )


if __name__ == "__main__":
    main()
