"""The fixed sample sets the callbacks measure on (probe set, kNN bank and queries).

Samples are picked from a loader's *dataset* by index, not by iterating the loader, so the
same samples are chosen on every process whatever sampler Lightning injected for DDP, and
the same ones at every evaluation. A seeded random subset is the default because many
datasets are stored class by class (ImageFolder, some train splits): their first 512
samples would hold one or two classes. ``seed=None`` takes the first ``n`` instead.
An ``IterableDataset`` has no indices; its first ``n`` samples are read from the loader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, IterableDataset, Subset

from ssl_geom.callbacks._protocol import BatchFn, ProbeBatch


def _first(loaders: object) -> DataLoader | None:
    if isinstance(loaders, DataLoader):
        return loaders
    if isinstance(loaders, Sequence) and loaders and isinstance(loaders[0], DataLoader):
        return loaders[0]
    return None


def evaluation_loader(trainer: Trainer) -> DataLoader:
    """The validation loader; else the datamodule's ``train_eval_dataloader()``; else train."""
    loader = _first(trainer.val_dataloaders)
    if loader is None and callable(getattr(trainer.datamodule, "train_eval_dataloader", None)):
        loader = _first(trainer.datamodule.train_eval_dataloader())
    if loader is None:
        loader = _first(trainer.train_dataloader)
    if loader is None:
        raise ValueError(
            "geometry callbacks found no DataLoader to draw a probe set from: give the Trainer "
            "a validation DataLoader (or a datamodule with val_dataloader())"
        )
    return loader


def select_indices(loader: DataLoader, n: int, seed: int | None) -> list[int] | None:
    """``n`` sorted dataset indices (seeded subset, or the first ``n``); None if iterable."""
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        return None
    total = len(dataset)
    n = min(n, total)
    if seed is None:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(total, generator=generator)[:n].tolist())


def iterate(
    loader: DataLoader,
    indices: list[int] | None,
    n: int,
    batch_fn: BatchFn,
    num_workers: int = 0,
) -> Iterator[ProbeBatch]:
    """Yield the chosen samples in batches (``indices``; or the loader's first ``n``)."""
    if indices is not None:
        subset = DataLoader(
            Subset(loader.dataset, indices),
            batch_size=loader.batch_size or 256,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=loader.collate_fn,
        )
        for batch in subset:
            yield batch_fn(batch)
        return
    seen = 0
    for batch in loader:
        probe = batch_fn(batch)
        take = min(n - seen, probe.x.shape[0])
        yield ProbeBatch(probe.x[:take], [y[:take] for y in probe.labels])
        seen += take
        if seen >= n:
            return


def concatenate(batches: Iterator[ProbeBatch]) -> ProbeBatch:
    """One :class:`ProbeBatch` on CPU from several (labels kept only if every batch has them)."""
    parts = list(batches)
    if not parts:
        raise ValueError("the probe loader yielded no samples; is the dataset empty?")
    n_labels = min(len(p.labels) for p in parts)
    return ProbeBatch(
        torch.cat([p.x.cpu() for p in parts]),
        [torch.cat([p.labels[j].cpu() for p in parts]) for j in range(n_labels)],
    )
