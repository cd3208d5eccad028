"""Torch datasets over image sources, and the seeded sampler that makes SSL views reproducible.

Reproducibility: :class:`SeededViewSampler` yields ``(index, seed)`` pairs drawn from a
generator seeded by ``(seed, epoch)``; :class:`SSLViewDataset` draws the views of that sample
with the default CPU generator seeded by ``seed`` (its previous state restored afterwards).
So the augmentation a sample receives depends only on the DataModule seed, the epoch and its
position in the permutation: not on ``num_workers``, worker scheduling or the global RNG of
the training process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch.utils.data import Dataset, Sampler

from ssl_geom.data.sources import ImageSource
from ssl_geom.rank_draws import seeded_cpu_rng

T = TypeVar("T")

Transform = Callable[[torch.Tensor], torch.Tensor]


class SSLViewDataset(Dataset):
    """``dataset[(i, seed)]`` -> ``(views, y)``: ``n_views`` random views (+ the original)."""

    def __init__(
        self,
        source: ImageSource,
        view_transform: Transform,
        n_views: int,
        original_transform: Transform | None = None,
    ) -> None:
        self.source = source
        self.view_transform = view_transform
        self.n_views = n_views
        self.original_transform = original_transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> tuple[list[torch.Tensor], int]:
        index, seed = key
        image, labels = self.source[index]
        # v2 ops draw from the default CPU generator; the caller's RNG stream is left as it was.
        with seeded_cpu_rng(seed):
            views = [self.view_transform(image) for _ in range(self.n_views)]
        if self.original_transform is not None:
            views.append(self.original_transform(image))
        return views, labels[0]


class SeededEvalDataset(Dataset):
    """``dataset[(i, seed)]`` -> ``(x, *labels)``: one random view drawn with ``seed``.

    The labelled counterpart of :class:`SSLViewDataset` for a classifier trained on augmented
    images (the linear evaluation's random-crop-and-flip protocol), keyed by the same seeded
    sampler, so the views depend on the seed and the epoch only.
    """

    def __init__(self, source: ImageSource, transform: Transform) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> tuple:
        image, labels = self.source[key[0]]
        with seeded_cpu_rng(key[1]):
            return (self.transform(image), *labels)


class RawImageDataset(Dataset):
    """``dataset[(i, seed)]`` -> ``(uint8 image, label)``: the loader half of device augmentation.

    Keyed like :class:`SSLViewDataset` so the same seeded sampler shuffles it; the seed is
    unused because the views are drawn on the device (``augment_on="device"``).
    """

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        image, labels = self.source[key[0]]
        return image, labels[0]


class EvalDataset(Dataset):
    """``dataset[i]`` -> ``(x, *labels)`` with a deterministic transform."""

    def __init__(self, source: ImageSource, transform: Transform) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple:
        image, labels = self.source[index]
        return (self.transform(image), *labels)


class EpochSeededSampler(Sampler[T]):
    """A sampler whose epoch-``e`` draw comes from ``Generator().manual_seed(seed + e * stride)``.

    Lightning calls :meth:`set_epoch` before each epoch (so a resumed run replays the same
    epochs); without it the epoch advances by one per pass. Subclasses draw from
    :meth:`next_generator` in ``__iter__``.
    """

    epoch_stride: int = 1

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def next_generator(self) -> torch.Generator:
        """This epoch's generator; moves on to the next epoch."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch * self.epoch_stride)
        self.epoch += 1
        return generator


class SeededViewSampler(EpochSeededSampler[tuple[int, int]]):
    """Random permutation of ``range(n)`` paired with per-sample augmentation seeds.

    Epoch ``e`` uses ``Generator().manual_seed(seed + e * 1_000_003)``.
    """

    epoch_stride = 1_000_003

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = self.next_generator()
        order = torch.randperm(self.n, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (self.n,), generator=generator).tolist()
        return iter(zip(order, seeds, strict=True))
