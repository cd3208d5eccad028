"""ssl_geom.data: one LightningDataModule per dataset family.

Batch layout and arguments are described in :mod:`ssl_geom.data.base`; fake datasets in the
real formats in :mod:`ssl_geom.data.fake`. The augmentations (each DataModule's
``augmentation``) live in :mod:`ssl_geom.augment`.
"""

from ssl_geom.data.base import SSLDataModule
from ssl_geom.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from ssl_geom.data.errors import CorruptDatasetError, DatasetNotFoundError, UnreadableFilesError
from ssl_geom.data.imagenet100 import ImageNet100DataModule, imagenet100_classes
from ssl_geom.data.mnist import MNISTDataModule
from ssl_geom.data.stl10 import STL10DataModule
from ssl_geom.data.tiny_imagenet import TinyImageNetDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "ImageNet100DataModule",
    "MNISTDataModule",
    "SSLDataModule",
    "STL10DataModule",
    "TinyImageNetDataModule",
    "UnreadableFilesError",
    "imagenet100_classes",
]
