"""Image sources: indexable collections of ``(uint8 image (C, H, W), labels)``.

A source only reads pixels; transforms live in :mod:`ssl_geom.data.datasets`. Array sources keep
the whole split in memory as uint8 (MNIST, CIFAR), STL10 memory-maps its binaries (the
unlabeled split is 2.7 GB), folder formats decode JPEG/PNG files with ``torchvision.io``
(no PIL). Every source is picklable without copying its pixels into the pickle, so spawn-based
loader workers stay cheap. Subsets and concatenations (STL10: train + unlabeled) are torch's
``Subset`` and ``ConcatDataset``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchvision.io import ImageReadMode, decode_image

from ssl_geom.data.errors import CorruptDatasetError

Labels = tuple[int, ...]
Sample = tuple[torch.Tensor, Labels]


class ImageSource(Protocol):
    """``len(source)`` samples; ``source[i]`` -> ``(uint8 tensor (C, H, W), labels)``.

    All a DataModule needs (``verify`` reads every sample through ``source[i]``), so torch's
    ``Subset`` and ``ConcatDataset`` of sources are sources too; the file formats below are
    torch Datasets.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


class ArraySource(Dataset[Sample]):
    """In-memory uint8 images ``(N, C, H, W)`` with one or more label arrays ``(N,)``."""

    def __init__(self, images: np.ndarray, labels: Sequence[np.ndarray]) -> None:
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
            )
        for y in labels:
            if len(y) != len(images):
                raise ValueError(f"{len(images)} images but {len(y)} labels")
        self.images = images
        self.labels = [np.asarray(y, dtype=np.int64) for y in labels]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Labels]:
        image = torch.from_numpy(np.array(self.images[index], copy=True))
        return image, tuple(int(y[index]) for y in self.labels)


class ColumnMajorBinarySource(Dataset[Sample]):
    """STL10-style raw binary: N images of ``(C, W, H)`` uint8 (column-major), memory-mapped.

    The map is opened lazily in each process and dropped from pickles, so workers share the
    page cache instead of copying gigabytes. ``labels`` may be None (unlabeled split: -1).
    """

    def __init__(self, path: Path, shape_chw: tuple[int, int, int], labels: np.ndarray | None):
        self.path = Path(path)
        self.shape_chw = shape_chw
        per_image = int(np.prod(shape_chw))
        size = self.path.stat().st_size
        if size == 0 or size % per_image:
            raise CorruptDatasetError(
                self.path,
                f"size {size} bytes is not a positive multiple of one image ({per_image} bytes); "
                "the file is truncated or not in the STL10 binary format",
            )
        self.n = size // per_image
        if labels is not None and len(labels) != self.n:
            raise CorruptDatasetError(
                self.path, f"holds {self.n} images but its label file has {len(labels)} labels"
            )
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self._map: np.ndarray | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_map": None}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Labels]:
        if self._map is None:
            c, h, w = self.shape_chw
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self.n, c, w, h))
        image = np.ascontiguousarray(self._map[index].transpose(0, 2, 1))
        label = -1 if self.labels is None else int(self.labels[index])
        return torch.from_numpy(image), (label,)


class FileSource(Dataset[Sample]):
    """Image files (JPEG/PNG) decoded to RGB uint8 with ``torchvision.io``."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int]) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} files but {len(labels)} labels")
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Labels]:
        path = self.paths[index]
        try:
            image = decode_image(path, mode=ImageReadMode.RGB)
        except (RuntimeError, OSError) as err:
            raise CorruptDatasetError(path, f"cannot decode image ({err})") from err
        return image, (int(self.labels[index]),)


def random_subset(source: ImageSource, max_samples: int | None, seed: int) -> ImageSource:
    """A seeded random subset of ``max_samples`` (kept in file order), or ``source`` itself.

    Random rather than the first N, because folder formats are sorted by class.
    """
    if max_samples is None or max_samples >= len(source):
        return source
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(source), generator=generator)[:max_samples]
    # An ImageSource is structurally a map-style Dataset, which is all Subset reads.
    return Subset(cast(Dataset[Sample], source), chosen.sort().values.tolist())


#: Seed of the held-out validation split: fixed, so every run of a table (whatever its own
#: seed) is validated on the same images.
VALIDATION_SEED = 2**31 - 1


def hold_out(source: ImageSource, n: int) -> tuple[ImageSource, ImageSource]:
    """``(rest, held_out)``: ``n`` samples of ``source`` drawn with :data:`VALIDATION_SEED`,
    and the others; both in file order, disjoint, together all of ``source``.

    A validation split carved from the training split, so a hyper-parameter can be chosen
    without reading the test split.
    """
    if n >= len(source):
        raise ValueError(
            f"val_samples={n} would hold out all {len(source)} training samples; "
            f"use fewer than {len(source)}"
        )
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    order = torch.randperm(len(source), generator=generator)
    held, rest = order[:n].sort().values.tolist(), order[n:].sort().values.tolist()
    data = cast(Dataset[Sample], source)  # structurally a map-style Dataset (see above)
    return Subset(data, rest), Subset(data, held)


def unreadable_samples(sources: Iterable[ImageSource], threads: int) -> list[tuple[str, str]]:
    """``(path, problem)`` for every sample of ``sources`` that fails to load.

    Reads each distinct sample once (sources may share one, e.g. the SSL and eval train
    splits) through the source itself, so the check is exactly what training would hit.
    Threads, not processes: JPEG decoding and file reads release the GIL.
    """
    unique = list({id(s): s for s in sources}.values())

    def check(item: tuple[ImageSource, int]) -> tuple[str, str] | None:
        source, index = item
        try:
            source[index]
        except CorruptDatasetError as err:
            return err.path, err.problem
        return None

    items = [(s, i) for s in unique for i in range(len(s))]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = {r for r in pool.map(check, items, chunksize=64) if r is not None}
    return sorted(found)
