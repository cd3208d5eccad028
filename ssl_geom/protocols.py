"""What methods and callbacks read from ``trainer.datamodule``, written down once.

Lightning attaches the DataModule to the Trainer while fitting, but ``Trainer`` does not
declare ``datamodule`` and ``LightningDataModule`` has none of the attributes below, so
reading them used to mean ``getattr`` probing that a type checker cannot follow. Each
attribute is a small runtime-checkable :class:`typing.Protocol`: code asks
``isinstance(dm, ProvidesSameParamsTransform)`` and then calls the method with its type
known. Any user's DataModule that has the attribute satisfies the protocol without
subclassing, which keeps the geometry callbacks usable in anyone's Lightning project; the
``ssl_geom`` DataModules satisfy all of them.

One protocol per attribute because every reader needs one or two of them and must work
when the others are missing. Hand-written: Lightning has no typed accessor for the
attached DataModule. This module imports nothing from ``ssl_geom``, so every layer that
reads a DataModule (``methods/``, ``callbacks/``, ``evaluation/``) may import it without
loading ``ssl_geom.data``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from lightning.pytorch import LightningDataModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader


def attached_datamodule(trainer: Trainer | None) -> LightningDataModule | None:
    """The DataModule Lightning attached to ``trainer``; None without one (or no trainer).

    ``Trainer.datamodule`` is set at run time by Lightning's data connector and is not
    declared on the class, hence the one ``getattr`` here.
    """
    return getattr(trainer, "datamodule", None)


@runtime_checkable
class ProvidesBatchSize(Protocol):
    """``batch_size``: the global batch size over all processes (None = unknown)."""

    batch_size: int | None


@runtime_checkable
class ProvidesNumClasses(Protocol):
    """``num_classes``: how many labels the classification split has."""

    num_classes: int


@runtime_checkable
class ProvidesTrainViews(Protocol):
    """``train_views``: the augmentation of the training views (e.g. ``"simclr"``, ``"rotation"``)."""

    train_views: str


@runtime_checkable
class ProvidesIncludeOriginal(Protocol):
    """``include_original``: whether training batches carry the un-augmented image too."""

    include_original: bool


@runtime_checkable
class ProvidesTrainEvalDataloader(Protocol):
    """``train_eval_dataloader()``: the train split with the evaluation transform."""

    def train_eval_dataloader(self) -> DataLoader[Any]: ...


@runtime_checkable
class ProvidesSameParamsTransform(Protocol):
    """``same_params_transform()``: a batched transform drawing one set of parameters a call.

    The geometry callbacks' default augmentation (they call it without arguments).
    """

    def same_params_transform(self) -> Callable[[Tensor], Tensor]: ...
