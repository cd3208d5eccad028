"""Shared LightningDataModule base: arguments, sources, subsets, seeded loaders.

A dataset family subclass only says where its files are and how to read them
(:meth:`SSLDataModule._locate`, :meth:`_read_split`, optionally :meth:`_download`); the
subsets and loaders are the same for all. The views come from the DataModule's
:class:`~ssl_geom.augment.Augmentation` (``dm.augmentation``), built from its arguments.

Batches (the cross-module contract):

* SSL train: ``(views, y)``; ``views`` is a list of ``n_views`` normalised ``(B, C, H, W)``
  tensors (one for ``train_views="none"``) plus the un-augmented image last when
  ``include_original=True``; ``y`` is a LongTensor ``(B,)``. STL10's unlabeled images carry
  ``y = -1``: online probes must skip ``y < 0``.
* eval (``val_dataloader``, ``test_dataloader``, ``train_eval_dataloader()``): ``(x, y)``, for
  CIFAR-100 ``(x, y_fine, y_coarse)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision.transforms import v2

from ssl_geom.augment import GROUP_VIEWS, Augmentation, AugmentOn, SameParams, Strength
from ssl_geom.augment.ops import to_normalised
from ssl_geom.data.datasets import (
    EvalDataset,
    RawImageDataset,
    SeededViewSampler,
    SSLViewDataset,
)
from ssl_geom.data.errors import UnreadableFilesError
from ssl_geom.data.sources import (
    ImageSource,
    Sample,
    hold_out,
    random_subset,
    unreadable_samples,
)
from ssl_geom.global_batch import per_process_batch_size
from ssl_geom.symmetry import SymmetryName

TrainViews = Literal["simclr", "none", SymmetryName]
TRAIN_VIEWS: tuple[str, ...] = ("simclr", "none", *GROUP_VIEWS)
Split = Literal["train", "val", "test"]

ROOT_ENV = "SSL_GEOM_DATA"


def default_root() -> str:
    """``$SSL_GEOM_DATA`` if set, else ``./data``."""
    return os.environ.get(ROOT_ENV, "./data")


def default_num_workers() -> int:
    return min(4, os.cpu_count() or 1)


class SSLDataModule(L.LightningDataModule):
    """Base class; see the module docstring for the batch layout.

    Args:
        root: data folder (default ``$SSL_GEOM_DATA`` or ``./data``). A root given here or
            in ``$SSL_GEOM_DATA`` is the only place looked at; system-wide copies (the Debian
            Fashion-MNIST) are a fallback only when neither is set. The folder read is logged.
        batch_size: the *global* batch: samples per optimiser step summed over all processes,
            as the papers state it. Each process loads ``batch_size / world_size``
            (:attr:`per_process_batch_size`, set in :meth:`setup` once the trainer's world size
            is known; a clear error when it does not divide), so a run on 1, 8 or 64 GPUs
            optimises the same objective. SSL train drops the last incomplete batch.
        num_workers: loader processes (default ``min(4, cpu_count)``).
        download: fetch the dataset with torchvision (checksums verified) when it is absent.
            Never touches files that are already there.
        seed: seeds the train shuffling, the per-sample augmentations and the subsets.
        train_views: ``"simclr"`` (SimCLR views), ``"none"`` (one un-augmented view), or an
            H-SSL group augmentation named by a :class:`~ssl_geom.symmetry.Symmetry` value,
            ``"translation"``/``"rotation"``/``"scale"``.
        n_views: views per sample (default 2; 1 for ``"none"``, which allows no other value).
        include_original: append the un-augmented image as the last view.
        strength: preset for the SimCLR-style views: the geometry paper's ``"large"``/
            ``"moderate"``/``"small"`` (its Table 2), or ``"mocov2"`` (MoCo-v2's views: crop
            0.2-1, jitter s=0.5, 5x5 blur; the CARE ImageNet-100 code's); None = the
            dataset's SimCLR default. Only with ``train_views="simclr"``.
        max_train_samples / max_eval_samples: seeded random subsets for quick runs (None = all).
        val_samples: hold out this many images of the labelled training split as a
            validation split (the same images for every seed, disjoint from every training
            subset; :func:`~ssl_geom.data.sources.hold_out`): :meth:`val_dataloader` then
            serves it instead of the test split, so a choice made on validation never reads
            the test split. ``None`` (default): no validation split; validation reads the
            test split, as these datasets have no validation split of their own.
        pin_memory: default: CUDA is available.
        persistent_workers: default: ``num_workers > 0``.
        verify: read every sample once in :meth:`setup` (``num_workers`` threads) and raise
            one error listing *all* unreadable files, instead of failing at the first one
            when an epoch reaches it. Worth it for the JPEG folders (Tiny ImageNet,
            ImageNet-100: a full decode pass, minutes for ImageNet-100); the array formats
            are parsed completely at setup anyway.
        rotation_order: ``N`` of the ``"rotation"`` views, multiples of 360°/N (default 4:
            quarter turns as in H-SSL App. A; 8 gives the 45° views of a C8 backbone).
        augment_on: where the SimCLR train views are made: ``"loader"`` (per-sample v2
            transforms in the loader workers) or ``"device"`` (the loader yields uint8 images
            and :meth:`on_after_batch_transfer` makes the views on the training device with
            per-sample parameters, :mod:`ssl_geom.augment.device`; the SimCLR same-parameters
            transform is then the batched one-draw-per-group version too). ``"device"`` needs
            ``train_views="simclr"`` and images stored at ``image_size``.

    Attributes:
        augmentation: the :class:`~ssl_geom.augment.Augmentation` built from these arguments
            (strength, ``augment_on``, ``rotation_order``, image size, statistics, seed):
            the train views, and the same-parameters transforms of CARE (pass it as
            ``same_params_transform``; the CLI links it) and, through
            :meth:`same_params_transform`, of the geometry callbacks and reproduction tables.
    """

    name: str = ""
    num_classes: int = 0
    num_coarse_classes: int | None = None
    in_channels: int = 3
    image_size: int = 0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    supports_download: bool = False
    flip_allowed: bool = True

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 256,
        num_workers: int | None = None,
        download: bool = False,
        seed: int = 0,
        train_views: TrainViews = "simclr",
        n_views: int | None = None,
        include_original: bool = False,
        strength: Strength | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        verify: bool = False,
        rotation_order: int = 4,
        augment_on: AugmentOn = "loader",
        val_samples: int | None = None,
    ) -> None:
        super().__init__()
        self.augmentation = Augmentation(
            self.image_size,
            self.in_channels,
            self.mean,
            self.std,
            strength=strength,
            flip_allowed=self.flip_allowed,
            rotation_order=rotation_order,
            augment_on=augment_on,
            seed=seed,
            base_ops=self._base_ops(),
        )
        self.augment_on = augment_on
        if train_views not in TRAIN_VIEWS:
            raise ValueError(
                f"unknown train_views {train_views!r}; expected one of {list(TRAIN_VIEWS)}"
            )
        self._check_simclr_only(augment_on, strength, train_views)
        if n_views is None:
            n_views = 1 if train_views == "none" else 2
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1, got {n_views}")
        if train_views == "none" and n_views != 1:
            raise ValueError(
                f"train_views='none' yields exactly one un-augmented view, got n_views={n_views}; "
                "leave n_views unset or pick an augmentation"
            )
        for arg, value in (
            ("batch_size", batch_size),
            ("max_train_samples", max_train_samples),
            ("max_eval_samples", max_eval_samples),
            ("val_samples", val_samples),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{arg} must be >= 1 (or None for all), got {value}")
        self.root_given = root is not None or ROOT_ENV in os.environ
        self.root = Path(root if root is not None else default_root()).expanduser()
        if download and not self.supports_download:
            raise ValueError(
                f"download=True is not supported for {self.name}: torchvision cannot fetch it. "
                f"{self._placement_hint()}"
            )
        self.batch_size = batch_size
        self.per_process_batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        self.download = download
        self.seed = seed
        self.train_views = train_views
        self.rotation_order = rotation_order
        self.n_views = n_views
        self.include_original = include_original
        self.strength = strength
        self.max_train_samples = max_train_samples
        self.max_eval_samples = max_eval_samples
        self.val_samples = val_samples
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = (
            self.num_workers > 0 if persistent_workers is None else persistent_workers
        )
        if self.persistent_workers and self.num_workers == 0:
            raise ValueError("persistent_workers=True needs num_workers > 0")
        self.verify = verify
        self._sources: dict[str, ImageSource] = {}

    def _check_simclr_only(self, augment_on: str, strength: str | None, train_views: str) -> None:
        """Refuse SimCLR-only settings combined with other train views or a resizing loader."""
        if augment_on == "device" and train_views != "simclr":
            raise ValueError(
                f"augment_on='device' makes SimCLR views, but train_views={train_views!r}; "
                "use train_views='simclr' or augment_on='loader'"
            )
        if augment_on == "device" and self.augmentation.base_ops:  # ImageNet, STL10 < 96 px
            raise ValueError(
                f"augment_on='device' needs images stored at one size, but {self.name} resizes "
                "its images in the loader; use augment_on='loader'"
            )
        if strength is not None and train_views != "simclr":
            raise ValueError(
                f"strength={strength!r} sets SimCLR augmentations, but train_views={train_views!r};"
                " use train_views='simclr' or strength=None"
            )

    # ----------------------------------------------------------------- device augmentation
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``augment_on="device"``: turn a uint8 SSL train batch into ``(views, y)`` here."""
        if (
            self.augment_on == "device"
            and self.trainer is not None
            and self.trainer.training
            and isinstance(batch, (list, tuple))
            and isinstance(batch[0], torch.Tensor)
            and batch[0].dtype == torch.uint8
        ):
            views = self.augmentation.device_views(
                batch[0], self.n_views, self.include_original, rank=self.trainer.global_rank
            )
            return views, batch[1]
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: where the device views' random draws stand (resumed runs
        draw on from there, :meth:`~ssl_geom.augment.Augmentation.state_dict`)."""
        if self.augment_on != "device":
            return {}
        return {"augmentation": self.augmentation.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "augmentation" in state_dict:
            self.augmentation.load_state_dict(state_dict["augmentation"])

    # ----------------------------------------------------------------- subclass hooks
    def _locate(self) -> Path:
        """The folder holding the files; raises DatasetNotFoundError when there is none."""
        raise NotImplementedError

    def _read_split(self, folder: Path, split: Split) -> ImageSource:
        """Read the labelled ``train`` or ``test`` split."""
        raise NotImplementedError

    def _read_unlabeled(self, folder: Path) -> ImageSource | None:
        """Extra unlabeled images (label -1) for SSL training only; None for most datasets."""
        return None

    def _download(self) -> None:
        """Fetch the files with torchvision (only called when :meth:`_locate` found nothing)."""
        raise NotImplementedError

    def _placement_hint(self) -> str:
        return f"place the files under {self.root}"

    def _base_ops(self) -> list[v2.Transform]:
        """Deterministic ops bringing a stored image to ``image_size`` (ImageNet: resize+crop)."""
        return []

    # ----------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        if not self.download:
            return
        try:
            self._locate()
        except FileNotFoundError:
            self._download()

    @property
    def global_batch_size(self) -> int:
        """Samples per optimiser step over all processes (``batch_size``, the paper's batch)."""
        return self.batch_size

    def split_batch(self, world_size: int) -> int:
        """Set and return :attr:`per_process_batch_size` for ``world_size`` processes.

        Called by :meth:`setup` with the attached trainer's ``world_size``, and by the CLI
        right after building the trainer, so a batch that does not divide fails before any
        data is read.
        """
        self.per_process_batch_size = per_process_batch_size(
            self.batch_size, world_size, "data.batch_size"
        )
        return self.per_process_batch_size

    def setup(self, stage: str | None = None) -> None:
        trainer = self.trainer
        self.split_batch(trainer.world_size if trainer is not None else 1)
        if self._sources:
            return
        folder = self._locate()
        rank_zero_info(f"{self.name}: reading {folder.resolve()}")
        train = self._read_split(folder, "train")
        held_out: dict[str, ImageSource] = {}
        if self.val_samples is not None:
            train, held_out["val"] = hold_out(train, self.val_samples)
        unlabeled = self._read_unlabeled(folder)
        ssl_train = (
            train
            if unlabeled is None  # sources are structurally map-style Datasets (sources.py)
            else ConcatDataset([cast(Dataset[Sample], train), cast(Dataset[Sample], unlabeled)])
        )
        sources = {
            "ssl_train": random_subset(ssl_train, self.max_train_samples, self.seed),
            "train": random_subset(train, self.max_train_samples, self.seed),
            "test": random_subset(
                self._read_split(folder, "test"), self.max_eval_samples, self.seed + 1
            ),
            **held_out,
        }
        if self.verify:
            failures = unreadable_samples(sources.values(), max(1, self.num_workers))
            if failures:
                raise UnreadableFilesError(self.name, failures)
        self._sources = sources

    @property
    def has_validation_split(self) -> bool:
        """Whether :meth:`val_dataloader` serves held-out training images (``val_samples``)."""
        return self.val_samples is not None

    def source(self, split: Literal["ssl_train", "train", "val", "test"]) -> ImageSource:
        """The (possibly subsetted) image source of a split; runs :meth:`setup` if needed."""
        self.setup()
        if split == "val" and not self.has_validation_split:
            raise ValueError(
                f"{self.name} has no validation split; set val_samples to hold out training "
                "images for one"
            )
        return self._sources[split]

    # ----------------------------------------------------------------- transforms
    def eval_transform(self) -> v2.Compose:
        """Deterministic: stored image -> normalised float tensor at ``image_size``."""
        return v2.Compose([*self._base_ops(), *to_normalised(self.mean, self.std)])

    def view_transform(self) -> v2.Compose:
        """Per-sample random view of the SSL train loader."""
        if self.train_views == "none":
            return self.eval_transform()
        return self.augmentation.view_transform(self.train_views)

    def same_params_transform(self, kind: str = "simclr") -> SameParams:
        """``self.augmentation.same_params(kind)``: the geometry callbacks' default augmentation.

        Kept on the DataModule because the callbacks look for it on any user's DataModule
        (:class:`~ssl_geom.protocols.ProvidesSameParamsTransform`).
        """
        return self.augmentation.same_params(kind)

    # ----------------------------------------------------------------- loaders
    def _loader(self, dataset, **kw) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.per_process_batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            **kw,
        )

    def train_dataloader(self) -> DataLoader:
        source = self.source("ssl_train")
        if len(source) < self.batch_size:
            raise ValueError(
                f"{self.name}: {len(source)} SSL training samples is fewer than "
                f"batch_size={self.batch_size}, and the SSL loader drops incomplete batches; "
                "lower batch_size or raise max_train_samples"
            )
        if self.augment_on == "device":
            sampler = SeededViewSampler(len(source), self.seed)
            return self._loader(RawImageDataset(source), sampler=sampler, drop_last=True)
        dataset = SSLViewDataset(
            source,
            self.view_transform(),
            self.n_views,
            self.eval_transform() if self.include_original else None,
        )
        sampler = SeededViewSampler(len(dataset), self.seed)
        return self._loader(dataset, sampler=sampler, drop_last=True)

    def eval_loader(self, split: Split) -> DataLoader:
        """``split`` with the eval transform, in file order."""
        return self._loader(EvalDataset(self.source(split), self.eval_transform()), shuffle=False)

    def val_dataloader(self) -> DataLoader:
        """The validation split (``val_samples``), else the test split (these datasets have no
        validation split of their own)."""
        return self.eval_loader("val" if self.has_validation_split else "test")

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader("test")

    def train_eval_dataloader(self) -> DataLoader:
        """Labelled train split with the eval transform, in file order (for linear probes)."""
        return self.eval_loader("train")
