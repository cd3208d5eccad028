"""Weighted kNN top-1 accuracy on frozen encoder features (Wu et al. 2018, InstDisc).

Each query's k nearest bank features (cosine similarity of L2-normalised encoder vectors)
vote for their label with weight ``exp(sim / τ)``; the class with the largest total wins.
Defaults k = 200, τ = 0.1 are the usual SSL-benchmark values. The voting itself is
lightly's ``knn_predict``; this module only chooses the samples and embeds them.

Bank: a seeded subset of ``trainer.datamodule.train_eval_dataloader()`` (train split,
eval transform) when the datamodule has one; otherwise a seeded subset of the validation
dataset disjoint from the queries. Queries: ``probe_size`` samples of the validation
dataset. The default sizes (bank 5,000, queries 1,000) keep all six callbacks together at about
2 % of a Fashion-MNIST epoch (``benchmarks/callbacks.py``); published kNN tables use
the whole training set as bank and the whole test set as queries — ``bank_size=None`` and a
``probe_size`` of at least the test-set size reproduce that. Samples are streamed in batches (never all images in memory); under DDP each
process embeds a shard and the features are gathered, so the result is the single-process
one.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader

from ssl_geom.callbacks._probe import evaluation_loader, iterate, select_indices
from ssl_geom.callbacks._protocol import encoder_fn
from ssl_geom.callbacks._runtime import gather_rows, shard_bounds
from ssl_geom.callbacks.base import GeometryCallback, positive_int


class KNNAccuracy(GeometryCallback):
    """Log ``knn/acc`` (fraction in [0, 1]).

    Args:
        k: neighbours (clipped to the bank size).
        temperature: τ of the ``exp(sim / τ)`` vote weights.
        bank_size: number of bank samples (seeded subset); None takes the whole dataset.
        bank_seed: seed of the bank subset.
        num_classes: default ``trainer.datamodule.num_classes``, else 1 + the largest label.
        probe_size: number of query samples from the validation dataset.
        **kwargs: see :class:`~ssl_geom.callbacks.base.GeometryCallback`.
    """

    def __init__(
        self,
        k: int = 200,
        temperature: float = 0.1,
        bank_size: int | None = 5_000,
        bank_seed: int = 0,
        num_classes: int | None = None,
        probe_size: int = 1_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(probe_size=probe_size, **kwargs)
        self.k = positive_int("k", k)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.bank_size = None if bank_size is None else positive_int("bank_size", bank_size)
        self.bank_seed = bank_seed
        self.num_classes = None if num_classes is None else positive_int("num_classes", num_classes)

    def _bank_source(
        self, trainer: Trainer, queries: list[int] | None
    ) -> tuple[DataLoader, list[int] | None]:
        factory = getattr(trainer.datamodule, "train_eval_dataloader", None)
        if callable(factory):
            loader = factory()
            size = self.bank_size or _length(loader)
            return loader, select_indices(loader, size, self.bank_seed)
        loader = evaluation_loader(trainer)
        if queries is None:
            raise ValueError(
                "KNNAccuracy needs a bank: the datamodule has no train_eval_dataloader() and the "
                "validation dataset is iterable, so no disjoint split can be drawn from it"
            )
        taken = set(queries)
        rest = torch.tensor([i for i in range(len(loader.dataset)) if i not in taken])
        if len(rest) == 0:
            raise ValueError(
                f"KNNAccuracy: all {len(taken)} validation samples are queries (probe_size="
                f"{self.probe_size}), none are left for the bank; lower probe_size or give the "
                "datamodule a train_eval_dataloader() to draw the bank from the training split"
            )
        generator = torch.Generator().manual_seed(self.bank_seed)
        chosen = rest[torch.randperm(len(rest), generator=generator)[: self.bank_size or len(rest)]]
        return loader, sorted(chosen.tolist())

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
        if indices is not None:
            lo, hi = shard_bounds(len(indices), trainer.world_size, trainer.global_rank)
            local = indices[lo:hi]
        features, labels = [], []
        for batch in iterate(
            loader, local if indices is not None else None, n, self.batch_fn, loader.num_workers
        ):
            if not batch.labels:
                raise ValueError("KNNAccuracy needs labelled batches (x, y); pass batch_fn=...")
            features.append(F.normalize(encode(batch.x.to(pl_module.device)).float(), dim=1))
            labels.append(batch.labels[0].to(pl_module.device).long())
        if indices is None:
            return torch.cat(features), torch.cat(labels)
        h = torch.cat(features) if features else self._empty_like(pl_module, encode, loader)
        y = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long, device=h.device)
        return gather_rows(trainer, h, len(indices)), gather_rows(trainer, y, len(indices))

    def _empty_like(self, pl_module: LightningModule, encode: Any, loader: DataLoader) -> Tensor:
        # A process with no rows (more processes than samples) still needs the feature width.
        first = self.batch_fn(next(iter(loader))).x[:1].to(pl_module.device)
        return encode(first).float()[:0]

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        val_loader = evaluation_loader(trainer)
        queries = select_indices(val_loader, self.probe_size, self.probe_seed)
        bank_loader, bank = self._bank_source(trainer, queries)
        q_h, q_y = self._embed(trainer, pl_module, val_loader, queries, self.probe_size)
        bank_n = len(bank) if bank is not None else self.bank_size or _length(bank_loader)
        b_h, b_y = self._embed(trainer, pl_module, bank_loader, bank, bank_n)
        num_classes = self.num_classes or getattr(trainer.datamodule, "num_classes", None)
        if not isinstance(num_classes, int):
            num_classes = int(torch.cat([q_y, b_y]).max().item()) + 1
        predicted = knn_predict(
            q_h, b_h.T.contiguous(), b_y, num_classes, min(self.k, b_h.shape[0]), self.temperature
        )[:, 0]
        return {"knn/acc": (predicted == q_y).double().mean().item()}


def _length(loader: DataLoader) -> int:
    """Samples in the loader's dataset; an iterable one needs an explicit ``bank_size``."""
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            "KNNAccuracy(bank_size=None) needs a dataset with a length; the bank loader's "
            "dataset is iterable, so pass bank_size=<number of samples>"
        ) from None
