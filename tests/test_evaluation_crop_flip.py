"""The official linear probes' training views: ``LinearEvalData(augment="crop_flip")``.

MoCo's ``main_lincls.py`` (kept by CARE's ImageNet-100 protocol) trains the classifier on
``RandomResizedCrop`` + ``RandomHorizontalFlip`` of the labelled train split. Checked against an
independent recomputation: each sample's view is the transform drawn with the seed the seeded
sampler gives it, so views are reproducible per (seed, epoch) and change between epochs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

from ssl_geom.data import MNISTDataModule, STL10DataModule
from ssl_geom.data.datasets import SeededViewSampler
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.evaluation import LinearEvalData


@pytest.fixture(scope="module")
def stl10(tmp_path_factory: pytest.TempPathFactory) -> STL10DataModule:
    root = write_fake_dataset("stl10", tmp_path_factory.mktemp("stl10"), n_train=12, n_test=8)
    return STL10DataModule(root=str(root), image_size=32, batch_size=4, num_workers=0)


def _ops(transform: v2.Compose) -> list[v2.Transform]:
    return list(transform.transforms)


def test_the_transform_is_a_random_resized_crop_and_a_flip_then_normalisation() -> None:
    stl = STL10DataModule(root=".", image_size=32).augmentation.crop_flip_transform()
    crop, flip, *rest = _ops(stl)
    assert isinstance(crop, v2.RandomResizedCrop) and tuple(crop.size) == (32, 32)
    assert crop.scale == (0.08, 1.0)  # torchvision's default, as main_lincls.py uses it
    assert isinstance(flip, v2.RandomHorizontalFlip)
    assert [type(op) for op in rest] == [v2.ToDtype, v2.Normalize]
    digits = MNISTDataModule(root=".").augmentation.crop_flip_transform()
    assert not [op for op in _ops(digits) if isinstance(op, v2.RandomHorizontalFlip)]


def test_training_batches_are_seeded_crops_of_the_labelled_split(stl10: STL10DataModule) -> None:
    data = LinearEvalData(stl10, augment="crop_flip", cache_features=False)
    data.setup("fit")
    source = stl10.source("train")
    loader = data.train_dataloader()
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and bool((y >= 0).all())  # no unlabeled images (-1)

    # The first batch again, by hand: the sampler's (index, seed) pairs of epoch 0.
    keys = list(SeededViewSampler(len(source), stl10.seed))[:4]
    transform = stl10.augmentation.crop_flip_transform()
    expected = []
    for index, seed in keys:
        torch.manual_seed(seed)
        expected.append(transform(source[index][0]))
    torch.testing.assert_close(x, torch.stack(expected))
    torch.testing.assert_close(y, torch.tensor([source[i][1][0] for i, _ in keys]))

    again = next(iter(LinearEvalData(stl10, augment="crop_flip", cache_features=False)
                      .train_dataloader()))[0]  # fmt: skip
    torch.testing.assert_close(again, x)  # same seed, same epoch: the same views
    second_epoch = next(iter(loader))[0]  # the sampler's next pass: epoch 1's seeds
    assert not torch.equal(second_epoch, x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"augment": "crop_flip"}, r"augment='crop_flip' draws new random views.*cache"),
        ({"augment": "rotate", "cache_features": False}, r"unknown augment 'rotate'"),
    ],
)
def test_bad_augment_settings_are_refused(stl10: STL10DataModule, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LinearEvalData(stl10, **kwargs)


def test_crop_flip_needs_no_train_views(tmp_path: Path) -> None:
    """Unlike augment=True, which trains on the dataset's own train_views."""
    dm = MNISTDataModule(root=str(tmp_path), train_views="none")
    assert LinearEvalData(dm, augment="crop_flip", cache_features=False).augment == "crop_flip"
    with pytest.raises(ValueError, match="train_views='none' is not an augmentation"):
        LinearEvalData(dm, augment=True, cache_features=False)
