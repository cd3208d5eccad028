"""MNIST and Fashion-MNIST from their IDX files (gzip or raw).

The IDX reader is ours (a header and ``numpy.frombuffer``): torchvision's MNIST class insists on
its own folder layout and, with ``download=True``, on checksums, while users and the Debian
package ``dataset-fashion-mnist`` keep the files elsewhere. Looked up, in order: the torchvision
layout ``root/MNIST/raw/`` (``root/FashionMNIST/raw/``), ``root/fashion-mnist/`` (Fashion),
``root`` itself, and for Fashion-MNIST ``/usr/share/datasets/fashion-mnist/`` (Debian) -- the
last only when no root was given (neither ``root=`` nor ``$SSL_GEOM_DATA``): an explicit root
that holds nothing is an error, never a silent switch to the system copy.

MNIST and Fashion-MNIST files have the same names and format, so a folder of one is easily
passed as the other. Each split's label file is checked against the first ten labels of the
official files (:data:`LABEL_SIGNATURES`): labels that start like the *other* dataset's are
refused. Checksums would not do: the Debian package re-compresses the files, so its ``.gz``
MD5s differ from the originals, and unpacked copies have none. Files that match neither
signature (subsets, reshuffled copies, the generated fixtures of :mod:`ssl_geom.data.fake`) are
used as given; to make a fixture fail the check, start its labels with the other signature.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError
from ssl_geom.data.sources import ArraySource, ImageSource

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# The first ten labels of each official label file, read from the original files (Fashion-MNIST:
# the Debian package's copies; MNIST: LeCun's train/t10k label files, whose first training image
# is the well-known '5').
LABEL_SIGNATURES: dict[str, dict[Split, tuple[int, ...]]] = {
    "mnist": {"train": (5, 0, 4, 1, 9, 2, 1, 3, 1, 4), "test": (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)},
    "fashion": {"train": (9, 0, 0, 3, 0, 2, 7, 2, 5, 5), "test": (9, 2, 1, 1, 6, 1, 4, 6, 5, 7)},
}
VARIANT_NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}

# Fashion-MNIST's classes grouped into super-classes by garment type, its stand-in for CIFAR-100's
# 20 coarse labels in the geometry paper's fine-vs-coarse label match (Cosentino et al., Fig. 6).
# Fashion-MNIST publishes no coarse labels; this grouping is ours. Dresses go with the
# upper-body garments, the classes they are most confused with at 28x28.
FASHION_SUPERCLASSES: dict[str, tuple[int, ...]] = {
    "tops and dresses": (0, 2, 3, 4, 6),  # T-shirt/top, Pullover, Dress, Coat, Shirt
    "trousers": (1,),
    "footwear": (5, 7, 9),  # Sandal, Sneaker, Ankle boot
    "bags": (8,),
}
FASHION_COARSE = np.empty(10, dtype=np.int64)  # fine label -> super-class index
for _coarse, _fine in enumerate(FASHION_SUPERCLASSES.values()):
    FASHION_COARSE[list(_fine)] = _coarse

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
    except (OSError, EOFError, zlib.error) as err:  # a flipped bit in a .gz is a zlib.error
        raise CorruptDatasetError(
            path,
            f"cannot read it ({type(err).__name__}: {err}); the file is damaged",
            "replace it with a fresh copy of the original file",
        ) from err
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


def identify_labels(labels: np.ndarray, split: Split) -> str | None:
    """``"mnist"`` or ``"fashion"`` when ``labels`` start like that official label file."""
    head = tuple(int(y) for y in labels[:10])
    for variant, signatures in LABEL_SIGNATURES.items():
        if head == signatures[split]:
            return variant
    return None


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


class MNISTDataModule(SSLDataModule):
    """MNIST (``variant="mnist"``) or Fashion-MNIST (``variant="fashion"``), 28x28 grayscale.

    SimCLR views use crop, brightness/contrast jitter, and a horizontal flip for Fashion-MNIST
    only (digits are not mirror symmetric). Validation and test use the 10,000 test images.
    With ``coarse_labels=True`` (Fashion-MNIST only) eval batches are ``(x, y, y_coarse)``,
    ``y_coarse`` the :data:`FASHION_SUPERCLASSES` index, as CIFAR-100's fine and coarse labels.
    """

    num_classes = 10
    in_channels = 1
    image_size = 28
    supports_download = True

    def __init__(
        self,
        variant: Literal["mnist", "fashion"] = "mnist",
        coarse_labels: bool = False,
        **kwargs: Any,
    ) -> None:
        """``variant`` picks the dataset; ``coarse_labels`` adds Fashion-MNIST's super-class
        label to eval batches; every other argument is :class:`SSLDataModule`'s."""
        if variant not in _STATS:
            raise ValueError(f"unknown MNIST variant {variant!r}; expected one of {list(_STATS)}")
        if coarse_labels and variant != "fashion":
            raise ValueError(
                f"coarse_labels=True needs variant='fashion' (got {variant!r}): only Fashion-MNIST "
                f"has a super-class grouping ({', '.join(FASHION_SUPERCLASSES)}); drop "
                "coarse_labels for MNIST digits"
            )
        self.coarse_labels = coarse_labels
        self.num_coarse_classes = len(FASHION_SUPERCLASSES) if coarse_labels else None
        self.variant = variant
        self.name = VARIANT_NAMES[variant]
        self.mean, self.std = _STATS[variant]
        self.flip_allowed = variant == "fashion"
        super().__init__(**kwargs)

    def _candidates(self) -> list[Path]:
        if self.variant == "fashion":
            return [
                self.root / "FashionMNIST" / "raw",
                self.root / "fashion-mnist",
                self.root,
                *([] if self.root_given else [DEBIAN_FASHION_DIR]),
            ]
        return [self.root / "MNIST" / "raw", self.root]

    def _placement_hint(self) -> str:
        hint = (
            f"pass download=True (torchvision, into {self.root}), or copy the four IDX files "
            f"into {self._candidates()[0]}"
        )
        if self.variant == "fashion":
            hint += " or install the Debian/Ubuntu package dataset-fashion-mnist"
            if self.root_given:
                hint += f" and leave root unset (it is read from {DEBIAN_FASHION_DIR} then)"
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
        if image_path is None or label_path is None:  # _locate() saw them; removed since
            raise DatasetNotFoundError(
                self.name,
                [folder],
                [f"{image_stem}[.gz]", f"{label_stem}[.gz]"],
                self._placement_hint(),
            )
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
        found = identify_labels(labels, split)
        if found is not None and found != self.variant:
            raise CorruptDatasetError(
                label_path,
                f"these are the official {VARIANT_NAMES[found]} labels, but variant={self.variant!r} "
                f"({self.name}) was asked for",
                f"point root at a {self.name} copy, or set variant={found!r} to train on "
                f"{VARIANT_NAMES[found]}",
            )
        fine = labels.astype(np.int64)
        return ArraySource(
            images[:, None], [fine, FASHION_COARSE[fine]] if self.coarse_labels else [fine]
        )
