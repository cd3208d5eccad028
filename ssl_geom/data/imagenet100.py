"""ImageNet-100: the 100-class ImageNet subset of CMC (Tian et al. 2020), from class folders.

The class list ships as package data (``imagenet100_classes.txt``, CMC's order, which defines
the labels). Works from a full ImageNet root or a pre-extracted subset, with the standard
class-folder layout ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (a flat ImageNet val
folder must first be sorted into class folders, e.g. with the usual ``valprep.sh``). Looked up
in ``root/imagenet100``, ``root/imagenet`` and ``root``. No download: ImageNet needs a licence.
Train views are random-resized crops at ``image_size`` (default 224); evaluation resizes the
short side to ``image_size * 256 / 224`` and centre-crops.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from torchvision.transforms import v2

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.errors import DatasetNotFoundError
from ssl_geom.data.sources import FileSource, ImageSource

_IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def imagenet100_classes() -> list[str]:
    """The 100 WordNet ids of ImageNet-100, in label order."""
    text = resources.files("ssl_geom.data").joinpath("imagenet100_classes.txt").read_text()
    return text.split()


class ImageNet100DataModule(SSLDataModule):
    """ImageNet-100 (CMC subset), RGB at ``image_size`` (default 224), 100 classes."""

    name = "ImageNet-100"
    num_classes = 100
    in_channels = 3
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    supports_download = False

    def __init__(self, image_size: int = 224, **kwargs: Any) -> None:
        """``image_size``: side of the square crops; other arguments are :class:`SSLDataModule`'s."""
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
        self.image_size = image_size
        super().__init__(**kwargs)

    def _candidates(self) -> list[Path]:
        return [self.root / "imagenet100", self.root / "imagenet", self.root]

    def _placement_hint(self) -> str:
        return (
            f"ImageNet cannot be downloaded automatically (licence). Put an ImageNet root, or "
            f"the 100 class folders listed in ssl_geom/data/imagenet100_classes.txt, as "
            f"train/<wnid>/ and val/<wnid>/ under {self._candidates()[0]} or {self.root}"
        )

    def _locate(self) -> Path:
        classes = imagenet100_classes()
        for folder in self._candidates():
            if all((folder / s / c).is_dir() for s in ("train", "val") for c in classes):
                return folder
        raise DatasetNotFoundError(
            self.name,
            self._candidates(),
            ["train/<wnid>/*.JPEG", "val/<wnid>/*.JPEG", "for each of the 100 wnids"],
            self._placement_hint(),
        )

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        paths, labels = [], []
        for label, wnid in enumerate(imagenet100_classes()):
            with os.scandir(folder / ("train" if split == "train" else "val") / wnid) as entries:
                files = sorted(
                    e.path for e in entries if e.name.lower().endswith(_IMAGE_EXTENSIONS)
                )
            paths += files
            labels += [label] * len(files)
        return FileSource(paths, labels)

    def _base_ops(self) -> list[v2.Transform]:
        return [
            v2.Resize(self.image_size * 256 // 224, antialias=True),
            v2.CenterCrop(self.image_size),
        ]
