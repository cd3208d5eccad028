"""STL10 from its binaries (``stl10_binary/``), memory-mapped.

Read by us rather than torchvision's STL10 class, which checks archive hashes. Images are stored
column-major as ``3 x 96 x 96`` uint8 (see :class:`ColumnMajorBinarySource`), labels as uint8
1..10 (we shift to 0..9). SSL training uses train (5,000) + unlabeled (100,000) images; the
unlabeled ones carry label -1, which online probes must skip (``y < 0``). Eval: ``train`` and
``test`` (8,000), labelled.

``image_size`` (default 96, the stored size) sets the side the model sees. The CARE authors
train and evaluate STL10 at 32 px (github.com/Sharut/CARE, commit 28718be,
``cifar10_cifar100_stl10/dataset.py``: ``RandomResizedCrop(32)`` on the 96 px images for the
views, ``Resize(32)`` for evaluation); we do the same: SimCLR crops go straight from the
96 px image to ``image_size``, everything else (evaluation, the un-augmented original, group
views) first resizes the whole image to ``image_size``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torchvision.transforms import v2

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError
from ssl_geom.data.sources import ColumnMajorBinarySource, ImageSource

FOLDER = "stl10_binary"
FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin")
SHAPE = (3, 96, 96)


class STL10DataModule(SSLDataModule):
    """STL10, stored 96x96 RGB, 10 classes; SSL train = train + unlabeled (label -1)."""

    name = "STL10"
    num_classes = 10
    in_channels = 3
    image_size = 96
    mean = (0.4467, 0.4398, 0.4066)
    std = (0.2603, 0.2566, 0.2713)
    supports_download = True

    def __init__(self, image_size: int = SHAPE[1], **kwargs: Any) -> None:
        """``image_size``: side of the images the model sees (96 = stored); others as the base."""
        if not isinstance(image_size, int) or image_size < 8:
            raise ValueError(
                f"image_size must be an int >= 8 pixels, got {image_size!r}; STL10 is stored at "
                f"{SHAPE[1]} px (the CARE paper's code trains at 32)"
            )
        self.image_size = image_size
        super().__init__(**kwargs)

    def _base_ops(self) -> list[v2.Transform]:
        if self.image_size == SHAPE[1]:
            return []
        return [v2.Resize((self.image_size, self.image_size), antialias=True)]

    def _placement_hint(self) -> str:
        return (
            f"pass download=True (torchvision, into {self.root}), or extract "
            f"stl10_binary.tar.gz so that {self.root / FOLDER} exists"
        )

    def _locate(self) -> Path:
        folder = self.root / FOLDER
        if all((folder / f).is_file() for f in FILES):
            return folder
        raise DatasetNotFoundError(self.name, [folder], FILES, self._placement_hint())

    def _download(self) -> None:
        from torchvision.datasets import STL10

        STL10(str(self.root), split="test", download=True)

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        label_path = folder / f"{split}_y.bin"
        labels = np.fromfile(label_path, dtype=np.uint8).astype(np.int64)
        if labels.size == 0 or labels.min() < 1 or labels.max() > self.num_classes:
            raise CorruptDatasetError(label_path, "labels must be uint8 values 1..10")
        return ColumnMajorBinarySource(folder / f"{split}_X.bin", SHAPE, labels - 1)

    def _read_unlabeled(self, folder: Path) -> ImageSource:
        return ColumnMajorBinarySource(folder / "unlabeled_X.bin", SHAPE, None)
