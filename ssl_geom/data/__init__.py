"""ssl_geom.data: one LightningDataModule per dataset family, plus augmentation pipelines.

Batch layout, arguments and the same-parameter batch transform are described in
:mod:`ssl_geom.data.base`; augmentations in :mod:`ssl_geom.data.transforms`; fake datasets in
the real formats in :mod:`ssl_geom.data.fake`.
"""

from ssl_geom.data.base import SSLDataModule
from ssl_geom.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError, UnreadableFilesError
from ssl_geom.data.imagenet100 import ImageNet100DataModule, imagenet100_classes
from ssl_geom.data.mnist import MNISTDataModule
from ssl_geom.data.stl10 import STL10DataModule
from ssl_geom.data.tiny_imagenet import TinyImageNetDataModule
from ssl_geom.data.transforms import SameParamsTransform

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageNet100DataModule",
    "MNISTDataModule",
    "SSLDataModule",
    "STL10DataModule",
    "SameParamsTransform",
    "TinyImageNetDataModule",
    "UnreadableFilesError",
    "imagenet100_classes",
]
