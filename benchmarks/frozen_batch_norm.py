"""Probe accuracy of the Frozen baseline with its BatchNorm in ``eval`` vs ``batch`` mode.

The H-SSL paper does not say which mode its random frozen backbone's BatchNorm runs in
(``ssl_geom.methods.frozen``), so both are measured on the same seeded short
Fashion-MNIST run (needs the Debian package ``dataset-fashion-mnist`` or ``--root``).

Run: ``PYTHONPATH=. python benchmarks/frozen_batch_norm.py [--epochs 3] [--root DIR]``
"""

from __future__ import annotations

import argparse

import lightning as L
from quiet_trainer import quiet_trainer

from ssl_geom.data import MNISTDataModule
from ssl_geom.methods import Frozen


def probe_accuracy(batch_norm: str, args: argparse.Namespace) -> float:
    """Final ``probe/acc`` (validation split) of a seeded Frozen run with ``batch_norm``."""
    L.seed_everything(0, verbose=False)
    data = MNISTDataModule(
        root=args.root,
        variant="fashion",
        batch_size=256,
        num_workers=0,
        train_views="none",
        max_train_samples=args.train_samples,
        max_eval_samples=2000,
    )
    model = Frozen(
        batch_norm=batch_norm,
        backbone=args.backbone,
        in_channels=1,
        num_classes=10,
        optimizer="adam",
        lr=1e-3,
        probe_lr=args.probe_lr,
        weight_decay=0.0,
        lr_schedule="constant",
        warmup_steps=0,
    )
    trainer = quiet_trainer(max_epochs=args.epochs)
    trainer.fit(model, data)
    return float(trainer.callback_metrics["probe/acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None)
    parser.add_argument("--backbone", default="hssl_mnist_translation")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=5120)
    parser.add_argument("--probe-lr", type=float, default=1e-3)
    args = parser.parse_args()
    for mode in ("eval", "batch"):
        print(f"batch_norm={mode}: probe/acc={probe_accuracy(mode, args):.4f}")


if __name__ == "__main__":
    main()
