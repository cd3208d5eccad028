"""Which MNIST-format files a DataModule reads, and whether they are the dataset asked for.

Covers: an explicit root is the only place looked at (no silent fallback to the system
Fashion-MNIST), the fallback when no root is given (logged once), MNIST digit files under a
Fashion-MNIST root refused by their labels, and a bit-flipped ``.gz`` named with a remedy.
The "system copy" is a fixture folder patched in for ``DEBIAN_FASHION_DIR``, so these tests
mean the same with or without the Debian package installed.
"""

from __future__ import annotations

import gzip
import logging
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_geom.data import CorruptDatasetError, DatasetNotFoundError, MNISTDataModule
from ssl_geom.data import mnist as mnist_module
from ssl_geom.data.fake import write_fake_dataset


def _idx_gz(array: np.ndarray) -> bytes:
    """IDX by hand: magic (0, 0, 0x08 = ubyte, ndim), big-endian dims, row-major bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def _write_mnist_files(folder: Path, train_labels: list[int], test_labels: list[int]) -> Path:
    """The four files with the given labels and blank images (the check reads labels only)."""
    folder.mkdir(parents=True)
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        y = np.asarray(labels)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx_gz(y))
        images = np.zeros((len(y), 28, 28), np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx_gz(images))
    return folder


@pytest.fixture
def system_fashion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /usr/share/datasets/fashion-mnist, no $SSL_GEOM_DATA, an empty cwd."""
    write_fake_dataset("fashion", tmp_path / "system", n_train=16, n_test=8)
    folder = tmp_path / "system" / "FashionMNIST" / "raw"
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", folder)
    monkeypatch.delenv("SSL_GEOM_DATA", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


def test_an_explicit_root_without_the_files_is_an_error_despite_a_system_copy(
    system_fashion: Path, tmp_path: Path
) -> None:
    typo = tmp_path / "typo"
    dm = MNISTDataModule(root=str(typo), variant="fashion", num_workers=0)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup()
    looked_at = info.value.looked_at
    assert str(system_fashion) not in looked_at
    assert looked_at == [str(typo / "FashionMNIST" / "raw"), str(typo / "fashion-mnist"), str(typo)]
    assert "leave root unset" in str(info.value)


def test_ssl_geom_data_counts_as_an_explicit_root(
    system_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_GEOM_DATA", str(tmp_path / "typo"))
    with pytest.raises(DatasetNotFoundError):
        MNISTDataModule(variant="fashion", num_workers=0).setup()


def test_without_a_root_the_system_copy_is_used_and_logged_once(
    system_fashion: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = MNISTDataModule(variant="fashion", num_workers=0)
    with caplog.at_level(logging.INFO):
        dm.setup()
        dm.setup()  # a second stage (Lightning calls setup per stage) reads nothing again
        assert len(dm.source("train")) == 16
    reading = [r.getMessage() for r in caplog.records if "reading" in r.getMessage()]
    assert reading == [f"Fashion-MNIST: reading {system_fashion.resolve()}"]


# First ten labels of the official files; the Fashion-MNIST ones are also checked against the
# real files in test_data_fashion_debian.py.
MNIST_TRAIN, MNIST_TEST = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FASHION_TRAIN, FASHION_TEST = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]


def test_mnist_digit_files_under_a_fashion_root_are_refused(tmp_path: Path) -> None:
    folder = _write_mnist_files(tmp_path / "data", [*MNIST_TRAIN, 3], MNIST_TEST)
    dm = MNISTDataModule(root=str(folder), variant="fashion", num_workers=0)
    label_file = re.escape(str(folder / "train-labels-idx1-ubyte.gz"))
    with pytest.raises(
        CorruptDatasetError,
        match=label_file + r".*official MNIST labels, but variant='fashion'.*variant='mnist'",
    ):
        dm.setup()
    # The same files read as MNIST are accepted.
    assert len(MNISTDataModule(root=str(folder), num_workers=0).source("train")) == 11


def test_fashion_files_under_an_mnist_root_are_refused_per_split(tmp_path: Path) -> None:
    # Train labels match no signature (accepted as given), test labels are Fashion-MNIST's.
    _write_mnist_files(tmp_path / "MNIST" / "raw", [1, 2, 3], FASHION_TEST)
    with pytest.raises(CorruptDatasetError, match=r"t10k-labels.*official Fashion-MNIST labels"):
        MNISTDataModule(root=str(tmp_path), num_workers=0).setup()


def test_files_matching_no_signature_are_used_as_given(tmp_path: Path) -> None:
    # The generated fixtures: random labels, neither dataset's signature.
    write_fake_dataset("fashion", tmp_path, n_train=12, n_test=6)
    dm = MNISTDataModule(root=str(tmp_path), variant="fashion", num_workers=0)
    assert (len(dm.source("train")), len(dm.source("test"))) == (12, 6)
    assert mnist_module.identify_labels(np.array(FASHION_TRAIN), "train") == "fashion"
    assert mnist_module.identify_labels(np.array(FASHION_TRAIN[:9]), "train") is None


def test_a_bit_flipped_gz_names_the_file_and_says_to_replace_it(tmp_path: Path) -> None:
    raw = write_fake_dataset("mnist", tmp_path, n_train=64, n_test=8) / "MNIST" / "raw"
    path = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # one flipped bit inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatasetError) as info:
        MNISTDataModule(root=str(tmp_path), num_workers=0).setup()
    message = str(info.value)
    assert str(path) in message and "replace it with a fresh copy" in message
    assert isinstance(info.value.__cause__, Exception)  # zlib.error or gzip's CRC error


def test_fashion_coarse_labels_follow_the_documented_superclasses(tmp_path: Path) -> None:
    # One image of each class in order: the expected super-class of fine label k is read off
    # the hand-written table below (Fashion-MNIST class names), not computed by the module.
    by_hand = {0: 0, 2: 0, 3: 0, 4: 0, 6: 0, 1: 1, 5: 2, 7: 2, 9: 2, 8: 3}
    labels = list(range(10))
    _write_mnist_files(tmp_path / "f", labels, labels)
    dm = MNISTDataModule(
        root=str(tmp_path / "f"), variant="fashion", coarse_labels=True, num_workers=0, batch_size=4
    )
    assert dm.num_coarse_classes == 4
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert all(len(b) == 3 and b[0].shape[1:] == (1, 28, 28) for b in batches)
    y, y_coarse = (torch.cat([b[i] for b in batches]) for i in (1, 2))
    assert sorted(y.tolist()) == labels
    assert y_coarse.tolist() == [by_hand[int(k)] for k in y]
    views, y_train = next(iter(dm.train_dataloader()))  # SSL batches keep the fine label only
    assert isinstance(views, list) and y_train.dtype == torch.long and y_train.ndim == 1


def test_without_coarse_labels_eval_batches_stay_x_y(tmp_path: Path) -> None:
    _write_mnist_files(tmp_path / "f", list(range(10)), list(range(10)))
    dm = MNISTDataModule(root=str(tmp_path / "f"), variant="fashion", num_workers=0)
    dm.setup("fit")
    assert len(next(iter(dm.val_dataloader()))) == 2 and dm.num_coarse_classes is None


def test_coarse_labels_for_mnist_digits_are_refused_at_construction() -> None:
    with pytest.raises(
        ValueError, match=r"coarse_labels=True needs variant='fashion' \(got 'mnist'\)"
    ):
        MNISTDataModule(variant="mnist", coarse_labels=True)
