"""One DataModule, one ``Augmentation``: built from its arguments, serving every consumer.

The views a DataModule's loaders, CARE and the callbacks get all come from ``dm.augmentation``;
these tests check that it is built from the DataModule's own arguments and that its pieces
(per-sample views, same-parameters transforms, device views) behave as documented.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from ssl_geom.augment import (
    Augmentation,
    DeviceSameParams,
    RandomCyclicRotation,
    SameParamsTransform,
    as_same_params,
)
from ssl_geom.augment.same_params import CallableSameParams
from ssl_geom.data import CIFAR10DataModule, MNISTDataModule, STL10DataModule
from tests.test_methods_care import CallNumber


def test_a_datamodule_builds_its_augmentation_from_its_arguments() -> None:
    dm = MNISTDataModule(root="unused", variant="mnist", num_workers=0, seed=5, strength="moderate")
    aug = dm.augmentation
    assert (aug.image_size, aug.in_channels) == (28, 1)
    assert (aug.mean, aug.std) == (tuple(dm.mean), tuple(dm.std))
    assert (aug.strength, aug.seed, aug.augment_on) == ("moderate", 5, "loader")
    # Digits are not mirror symmetric: no flip, whatever the preset (moderate has one).
    assert aug.flip_allowed is False and aug.params.flip is False
    assert aug.params.crop_scale == (0.5, 1.0)  # geometry paper Table 2, moderate
    rotations = MNISTDataModule(
        root="unused", num_workers=0, train_views="rotation", rotation_order=8
    ).augmentation
    assert rotations.rotation_order == 8


def test_group_views_start_with_the_datasets_resize_simclr_views_do_not() -> None:
    # STL10 at 32 px resizes its stored 96 px images; a group view must act on the 32 px
    # image, while the SimCLR crop itself produces 32 px views from the stored image.
    aug = STL10DataModule(image_size=32, num_workers=0).augmentation
    assert [type(op) for op in aug.base_ops] == [v2.Resize]
    rotation = aug.view_transform("rotation").transforms
    assert isinstance(rotation[0], v2.Resize) and isinstance(rotation[1], RandomCyclicRotation)
    assert isinstance(aug.view_transform("simclr").transforms[0], v2.RandomResizedCrop)


def test_the_datamodule_train_views_are_its_augmentations() -> None:
    dm = CIFAR10DataModule(root="unused", num_workers=0, train_views="scale")
    assert repr(dm.view_transform()) == repr(dm.augmentation.view_transform("scale"))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"augment_on": "gpu"},
            r"unknown augment_on 'gpu'; expected one of \['loader', 'device'\]",
        ),
        ({"strength": "huge"}, r"unknown strength 'huge'; expected one of \['large'"),
        ({"rotation_order": 0}, r"rotation_order must be an int >= 1.*got 0"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        Augmentation(32, 3, (0.5,) * 3, (0.25,) * 3, **kwargs)


def test_same_params_kinds_and_where_they_run() -> None:
    loader = Augmentation(32, 3, (0.5,) * 3, (0.25,) * 3)
    device = Augmentation(32, 3, (0.5,) * 3, (0.25,) * 3, augment_on="device", seed=3)
    assert isinstance(loader.same_params(), SameParamsTransform)
    assert isinstance(device.same_params(), DeviceSameParams)
    assert device.same_params().augment.seed == 3
    # Only the SimCLR pair has a device version; the others stay v2 ops.
    assert isinstance(device.same_params("photometric"), SameParamsTransform)
    with pytest.raises(ValueError, match=r"unknown kind 'blur'; expected one of \['simclr'"):
        loader.same_params("blur")


def test_each_same_params_call_gets_its_own_generator() -> None:
    # CARE and the callbacks each ask for one; sharing a generator would let a callback's
    # draws move CARE's seeded stream.
    aug = Augmentation(32, 3, (0.5,) * 3, (0.25,) * 3, augment_on="device")
    x = torch.randn(4, 3, 32, 32)
    a, b = aug.same_params(), aug.same_params()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_device_views_share_one_generator_across_batches() -> None:
    aug = Augmentation(32, 3, (0.5,) * 3, (0.25,) * 3, augment_on="device")
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    first = aug.device_views(images, n_views=2, include_original=True)
    second = aug.device_views(images, n_views=2, include_original=False)
    assert len(first) == 3 and len(second) == 2
    assert not torch.allclose(first[0], second[0])  # the stream moved on
    unit = images.float() / 255
    expected = (unit - 0.5) / 0.25
    torch.testing.assert_close(first[2], expected, rtol=0, atol=1e-6)  # the original


def test_a_plain_transform_becomes_same_params_and_pairs_group_by_group() -> None:
    t = as_same_params(CallNumber())
    assert isinstance(t, CallableSameParams) and as_same_params(t) is t
    first, second = t.pair(torch.zeros(6, 1, 1, 1), n_groups=3)
    # Draw order: first(group 0), second(group 0), first(group 1), ...
    assert first.flatten().tolist() == [0, 0, 2, 2, 4, 4]
    assert second.flatten().tolist() == [1, 1, 3, 3, 5, 5]
    with pytest.raises(ValueError, match=r"batch of 6 into n_groups=4"):
        t.pair(torch.zeros(6, 1, 1, 1), n_groups=4)
    with pytest.raises(ValueError, match="callable as t\\(batch\\) -> batch, got int"):
        as_same_params(3)  # type: ignore[arg-type]
