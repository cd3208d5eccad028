"""MNIST and Fashion-MNIST from their IDX files (gzip or raw).

The IDX reader is ours (a header and ``numpy.frombuffer``): torchvision's MNIST class insists on
its own folder layout and, with ``download=True``, on checksums, while users and the Debian
package ``dataset-fashion-mnist`` keep the files elsewhere. Looked up, in order: the torchvision
layout ``root/MNIST/raw/`` (``root/FashionMNIST/raw/``), ``root/fashion-mnist/`` (Fashion),
``root`` itself, and for Fashion-MNIST ``/usr/share/datasets/fashion-mnist/`` (Debian).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import numpy as np

from ssl_geom.data.base import Split, SSLDataModule, StrengthName, TrainViews
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError
from ssl_geom.data.sources import ArraySource, ImageSource

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

_STATS = {  # per-channel mean/std of the training images
    "mnist": ((0.1307,), (0.3081,)),
    "fashion": ((0.2860,), (0.3530,)),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzip if the name ends in ``.gz``).

    Raises CorruptDatasetError naming ``path`` when it is truncated, not gzip, or not IDX.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as err:
        raise CorruptDatasetError(path, f"cannot read it ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CorruptDatasetError(path, "not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise CorruptDatasetError(path, f"IDX element type {data[2]:#04x}, expected 0x08 (ubyte)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDatasetError(path, "file ends inside the IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise CorruptDatasetError(
            path, f"holds {len(data)} bytes, but its header {shape} needs {expected} (truncated?)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


class MNISTDataModule(SSLDataModule):
    """MNIST (``variant="mnist"``) or Fashion-MNIST (``variant="fashion"``), 28x28 grayscale.

    SimCLR views use crop, brightness/contrast jitter, and a horizontal flip for Fashion-MNIST
    only (digits are not mirror symmetric). Validation and test use the 10,000 test images.
    """

    num_classes = 10
    in_channels = 1
    image_size = 28
    supports_download = True

    def __init__(
        self,
        root: str | None = None,
        variant: Literal["mnist", "fashion"] = "mnist",
        batch_size: int = 256,
        num_workers: int | None = None,
        download: bool = False,
        seed: int = 0,
        train_views: TrainViews = "simclr",
        n_views: int | None = None,
        include_original: bool = False,
        strength: StrengthName | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        rotation_order: int = 4,
    ) -> None:
        if variant not in _STATS:
            raise ValueError(f"unknown MNIST variant {variant!r}; expected one of {list(_STATS)}")
        self.variant = variant
        self.name = "Fashion-MNIST" if variant == "fashion" else "MNIST"
        self.mean, self.std = _STATS[variant]
        self.flip_allowed = variant == "fashion"
        super().__init__(
            root=root,
            batch_size=batch_size,
            num_workers=num_workers,
            download=download,
            seed=seed,
            train_views=train_views,
            rotation_order=rotation_order,
            n_views=n_views,
            include_original=include_original,
            strength=strength,
            max_train_samples=max_train_samples,
            max_eval_samples=max_eval_samples,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
        )

    def _candidates(self) -> list[Path]:
        if self.variant == "fashion":
            return [
                self.root / "FashionMNIST" / "raw",
                self.root / "fashion-mnist",
                self.root,
                DEBIAN_FASHION_DIR,
            ]
        return [self.root / "MNIST" / "raw", self.root]

    def _placement_hint(self) -> str:
        hint = (
            f"pass download=True (torchvision, into {self.root}), or copy the four IDX files "
            f"into {self._candidates()[0]}"
        )
        if self.variant == "fashion":
            hint += " or install the Debian/Ubuntu package dataset-fashion-mnist"
        return hint

    def _locate(self) -> Path:
        stems = [s for pair in FILES.values() for s in pair]
        for folder in self._candidates():
            if all(_find_file(folder, s) for s in stems):
                return folder
        raise DatasetNotFoundError(
            self.name,
            self._candidates(),
            [f"{s}[.gz]" for s in stems],
            self._placement_hint(),
        )

    def _download(self) -> None:
        from torchvision import datasets

        cls = datasets.FashionMNIST if self.variant == "fashion" else datasets.MNIST
        cls(str(self.root), train=False, download=True)

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        image_stem, label_stem = FILES["test" if split == "test" else "train"]
        image_path, label_path = _find_file(folder, image_stem), _find_file(folder, label_stem)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise CorruptDatasetError(
                image_path, f"expected images (N, H, W) and labels (N,), got {images.shape}"
            )
        if len(images) != len(labels):
            raise CorruptDatasetError(
                label_path, f"{len(labels)} labels for {len(images)} images in {image_path.name}"
            )
        if labels.size and labels.max() >= self.num_classes:
            raise CorruptDatasetError(label_path, f"label {labels.max()} outside 0..9")
        return ArraySource(images[:, None], [labels])
