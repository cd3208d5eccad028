"""Tiny ImageNet (``tiny-imagenet-200/``): 200 classes, 64x64 JPEGs.

Layout (as distributed by Stanford CS231n): ``wnids.txt`` (one class id per line, defining the
label order), ``train/<wnid>/images/*.JPEG`` (500 per class), ``val/images/*.JPEG`` with
``val/val_annotations.txt`` (``file<TAB>wnid<TAB>box``). The test split has no labels, so
validation and test both use ``val``. A few images are grayscale JPEGs; they are decoded as RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError
from ssl_geom.data.sources import FileSource, ImageSource

FOLDER = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
EXPECTED = (
    "wnids.txt",
    "train/<wnid>/images/*.JPEG",
    "val/images/*.JPEG",
    "val/val_annotations.txt",
)
_IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def _images_in(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.path for e in entries if e.name.lower().endswith(_IMAGE_EXTENSIONS))


class TinyImageNetDataModule(SSLDataModule):
    """Tiny ImageNet, 64x64 RGB, 200 classes; val/test = the 10,000 labelled val images."""

    name = "Tiny ImageNet"
    num_classes = 200
    in_channels = 3
    image_size = 64
    mean = (0.4802, 0.4481, 0.3975)
    std = (0.2770, 0.2691, 0.2821)
    supports_download = True

    def _placement_hint(self) -> str:
        return f"pass download=True, or unzip {URL} into {self.root}"

    def _locate(self) -> Path:
        folder = self.root / FOLDER
        needed = [folder / "wnids.txt", folder / "train", folder / "val" / "val_annotations.txt"]
        if all(p.exists() for p in needed):
            return folder
        raise DatasetNotFoundError(self.name, [folder], EXPECTED, self._placement_hint())

    def _download(self) -> None:
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(URL, str(self.root), md5=MD5)

    def _wnids(self, folder: Path) -> list[str]:
        path = folder / "wnids.txt"
        wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(wnids) != self.num_classes or len(set(wnids)) != len(wnids):
            raise CorruptDatasetError(
                path, f"expected {self.num_classes} distinct class ids, found {len(wnids)}"
            )
        return wnids

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        index = {w: i for i, w in enumerate(self._wnids(folder))}
        if split == "train":
            paths, labels = [], []
            for wnid, label in index.items():
                class_dir = folder / "train" / wnid / "images"
                if not class_dir.is_dir():
                    raise DatasetNotFoundError(
                        self.name, [class_dir], ["*.JPEG"], self._placement_hint()
                    )
                files = _images_in(class_dir)
                paths += files
                labels += [label] * len(files)
            return FileSource(paths, labels)
        annotations = folder / "val" / "val_annotations.txt"
        paths, labels = [], []
        for n, line in enumerate(annotations.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise CorruptDatasetError(
                    annotations, f"line {n} is not '<file>\\t<wnid from wnids.txt>...': {line!r}"
                )
            paths.append(str(folder / "val" / "images" / fields[0]))
            labels.append(index[fields[1]])
        missing = [p for p in paths[:1] + paths[-1:] if not os.path.isfile(p)]
        if missing:
            raise DatasetNotFoundError(
                self.name, missing, ["val/images/*.JPEG"], self._placement_hint()
            )
        return FileSource(paths, labels)
