"""CIFAR-10 and CIFAR-100 from the python pickles (``cifar-10-batches-py/``, ``cifar-100-python/``).

Read with our own restricted unpickler rather than torchvision's CIFAR classes, which hash every
file at construction and refuse copies that differ from the archive (and whose pickle loading
would run arbitrary code from a tampered file). Only ``download=True`` goes through torchvision,
which verifies the archive checksum. CIFAR-100 eval batches carry the fine (100) and coarse (20)
labels: ``(x, y_fine, y_coarse)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ssl_geom.data.base import Split, SSLDataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError
from ssl_geom.data.sources import ArraySource, ImageSource

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing that could execute code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def load_batch(path: Path, label_keys: tuple[str, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """One CIFAR batch file -> uint8 images ``(N, 3, 32, 32)`` and its label arrays."""
    try:
        with open(path, "rb") as fh:
            entry = _SafeUnpickler(fh, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as err:
        raise CorruptDatasetError(path, f"not a readable CIFAR pickle ({err})") from err
    if not isinstance(entry, dict):
        raise CorruptDatasetError(path, f"expected a dict, found {type(entry).__name__}")
    entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    missing = [k for k in ("data", *label_keys) if k not in entry]
    if missing:
        raise CorruptDatasetError(path, f"missing keys {missing}; found {sorted(entry)}")
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDatasetError(
            path, f"'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}"
        )
    labels = [np.asarray(entry[k], dtype=np.int64) for k in label_keys]
    for key, y in zip(label_keys, labels, strict=True):
        if y.shape != (len(data),):
            raise CorruptDatasetError(path, f"'{key}' has shape {y.shape}, expected ({len(data)},)")
    return data.reshape(-1, 3, 32, 32), labels


class _CIFARDataModule(SSLDataModule):
    folder: str = ""
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    label_keys: tuple[str, ...] = ()
    in_channels = 3
    image_size = 32
    supports_download = True

    def _placement_hint(self) -> str:
        return (
            f"pass download=True (torchvision, into {self.root}), or extract the python "
            f"version archive so that {self.root / self.folder} exists"
        )

    def _locate(self) -> Path:
        folder = self.root / self.folder
        if all((folder / f).is_file() for f in (*self.train_files, *self.test_files)):
            return folder
        raise DatasetNotFoundError(
            self.name, [folder], [*self.train_files, *self.test_files], self._placement_hint()
        )

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        files = self.test_files if split == "test" else self.train_files
        parts = [load_batch(folder / f, self.label_keys) for f in files]
        images = np.concatenate([p[0] for p in parts])
        labels = [np.concatenate([p[1][k] for p in parts]) for k in range(len(self.label_keys))]
        for key, y, bound in zip(self.label_keys, labels, self._label_bounds(), strict=True):
            if y.size and (y.min() < 0 or y.max() >= bound):
                raise CorruptDatasetError(folder, f"'{key}' labels outside 0..{bound - 1}")
        return ArraySource(images, labels)

    def _label_bounds(self) -> tuple[int, ...]:
        return (self.num_classes,)


class CIFAR10DataModule(_CIFARDataModule):
    """CIFAR-10, 32x32 RGB, 10 classes; val/test = the 10,000 test images."""

    name = "CIFAR-10"
    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    label_keys = ("labels",)
    num_classes = 10
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def _download(self) -> None:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(self.root), train=False, download=True)


class CIFAR100DataModule(_CIFARDataModule):
    """CIFAR-100, 32x32 RGB; eval batches ``(x, y_fine, y_coarse)``, SSL batches use fine labels."""

    name = "CIFAR-100"
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    label_keys = ("fine_labels", "coarse_labels")
    num_classes = 100
    num_coarse_classes = 20
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)

    def _label_bounds(self) -> tuple[int, ...]:
        return (self.num_classes, 20)

    def _download(self) -> None:
        from torchvision.datasets import CIFAR100

        CIFAR100(str(self.root), train=False, download=True)
