"""Real Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, found without configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssl_geom.data import MNISTDataModule
from ssl_geom.data.mnist import DEBIAN_FASHION_DIR, identify_labels, read_idx

pytestmark = pytest.mark.skipif(
    not (DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed at {DEBIAN_FASHION_DIR} "
    "(apt-get install dataset-fashion-mnist)",
)


def test_debian_fashion_mnist_loads_60k_train_10k_test_10_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found without configuration: no root, no $SSL_GEOM_DATA, nothing under ./data. (An
    # explicit root is the only place looked at, so this no longer passes root=tmp_path.)
    monkeypatch.delenv("SSL_GEOM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    dm = MNISTDataModule(variant="fashion", batch_size=512, num_workers=0)
    train, test = dm.source("train"), dm.source("test")
    # Fashion-MNIST: 60,000 training and 10,000 test images, 6,000 / 1,000 per class.
    assert (len(train), len(test)) == (60_000, 10_000)
    assert torch.equal(torch.from_numpy(train.labels[0]).bincount(), torch.full((10,), 6000))
    assert torch.equal(torch.from_numpy(test.labels[0]).bincount(), torch.full((10,), 1000))
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (512, 1, 28, 28) and y.dtype == torch.int64
    # Normalised with the Fashion-MNIST statistics: the test set's mean pixel is near 0.
    assert abs(x.mean().item()) < 0.1
    views, _ = next(iter(dm.train_dataloader()))
    assert [tuple(v.shape) for v in views] == [(512, 1, 28, 28)] * 2
    assert not any(tmp_path.iterdir())  # nothing written into the working directory


def test_the_debian_files_carry_the_fashion_mnist_label_signature() -> None:
    # The signatures in LABEL_SIGNATURES["fashion"] are the first labels of these files.
    for split, stem in (("train", "train"), ("test", "t10k")):
        labels = read_idx(DEBIAN_FASHION_DIR / f"{stem}-labels-idx1-ubyte.gz")
        assert identify_labels(labels, split) == "fashion"
