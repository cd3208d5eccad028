"""The reference set: the fixed samples a geometry callback measures on.

(Called the *probe set* before; renamed so that "probe" means only the methods' online
linear classifier, ``probe/*``.)

``source="validation"`` (default) draws from the validation dataset — else the
datamodule's ``train_eval_dataloader()``, else the train loader. ``source="train"`` draws
from the training split: the datamodule's ``train_eval_dataloader()`` (train split, eval
transform, so the callback's own augmentations act on clean images) when it has one, else
the train loader. Samples are picked from a loader's *dataset* by index, not by iterating
the loader, so every process and every evaluation gets the same ones whatever sampler
Lightning injected for DDP. A seeded random subset is the default because many datasets are
stored class by class (ImageFolder, some train splits); ``seed=None`` takes the first
``size``. An ``IterableDataset`` has no indices: its first ``size`` samples are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, IterableDataset, Subset

from ssl_geom.callbacks._protocol import BatchFn, Samples, default_batch_fn
from ssl_geom.protocols import ProvidesTrainEvalDataloader, attached_datamodule

Source = Literal["validation", "train"]
SOURCES = ("validation", "train")


def first_loader(loaders: object) -> DataLoader | None:
    """The loader itself, or the first of a list of loaders; None for anything else."""
    if isinstance(loaders, DataLoader):
        return loaders
    if isinstance(loaders, Sequence) and loaders and isinstance(loaders[0], DataLoader):
        return loaders[0]
    return None


def _validation_loader(trainer: Trainer) -> DataLoader | None:
    """The validation loader, requested now if fitting has not reached validation yet.

    The checks at fit start (``on_train_start``) run before Lightning first loads the
    validation loader; asking its loop to set up its data is what the first validation
    would do anyway (it keeps the loader and does not load it twice).
    """
    if trainer.val_dataloaders is None and trainer.state.fn == TrainerFn.FITTING:
        trainer.fit_loop.epoch_loop.val_loop.setup_data()
    return first_loader(trainer.val_dataloaders)


def _train_eval_loader(trainer: Trainer) -> DataLoader | None:
    dm = attached_datamodule(trainer)
    if isinstance(dm, ProvidesTrainEvalDataloader):
        return first_loader(dm.train_eval_dataloader())
    return None


def source_loader(trainer: Trainer, source: Source) -> DataLoader:
    """The DataLoader a reference set of this ``source`` is drawn from (see the module doc)."""
    candidates: tuple[Callable[[Trainer], DataLoader | None], ...]
    if source == "validation":
        candidates = (_validation_loader, _train_eval_loader)
    else:
        candidates = (_train_eval_loader,)
    for candidate in candidates:
        loader = candidate(trainer)
        if loader is not None:
            return loader
    loader = first_loader(trainer.train_dataloader)
    if loader is None:
        raise ValueError(
            f"geometry callbacks found no DataLoader to draw the {source} reference set from: "
            "give the Trainer a validation DataLoader (or a datamodule with val_dataloader())"
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
    loader: DataLoader, indices: list[int] | None, n: int, batch_fn: BatchFn, num_workers: int = 0
) -> Iterator[Samples]:
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
        samples = batch_fn(batch)
        take = min(n - seen, samples.x.shape[0])
        yield Samples(samples.x[:take], [y[:take] for y in samples.labels])
        seen += take
        if seen >= n:
            return


def concatenate(batches: Iterator[Samples]) -> Samples:
    """One :class:`Samples` on CPU from several (labels kept only if every batch has them)."""
    parts = list(batches)
    if not parts:
        raise ValueError("the reference loader yielded no samples; is the dataset empty?")
    n_labels = min(len(p.labels) for p in parts)
    return Samples(
        torch.cat([p.x.cpu() for p in parts]),
        [torch.cat([p.labels[j].cpu() for p in parts]) for j in range(n_labels)],
    )


@dataclass(frozen=True)
class ReferenceSet:
    """Which fixed samples to measure on: ``size`` samples of ``source``, subset ``seed``.

    Frozen, so equal specs are equal keys and callbacks with the same settings share the
    loaded samples and their embeddings.
    """

    size: int = 512
    seed: int | None = 0
    source: Source = "validation"
    batch_fn: BatchFn = default_batch_fn

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 2:
            raise ValueError(
                f"reference_size must be an integer of at least 2 (pairs are needed), got "
                f"{self.size!r}"
            )
        if self.source not in SOURCES:
            raise ValueError(
                f"reference_source must be one of {list(SOURCES)}, got {self.source!r}"
            )

    def load(self, trainer: Trainer, limit: int | None = None) -> Samples:
        """The reference samples on CPU; only the first ``limit`` of them when given."""
        loader = source_loader(trainer, self.source)
        indices = select_indices(loader, self.size, self.seed)
        n = self.size if limit is None else min(limit, self.size)
        if indices is not None:
            indices = indices[:n]
        samples = concatenate(iterate(loader, indices, n, self.batch_fn))
        if samples.x.shape[0] < min(2, n):
            raise ValueError(
                f"the {self.source} reference set has {samples.x.shape[0]} sample(s); the "
                "geometry callbacks need at least 2 (compare pairs of samples)"
            )
        return samples
