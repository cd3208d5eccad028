"""One DataModule's augmentations, as one object: what every consumer of views asks for.

An ``ssl_geom`` DataModule builds its :class:`Augmentation` from its own arguments (strength,
``augment_on``, ``rotation_order``, image size, statistics, seed) and exposes it as
``dm.augmentation``. The loaders ask it for the per-sample train views
(:meth:`Augmentation.view_transform`) or, with ``augment_on="device"``, for the views of a
transferred batch (:meth:`Augmentation.device_views`); CARE, the geometry callbacks and the
reproduction tables ask it for same-parameters batch transforms
(:meth:`Augmentation.same_params`). The CLI hands it to CARE (``data.augmentation`` is linked
into the model's ``same_params_transform``), so a method never reaches back into its
DataModule for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from torchvision.transforms import v2

from ssl_geom.augment.device import DeviceSameParams, DeviceSimCLRAugment
from ssl_geom.augment.ops import group_ops, photometric_ops, simclr_ops, view_pipeline
from ssl_geom.augment.params import PAIR_KINDS, SimCLRParams, check_strength, simclr_params
from ssl_geom.augment.same_params import SameParams, SameParamsTransform
from ssl_geom.rank_draws import RankDraws

AugmentOn = Literal["loader", "device"]
AUGMENT_ON: tuple[str, ...] = get_args(AugmentOn)


class Augmentation:
    """The SimCLR / group / photometric augmentations of one dataset.

    Args:
        image_size: side of the views (and of the stored images for ``augment_on="device"``).
        in_channels: 1 (brightness/contrast jitter, no grayscale) or 3.
        mean, std: the dataset's normalisation, applied to every view.
        strength: SimCLR preset (:data:`~ssl_geom.augment.params.STRENGTHS`), None = the
            size's SimCLR default.
        flip_allowed: False removes the horizontal flip from every SimCLR-style view.
        rotation_order: ``N`` of the ``"rotation"`` group views (multiples of 360°/N).
        augment_on: where the SimCLR train views are made, ``"loader"`` or ``"device"``.
        seed: seeds the device generators (the loader's per-sample draws are seeded by the
            DataModule's sampler): rank 0's runs on from it, each other rank draws batch ``i``
            from ``(seed, rank, i)`` (:mod:`ssl_geom.rank_draws`).
        base_ops: deterministic ops bringing a stored image to ``image_size`` (ImageNet's
            resize + centre crop); group views apply them first.
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        strength: str | None = None,
        flip_allowed: bool = True,
        rotation_order: int = 4,
        augment_on: AugmentOn = "loader",
        seed: int = 0,
        base_ops: Sequence[v2.Transform] = (),
    ) -> None:
        if augment_on not in AUGMENT_ON:
            raise ValueError(
                f"unknown augment_on {augment_on!r}; expected one of {list(AUGMENT_ON)}"
            )
        check_strength(strength)
        if not isinstance(rotation_order, int) or rotation_order < 1:
            raise ValueError(
                f"rotation_order must be an int >= 1 (rotations by multiples of 360°/N), "
                f"got {rotation_order!r}; use 4 for quarter turns, 8 for 45° steps"
            )
        self.image_size = image_size
        self.in_channels = in_channels
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.strength = strength
        self.flip_allowed = flip_allowed
        self.rotation_order = rotation_order
        self.augment_on: AugmentOn = augment_on
        self.seed = seed
        self.base_ops = list(base_ops)
        self._views_augment: DeviceSimCLRAugment | None = None
        self._view_draws = RankDraws(seed)

    def __repr__(self) -> str:
        return (
            f"Augmentation(image_size={self.image_size}, strength={self.strength!r}, "
            f"augment_on={self.augment_on!r}, rotation_order={self.rotation_order})"
        )

    @property
    def params(self) -> SimCLRParams:
        """The SimCLR knobs at this image size, preset and flip setting."""
        return simclr_params(self.image_size, self.strength, self.flip_allowed)

    def random_ops(self, kind: str) -> list[v2.Transform]:
        """The random v2 ops of a ``kind`` of view (one of :data:`PAIR_KINDS`)."""
        params = self.params
        if kind == "simclr":
            return simclr_ops(self.image_size, self.in_channels, params)
        if kind == "photometric":
            return photometric_ops(self.in_channels, params)
        if kind == "photometric_flip":
            flip = [v2.RandomHorizontalFlip()] if params.flip else []
            return flip + photometric_ops(self.in_channels, params)
        return group_ops(kind, self.rotation_order)

    def view_transform(self, kind: str) -> v2.Compose:
        """Per-sample random view of a loader worker: ``"simclr"`` or an H-SSL group name."""
        ops = self.random_ops(kind)
        if kind != "simclr":  # group views act on the image at its final size
            ops = [*self.base_ops, *ops]
        return view_pipeline(ops, self.mean, self.std)

    def crop_flip_transform(self) -> v2.Compose:
        """The training view of the official linear probes: random resized crop and flip.

        MoCo's ``main_lincls.py`` (the protocol CARE's ImageNet-100 evaluation keeps) and, as
        reported of it, the CARE authors' CIFAR/STL10 probes train the classifier on
        ``RandomResizedCrop`` (torchvision's default scale 0.08-1 and ratio 3/4-4/3) to the
        image size and a horizontal flip (none where flips are not allowed), nothing else,
        normalised like every view. The crop reads the stored image, as the SimCLR views do.
        """
        ops: list[v2.Transform] = [v2.RandomResizedCrop(self.image_size, antialias=True)]
        if self.flip_allowed:
            ops.append(v2.RandomHorizontalFlip())
        return view_pipeline(ops, self.mean, self.std)

    def same_params(self, kind: str = "simclr") -> SameParams:
        """One fresh random draw per call, applied identically to a normalised batch.

        ``kind="simclr"`` uses the SimCLR ops and strength at ``image_size``;
        ``"photometric"`` the same without the crop and the flip (pixel values change,
        positions never), ``"photometric_flip"`` without the crop only (the CARE ImageNet-100
        code's equivariance pair); an H-SSL group name uses that group's augmentation
        instead. The batch must already be at ``image_size`` for the kinds without a crop.
        With ``augment_on="device"`` the SimCLR one is batched on the device, with its own
        seeded generator (a new one per call).
        """
        if kind not in PAIR_KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {list(PAIR_KINDS)}")
        if kind == "simclr" and self.augment_on == "device":
            return DeviceSameParams(self.device_augment())
        return SameParamsTransform(self.random_ops(kind), self.mean, self.std)

    def device_augment(self) -> DeviceSimCLRAugment:
        """A new batched SimCLR augmentation (this strength and statistics, seeded by ``seed``)."""
        return DeviceSimCLRAugment(
            self.image_size, self.in_channels, self.params, self.mean, self.std, seed=self.seed
        )

    def device_views(
        self, images: torch.Tensor, n_views: int, include_original: bool, rank: int = 0
    ) -> list[torch.Tensor]:
        """``n_views`` SimCLR views of a uint8 batch (+ the normalised original), in one draw.

        On rank 0 all calls share one device augmentation, so its generator runs on across
        batches (its state is in :meth:`state_dict`); on another rank call ``i`` draws from a
        generator seeded by ``(seed, rank, i)``, so the ranks' parameters differ.
        """
        aug = self._device_views_augment()
        generator = self._view_draws.next_generator(rank, images.device)
        n = images.shape[0]
        stacked = aug(images.repeat(n_views, 1, 1, 1), generator=generator)
        views = list(stacked.split(n))
        if include_original:
            views.append(aug.normalise(aug.to_unit(images)))
        return views

    def _device_views_augment(self) -> DeviceSimCLRAugment:
        if self._views_augment is None:
            self._views_augment = self.device_augment()
        return self._views_augment

    def state_dict(self) -> dict[str, Any]:
        """Where the device views' random draws stand: the call count and rank 0's generator."""
        return {
            "view_draws": self._view_draws.state_dict(),
            "generators": self._device_views_augment().state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the device views' draws from :meth:`state_dict` (a resumed run)."""
        self._view_draws.load_state_dict(state["view_draws"])
        self._device_views_augment().load_state_dict(state["generators"])
