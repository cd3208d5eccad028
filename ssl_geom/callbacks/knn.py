"""Weighted kNN top-1 accuracy on frozen encoder features (Wu et al. 2018, InstDisc).

Each query's k nearest bank features (cosine similarity of L2-normalised encoder vectors)
vote for their label with weight ``exp(sim / τ)``; the class with the largest total wins.
Defaults k = 200, τ = 0.1 are the usual SSL-benchmark values. The voting itself is
lightly's ``knn_predict``; this module only chooses the samples and embeds them.

Queries: ``reference_size`` samples of the validation dataset (a seeded subset). Bank: a
seeded subset of ``trainer.datamodule.train_eval_dataloader()`` (train split, eval
transform) when the datamodule has one; otherwise the validation samples that are not
queries. When that would leave the bank smaller than the queries (a small validation set,
e.g. 128 images and the default 1,000 queries), the validation set is split in half —
queries and bank — and the log says so once. The default sizes (bank 5,000, queries 1,000),
measured every 10 epochs, keep the six callbacks within their cost budget (docs/callbacks.md,
"Cost and defaults", measured by ``benchmarks/callbacks.py``); published kNN tables use the
whole training set as bank and the whole test set as queries — ``bank_size=None`` and a
``reference_size`` of at least the test-set size reproduce that. Samples are streamed in
batches (never all images in memory); under DDP each process embeds a shard and the features
are gathered, so the result is the single-process one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader

from ssl_geom.callbacks._protocol import Samples, encoder_fn
from ssl_geom.callbacks._reference import iterate, select_indices, source_loader
from ssl_geom.callbacks._runtime import embed_sharded
from ssl_geom.callbacks.base import GeometryCallback, Values, as_features, positive_int
from ssl_geom.protocols import (
    ProvidesNumClasses,
    ProvidesTrainEvalDataloader,
    attached_datamodule,
)


@dataclass
class _Split:
    """Where the queries and the bank come from: loaders and dataset indices (None: iterable)."""

    query_loader: DataLoader
    queries: list[int] | None
    n_queries: int
    bank_loader: DataLoader
    bank: list[int] | None
    n_bank: int


class KNNAccuracy(GeometryCallback):
    """Log ``knn/acc`` (fraction in [0, 1]).

    Args:
        k: neighbours (clipped to the bank size).
        temperature: τ of the ``exp(sim / τ)`` vote weights.
        bank_size: number of bank samples (seeded subset); None takes the whole dataset.
        bank_seed: seed of the bank subset.
        num_classes: default ``trainer.datamodule.num_classes``, else 1 + the largest label.
        reference_size: number of query samples from the validation dataset.
        every_n_epochs: default every 10 epochs: one measurement embeds bank and queries
            (6,000 images at the default sizes), so it is spread out (its cost:
            docs/callbacks.md); ``every_n_epochs=1`` gives a per-epoch curve.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(
        self,
        k: int = 200,
        temperature: float = 0.1,
        bank_size: int | None = 5_000,
        bank_seed: int = 0,
        num_classes: int | None = None,
        reference_size: int = 1_000,
        every_n_epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(reference_size=reference_size, every_n_epochs=every_n_epochs, **kwargs)
        self.k = positive_int("k", k)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.bank_size = None if bank_size is None else positive_int("bank_size", bank_size)
        self.bank_seed = bank_seed
        self.num_classes = None if num_classes is None else positive_int("num_classes", num_classes)
        self._split: _Split | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._split = None

    def split(self, trainer: Trainer) -> _Split:
        """Queries and bank, chosen once per run (and announced once when the split is forced)."""
        if self._split is None:
            self._split = self._choose(trainer)
        return self._split

    def _choose(self, trainer: Trainer) -> _Split:
        val = source_loader(trainer, "validation")
        dm = attached_datamodule(trainer)
        if isinstance(dm, ProvidesTrainEvalDataloader):
            queries = select_indices(val, self.reference.size, self.reference.seed)
            bank_loader = dm.train_eval_dataloader()
            bank = select_indices(
                bank_loader, self.bank_size or _length(bank_loader), self.bank_seed
            )
            n_bank = len(bank) if bank is not None else self.bank_size or _length(bank_loader)
            n_queries = len(queries) if queries is not None else self.reference.size
            return _Split(val, queries, n_queries, bank_loader, bank, n_bank)
        if select_indices(val, 1, None) is None:
            raise ValueError(
                "KNNAccuracy needs a bank: the datamodule has no train_eval_dataloader() and the "
                "validation dataset is iterable, so no disjoint split can be drawn from it"
            )
        total = _length(val)
        if total < 2:
            raise ValueError(
                f"KNNAccuracy: the validation set has {total} sample(s); it needs at least 2 "
                "(one query, one bank sample) or a datamodule with train_eval_dataloader()"
            )
        n_queries = self.reference.size
        if total - n_queries < n_queries:
            n_queries = total // 2
            rank_zero_info(
                f"KNNAccuracy: no train_eval_dataloader() and only {total} validation samples "
                f"(reference_size={self.reference.size}): using {n_queries} as queries and the "
                f"other {total - n_queries} as the bank"
            )
        queries = select_indices(val, n_queries, self.reference.seed) or []
        taken = set(queries)
        rest = torch.tensor([i for i in range(total) if i not in taken])
        generator = torch.Generator().manual_seed(self.bank_seed)
        chosen = rest[torch.randperm(len(rest), generator=generator)[: self.bank_size or len(rest)]]
        bank = sorted(chosen.tolist())
        return _Split(val, queries, len(queries), val, bank, len(bank))

    def _embed(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        loader: DataLoader,
        indices: list[int] | None,
        n: int,
    ) -> tuple[Tensor, Tensor]:
        """Normalised encoder features and first labels of the chosen samples (all ranks)."""
        encode = encoder_fn(pl_module, self.encoder)

        def embed(batches: Any) -> tuple[Tensor, Tensor]:
            features, labels = [], []
            for batch in batches:
                features.append(
                    F.normalize(as_features(encode(batch.x.to(pl_module.device))), dim=1)
                )
                labels.append(_first_labels(batch).to(pl_module.device).long())
            return torch.cat(features), torch.cat(labels)

        if indices is None:  # iterable dataset: every process reads the same first n samples
            return embed(iterate(loader, None, n, self.reference.batch_fn, loader.num_workers))

        def embed_rows(lo: int, hi: int) -> tuple[Tensor, ...]:
            batch_fn = self.reference.batch_fn
            return embed(iterate(loader, indices[lo:hi], hi - lo, batch_fn, loader.num_workers))

        h, y = embed_sharded(trainer, len(indices), embed_rows)
        return h, y

    def check_samples(self, trainer: Trainer, pl_module: LightningModule, samples: Samples) -> None:
        super().check_samples(trainer, pl_module, samples)
        _first_labels(samples)
        split = self.split(trainer)
        bank_two = split.bank[:2] if split.bank is not None else None
        self._embed(trainer, pl_module, split.bank_loader, bank_two, 2)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        split = self.split(trainer)
        q_h, q_y = self._embed(
            trainer, pl_module, split.query_loader, split.queries, split.n_queries
        )
        b_h, b_y = self._embed(trainer, pl_module, split.bank_loader, split.bank, split.n_bank)
        dm = attached_datamodule(trainer)
        num_classes = self.num_classes or (
            dm.num_classes if isinstance(dm, ProvidesNumClasses) else None
        )
        if not isinstance(num_classes, int):
            num_classes = int(torch.cat([q_y, b_y]).max().item()) + 1
        predicted = knn_predict(
            q_h, b_h.T.contiguous(), b_y, num_classes, min(self.k, b_h.shape[0]), self.temperature
        )[:, 0]
        return {"knn/acc": (predicted == q_y).double().mean()}


def _first_labels(samples: Samples) -> Tensor:
    if not samples.labels:
        raise ValueError("KNNAccuracy needs labelled batches (x, y); pass batch_fn=...")
    return samples.labels[0]


def _length(loader: DataLoader) -> int:
    """Samples in the loader's dataset; an iterable one needs an explicit ``bank_size``."""
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            "KNNAccuracy(bank_size=None) needs a dataset with a length; the bank loader's "
            "dataset is iterable, so pass bank_size=<number of samples>"
        ) from None
