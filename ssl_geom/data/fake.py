"""Tiny datasets written in the REAL on-disk formats, for tests and demos without downloads.

``write_fake_dataset(name, root)`` writes what the matching DataModule reads (gzipped IDX,
CIFAR pickles, STL10 column-major binaries, Tiny ImageNet and ImageNet-100 JPEG folders) and
returns the root to pass as ``root=``. Each image is its class's fixed random template plus
noise, so a probe can learn the labels. CIFAR-100 coarse labels are ``fine // 5`` (a
consistent 5-to-1 mapping; the real CIFAR grouping is different). Existing files are never
overwritten: writing into a folder that already holds the dataset raises FileExistsError.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.io import encode_jpeg

from ssl_geom.data.imagenet100 import imagenet100_classes
from ssl_geom.io import write_atomic

FAKE_DATASETS: tuple[str, ...] = (
    "mnist",
    "fashion",
    "cifar10",
    "cifar100",
    "stl10",
    "tiny_imagenet",
    "imagenet100",
)


def _images(
    rng: np.random.Generator, labels: np.ndarray, n_classes: int, shape: tuple[int, int, int]
) -> np.ndarray:
    """uint8 ``(N, C, H, W)``: 0.7 x class template + 0.3 x noise."""
    templates = rng.integers(0, 256, size=(n_classes, *shape)).astype(np.float32)
    noise = rng.integers(0, 256, size=(len(labels), *shape)).astype(np.float32)
    return (0.7 * templates[labels] + 0.3 * noise).astype(np.uint8)


def _labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Every class once before any repeats, shuffled."""
    return rng.permutation(np.arange(n) % n_classes)


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _mnist(root: Path, folder: str, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = _labels(n, 10, rng)
        x = _images(rng, y, 10, (1, 28, 28))[:, 0]
        raw = root / folder / "raw"
        write_atomic(raw / f"{prefix}-images-idx3-ubyte.gz", gzip.compress(_idx(x), mtime=0))
        write_atomic(raw / f"{prefix}-labels-idx1-ubyte.gz", gzip.compress(_idx(y), mtime=0))


def _pickle(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=2)


def _cifar10(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    folder = root / "cifar-10-batches-py"
    y = _labels(n_train, 10, rng)
    x = _images(rng, y, 10, (3, 32, 32)).reshape(n_train, -1)
    for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        batch = {
            "batch_label": f"training batch {i} of 5",
            "data": x[part],
            "labels": y[part].tolist(),
        }
        write_atomic(folder / f"data_batch_{i}", _pickle(batch))
    y = _labels(n_test, 10, rng)
    x = _images(rng, y, 10, (3, 32, 32)).reshape(n_test, -1)
    write_atomic(folder / "test_batch", _pickle({"data": x, "labels": y.tolist()}))
    names = [f"class_{i}" for i in range(10)]
    write_atomic(folder / "batches.meta", _pickle({"label_names": names, "num_vis": 3072}))


def _cifar100(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    folder = root / "cifar-100-python"
    for split, n in (("train", n_train), ("test", n_test)):
        fine = _labels(n, 100, rng)
        x = _images(rng, fine, 100, (3, 32, 32)).reshape(n, -1)
        entry = {"data": x, "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist()}
        write_atomic(folder / split, _pickle(entry))
    meta = {
        "fine_label_names": [f"fine_{i}" for i in range(100)],
        "coarse_label_names": [f"coarse_{i}" for i in range(20)],
    }
    write_atomic(folder / "meta", _pickle(meta))


def _stl10(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    folder = root / "stl10_binary"

    def column_major(x: np.ndarray) -> bytes:
        return np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tobytes()

    for split, n in (("train", n_train), ("test", n_test)):
        y = _labels(n, 10, rng)
        write_atomic(folder / f"{split}_X.bin", column_major(_images(rng, y, 10, (3, 96, 96))))
        write_atomic(folder / f"{split}_y.bin", (y + 1).astype(np.uint8).tobytes())
    y = _labels(n_train, 10, rng)
    write_atomic(folder / "unlabeled_X.bin", column_major(_images(rng, y, 10, (3, 96, 96))))
    write_atomic(folder / "class_names.txt", "".join(f"class_{i}\n" for i in range(10)).encode())


def _jpeg(image: np.ndarray) -> bytes:
    return encode_jpeg(torch.from_numpy(image), quality=90).numpy().tobytes()


def _tiny_imagenet(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{90000000 + i:08d}" for i in range(200)]
    write_atomic(folder / "wnids.txt", "".join(w + "\n" for w in wnids).encode())
    y = _labels(n_train, 200, rng)
    x = _images(rng, y, 200, (3, 64, 64))
    counts = dict.fromkeys(wnids, 0)
    for image, label in zip(x, y, strict=True):
        wnid = wnids[label]
        name = f"{wnid}_{counts[wnid]}.JPEG"
        counts[wnid] += 1
        write_atomic(folder / "train" / wnid / "images" / name, _jpeg(image))
    for wnid in wnids:  # the real archive has a folder per class even for empty ones here
        (folder / "train" / wnid / "images").mkdir(parents=True, exist_ok=True)
    y = _labels(n_test, 200, rng)
    x = _images(rng, y, 200, (3, 64, 64))
    lines = []
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        write_atomic(folder / "val" / "images" / f"val_{i}.JPEG", _jpeg(image))
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63\n")
    write_atomic(folder / "val" / "val_annotations.txt", "".join(lines).encode())


def _imagenet100(root: Path, n_train: int, n_test: int, rng: np.random.Generator) -> None:
    folder = root / "imagenet100"
    wnids = imagenet100_classes()
    for split, n in (("train", n_train), ("val", n_test)):
        y = _labels(n, 100, rng)
        x = _images(rng, y, 100, (3, 80, 80))
        for wnid in wnids:
            (folder / split / wnid).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            wnid = wnids[label]
            write_atomic(folder / split / wnid / f"{wnid}_{i}.JPEG", _jpeg(image))


_WRITERS: dict[str, Callable[[Path, int, int, np.random.Generator], None]] = {
    "mnist": lambda root, a, b, rng: _mnist(root, "MNIST", a, b, rng),
    "fashion": lambda root, a, b, rng: _mnist(root, "FashionMNIST", a, b, rng),
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "stl10": _stl10,
    "tiny_imagenet": _tiny_imagenet,
    "imagenet100": _imagenet100,
}


def write_fake_dataset(
    name: str, root: str | Path, n_train: int = 200, n_test: int = 100, seed: int = 0
) -> Path:
    """Write a tiny ``name`` dataset under ``root`` in its real format; return ``root``.

    ``n_train`` labelled training images (STL10 also gets ``n_train`` unlabeled ones) and
    ``n_test`` test/val images, class-balanced as far as the counts allow.
    """
    if name not in _WRITERS:
        raise ValueError(f"unknown fake dataset {name!r}; expected one of {list(FAKE_DATASETS)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    root = Path(root)
    _WRITERS[name](root, n_train, n_test, np.random.default_rng(seed))
    return root
