"""Cost of a linear evaluation on cached features: feature extraction vs classifier training.

Setup: ``experiments/linear_fashion.yaml``'s protocol (3 classifiers, Adam 1e-3, wd 1e-6,
batch 512, global-pool readout: 128-d vectors) through ``ssl_geom.evaluation.LinearEval`` and
``LinearEvalData`` in a plain ``Trainer``, on all of Fashion-MNIST (60,000 train, 10,000
test). The backbone is ``hssl_mnist_translation``, from ``--checkpoint`` (any ``lightning fit``
checkpoint of it) or freshly initialised: the cost does not depend on its weights.

Phases, timed with a callback inside the one ``fit`` + ``test``:

- extraction: ``fit`` start to the first training batch (one backbone pass over train and test,
  plus Lightning's setup);
- classifier training: the epochs (with validation every 10 epochs, as the config);
- test: the 3 classifiers and the kNN (k 200) of 10,000 queries against the 60,000-image bank.

Baselines in the same run: (a) the uncached alternative, a backbone pass over the train split
every epoch: ``epochs x`` the measured train-split extraction time; (b) the same 3 classifiers
trained by a bare PyTorch loop on the same cached tensors (Lightning's overhead).

Usage::

    python benchmarks/linear_eval.py               # full: 60,000 x 128 features, 100 epochs
    python benchmarks/linear_eval.py --quick        # 2,048 images, 2 epochs: checks it works
    python benchmarks/linear_eval.py --checkpoint runs/.../last.ckpt --json out.json

Needs Fashion-MNIST in ``/usr/share/datasets/fashion-mnist`` (``apt-get install
dataset-fashion-mnist``) or under ``--root``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from quiet_trainer import quiet_trainer

from ssl_geom.backbones import build_backbone
from ssl_geom.data import MNISTDataModule
from ssl_geom.evaluation import ClassifierBank, LinearEval, LinearEvalData


class PhaseTimer(L.Callback):
    """Wall-clock marks at the phase boundaries of one fit + test."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marks["fit_start"] = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marks["train_start"] = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marks["train_end"] = time.perf_counter()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marks["test_start"] = time.perf_counter()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.marks["test_end"] = time.perf_counter()


def bare_loop(features: torch.Tensor, labels: torch.Tensor, epochs: int, batch: int) -> float:
    """Seconds for the same 3 classifiers, Adam and batches in a plain PyTorch loop."""
    bank = ClassifierBank(features.shape[1], 10, n=3)
    optimizer = torch.optim.Adam(bank.parameters(), lr=1e-3, weight_decay=1e-6)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))
        for index in order.split(batch):
            loss = bank.losses(features[index], labels[index]).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict[str, Any]:
    limit = 2048 if args.quick else None
    epochs = 2 if args.quick else args.epochs
    dataset = MNISTDataModule(
        root=args.root,
        variant="fashion",
        batch_size=512,
        num_workers=args.num_workers,
        train_views="none",
        max_train_samples=limit,
        max_eval_samples=limit,
    )
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint, backbone = args.checkpoint, None
        if checkpoint is None:
            checkpoint = str(Path(scratch) / "backbone.pt")
            torch.save(
                build_backbone("hssl_mnist_translation", in_channels=1).state_dict(), checkpoint
            )
            backbone = "hssl_mnist_translation"
        model = LinearEval(checkpoint, backbone=backbone, num_classes=10, readout="global_pool")
        data = LinearEvalData(dataset)
        timer = PhaseTimer()
        trainer = quiet_trainer(max_epochs=epochs, check_val_every_n_epoch=10, callbacks=[timer])
        trainer.fit(model, datamodule=data)
        results = trainer.test(model, datamodule=data, verbose=False)[0]

    train = data.features("train")
    n_train, n_test = len(train), len(data.features("test"))
    marks = timer.marks
    extraction = marks["train_start"] - marks["fit_start"]
    training = marks["train_end"] - marks["train_start"]
    test = marks["test_end"] - marks["test_start"]
    # Extraction covers train + test images; the uncached path re-embeds the train split.
    per_train_pass = extraction * n_train / (n_train + n_test)
    bare = bare_loop(train.features, train.labels, epochs, 512)
    return {
        "threads": torch.get_num_threads(),
        "train_features": list(train.features.shape),
        "test_samples": n_test,
        "epochs": epochs,
        "extraction_s": extraction,
        "classifier_training_s": training,
        "test_with_knn_s": test,
        "total_s": extraction + training + test,
        "uncached_estimate_s": epochs * per_train_pass + training,
        "speedup_vs_uncached": (epochs * per_train_pass + training) / (extraction + training),
        "bare_pytorch_training_s": bare,
        "lightning_over_bare": training / bare,
        "linear_test_acc": results["linear/test_acc"],
        "linear_test_acc_std": results["linear/test_acc_std"],
        "knn_test_acc": results["knn/test_acc"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--checkpoint", default=None, help="a lightning fit checkpoint")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = run(args)
    for key, value in report.items():
        print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
