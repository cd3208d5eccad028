"""The data side of a linear evaluation: labelled batches, and frozen features cached once.

:class:`LinearEvalData` wraps any :class:`~ssl_geom.data.base.SSLDataModule` (the dataset,
its subsets and transforms stay configured there) and decides what the classifiers read:

- ``augment=False`` (deterministic training transform, the dataset's eval transform): with
  ``cache_features=True`` the frozen encoder runs once over the train and the test split and
  the classifiers train on the stored tensors, so 100 epochs cost 100 passes over a matrix,
  not 100 backbone passes. With ``cache_features=False`` the images go through the backbone
  every epoch, in the same seeded order, which gives the same result (tests check it).
- ``augment=True``: training batches are the dataset's own random views
  (``train_views``); the backbone must run every epoch, so nothing is cached.
- ``augment="crop_flip"``: the official linear probes' protocol (MoCo's ``main_lincls.py``,
  the CARE authors' probes): the labelled train split under a random resized crop and a
  horizontal flip (:meth:`~ssl_geom.augment.Augmentation.crop_flip_transform`), drawn per
  sample from the dataset's seed and the epoch; nothing is cached either.

What is cached is what precedes every trainable part, as the LightningModule reports it
through :class:`FrozenEncoder`: the readout's output vectors when the readout is parameter-free
(global average pooling), else the structured map that enters it. The map can be large
(Fashion-MNIST through ``hssl_mnist_translation``: 128 x 1 x 7 x 7 floats, 25 KB a sample, 1.8 GB for
the 70,000 images; its C4 version 7 GB), so above ``cache_max_gib`` the data is not cached and
the backbone runs every epoch instead, with a warning saying so.

Batches are ``(x, y)``: ``x`` images ``(B, C, H, W)`` or cached features, which the module tells
apart by their number of dimensions. The train order is a seeded permutation per epoch (the
same for cached and uncached data), and cached batches are sliced from the stored tensors
in one indexing operation rather than collated sample by sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Literal, Protocol, cast

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.datasets import (
    EpochSeededSampler,
    EvalDataset,
    SeededEvalDataset,
    SeededViewSampler,
)

#: ``augment`` values: the eval transform (False), the dataset's train views (True), or the
#: official probes' random resized crop and flip.
Augment = bool | Literal["crop_flip"]


class FrozenEncoder(Protocol):
    """What the LightningModule offers the data: its frozen part, for caching."""

    def frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images ``x`` up to the first trainable layer, without gradient."""
        ...

    def frozen_feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample's frozen features (for the memory check)."""
        ...


class SeededPermutation(EpochSeededSampler[int]):
    """``range(n)`` in the order ``randperm(n, Generator().manual_seed(seed + epoch))``."""

    def __iter__(self) -> Iterator[int]:
        generator = self.next_generator()
        return iter(torch.randperm(self.n, generator=generator).tolist())


class TensorBatches(Dataset):
    """``dataset[list_of_indices] -> (features[idx], labels[idx])``: one slice per batch."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows for {len(labels)} labels")
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.features[index], self.labels[index]


class LinearEvalData(L.LightningDataModule):
    """Labelled train/test batches for a frozen-feature classifier; see the module docstring.

    Args:
        dataset: the DataModule that reads the images (its ``seed`` seeds the train order,
            its ``max_*_samples`` subset, its ``batch_size`` is the default batch size).
        augment: ``False``: the deterministic eval transform; ``True``: the dataset's random
            views (its ``train_views``); ``"crop_flip"``: random resized crops and flips of
            the labelled train split, the official probes' protocol (module docstring).
        cache_features: with ``augment=False``, extract the frozen features once.
        cache_max_gib: largest cache (train + test, float32) kept in memory; above it the
            backbone runs every epoch instead.
        batch_size: the classifiers' batch size when it differs from the dataset's (e.g. a
            pretraining DataModule reused for evaluation); augmented training keeps the
            dataset's own loader and batch size.
    """

    def __init__(
        self,
        dataset: SSLDataModule,
        augment: Augment = False,
        cache_features: bool = True,
        cache_max_gib: float = 4.0,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(dataset, SSLDataModule):
            raise TypeError(
                f"dataset must be an ssl_geom SSLDataModule (e.g. ssl_geom.data.MNISTDataModule),"
                f" got {type(dataset).__name__}"
            )
        if augment not in (False, True, "crop_flip"):
            raise ValueError(
                f"unknown augment {augment!r}; expected false (the eval transform), true (the "
                "dataset's train views) or 'crop_flip' (random resized crop and flip)"
            )
        if augment and cache_features:
            raise ValueError(
                f"augment={augment!r} draws new random views every epoch, so their features "
                "cannot be cached; set cache_features=false (or augment=false for the "
                "deterministic eval transform)"
            )
        if augment is True and dataset.train_views == "none":
            raise ValueError(
                "augment=True but the dataset's train_views='none' is not an augmentation; "
                "set dataset train_views (e.g. 'simclr') or augment=false"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(
                f"batch_size must be >= 1 (or None for the dataset's), got {batch_size}"
            )
        if cache_max_gib < 0:
            raise ValueError(f"cache_max_gib must be >= 0, got {cache_max_gib}")
        self.dataset = dataset
        self.augment = augment
        self.cache_features = cache_features
        self.cache_max_gib = cache_max_gib
        self._batch_size = batch_size
        self._cache: dict[str, TensorBatches] = {}
        self._cache_decided = False

    # Attributes the CLI links into the model (data.num_classes etc.).
    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def in_channels(self) -> int:
        return self.dataset.in_channels

    @property
    def batch_size(self) -> int:
        return self._batch_size or self.dataset.batch_size

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images the backbone is fed."""
        x = self.dataset.source("test")[0][0]
        return tuple(self.dataset.eval_transform()(x).shape)

    def prepare_data(self) -> None:
        self.dataset.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.dataset.setup(stage)

    # ----------------------------------------------------------------- caching
    def _encoder(self) -> FrozenEncoder:
        module = self.trainer.lightning_module if self.trainer is not None else None
        if not hasattr(module, "frozen_features"):
            raise TypeError(
                "LinearEvalData caches features through the LightningModule's "
                "frozen_features(x); train it with ssl_geom.evaluation.LinearEval"
            )
        return cast(FrozenEncoder, module)

    def use_cache(self) -> bool:
        if not self.cache_features or self.augment:
            return False
        if not self._cache_decided:
            self._cache_decided = True
            n = sum(len(self.dataset.source(split)) for split in self._eval_splits())
            per_sample = math.prod(self._encoder().frozen_feature_shape())
            gib = n * per_sample * 4 / 2**30
            if gib > self.cache_max_gib:
                rank_zero_warn(
                    f"cached features would take {gib:.2f} GiB ({n} samples x {per_sample} "
                    f"floats), over cache_max_gib={self.cache_max_gib}: the backbone runs every "
                    "epoch instead (same result, slower). Raise cache_max_gib to cache."
                )
                self.cache_features = False
            else:
                rank_zero_info(f"caching frozen features: {n} samples, {gib:.3f} GiB")
        return self.cache_features

    def _eval_splits(self) -> tuple[Split, ...]:
        """The splits whose features are cached: train, test and the validation split if any."""
        return ("train", "val", "test") if self.dataset.has_validation_split else ("train", "test")

    def features(self, split: Split) -> TensorBatches:
        """Frozen features and labels of ``split`` (``"train"``/``"val"``/``"test"``, eval
        transform).

        Extracted on first use (one backbone pass on the module's device) and kept.
        """
        if split not in self._cache:
            encoder = self._encoder()
            rows, labels = [], []
            for batch in self.dataset.eval_loader(split):
                rows.append(encoder.frozen_features(batch[0]).cpu())
                labels.append(batch[1])
            self._cache[split] = TensorBatches(torch.cat(rows), torch.cat(labels))
        return self._cache[split]

    # ----------------------------------------------------------------- loaders
    def _batches(self, dataset: Dataset, shuffle: bool, tensors: bool) -> DataLoader:
        n = len(cast(Sized, dataset))  # every caller passes a map-style dataset
        sampler: Sampler | range = SeededPermutation(n, self.dataset.seed) if shuffle else range(n)
        return self._loader(dataset, sampler, tensors)

    def _loader(self, dataset: Dataset, sampler: Sampler | range, tensors: bool) -> DataLoader:
        batches = BatchSampler(sampler, self.batch_size, drop_last=False)
        if tensors:  # one slice per batch, in this process
            return DataLoader(dataset, batch_size=None, sampler=batches)
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.dataset.num_workers,
            pin_memory=self.dataset.pin_memory,
            persistent_workers=self.dataset.persistent_workers,
        )

    def _split_loader(self, split: Split, shuffle: bool) -> DataLoader:
        if self.use_cache():
            return self._batches(self.features(split), shuffle, tensors=True)
        images = EvalDataset(self.dataset.source(split), self.dataset.eval_transform())
        return self._batches(images, shuffle, tensors=False)

    def train_dataloader(self) -> DataLoader:
        if self.augment == "crop_flip":
            source = self.dataset.source("train")
            views = SeededEvalDataset(source, self.dataset.augmentation.crop_flip_transform())
            return self._loader(views, SeededViewSampler(len(source), self.dataset.seed), False)
        if self.augment:
            return self.dataset.train_dataloader()
        return self._split_loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The dataset's validation split (``val_samples``), else its test split."""
        return self._split_loader("val" if self.dataset.has_validation_split else "test", False)

    def test_dataloader(self) -> DataLoader:
        return self._split_loader("test", shuffle=False)
