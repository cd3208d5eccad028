"""The CPU augmentation ops: torchvision ``transforms.v2`` pipelines built from the presets.

Everything acts on tensors (uint8 images in the loader workers, float batches on any device
for :class:`~ssl_geom.augment.same_params.SameParamsTransform`); the parameters and their
sources are in :mod:`ssl_geom.augment.params`. Written here by hand, because no maintained
package has them: exact 90° rotations (:class:`RandomRot90`, ``torch.rot90`` instead of
interpolating ``rotate``) and the channel-aware SimCLR colour jitter.

Single-channel images (MNIST) get the grayscale-sensible subset: no grayscale op, and colour
jitter reduced to brightness and contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from ssl_geom.augment.params import HSSL_MAX_TRANSLATION, HSSL_SCALE_RANGE, SimCLRParams
from ssl_geom.symmetry import Symmetry, parse_symmetry


def simclr_color_jitter(channels: int, strength: float) -> v2.ColorJitter | None:
    """SimCLR's ``ColorJitter`` of strength ``s`` for ``channels`` (None when it cannot apply).

    SimCLR (App. A) jitters brightness, contrast and saturation by ``0.8·s`` and hue by
    ``0.2·s``. torchvision's ``ColorJitter`` accepts 1- or 3-channel images only, and
    saturation and hue are undefined on one channel, so a grayscale image gets brightness and
    contrast alone and any other channel count gets no jitter. The DataModule pipelines and
    :class:`~ssl_geom.augment.batch.BatchAugmentation` both build their jitter here.
    """
    s = strength
    if channels == 3:
        return v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    if channels == 1:
        return v2.ColorJitter(brightness=0.8 * s, contrast=0.8 * s)
    return None


class RandomCyclicRotation(v2.Transform):
    """Rotate by k·360°/N counter-clockwise, k uniform in {0, ..., N-1} (the group C_N).

    Quarter turns use ``torch.rot90`` (exact); other angles (45° for C8) torchvision's
    bilinear ``rotate`` about the centre, the uncovered corners filled with zeros.
    One k per call, so a batched tensor is rotated as a whole.
    """

    def __init__(self, order: int = 4) -> None:
        super().__init__()
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"rotation order must be an int >= 1 (the N of C_N), got {order!r}")
        self.order = order

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"k": int(torch.randint(self.order, (1,)).item())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        quarter_turns, remainder = divmod(4 * params["k"], self.order)
        if remainder == 0:
            return torch.rot90(inpt, quarter_turns, dims=(-2, -1))
        angle = 360.0 * params["k"] / self.order
        return v2.functional.rotate(inpt, angle, interpolation=v2.InterpolationMode.BILINEAR)


class RandomRot90(RandomCyclicRotation):
    """Rotate by k·90° counter-clockwise, k uniform in {0, 1, 2, 3} (exact, no interpolation)."""

    def __init__(self) -> None:
        super().__init__(4)


def photometric_ops(in_channels: int, params: SimCLRParams) -> list[v2.Transform]:
    """The pixel-value ops of a SimCLR view (jitter, grayscale, blur): no pixel moves."""
    ops: list[v2.Transform] = []
    jitter = simclr_color_jitter(in_channels, params.jitter_strength)
    if jitter is not None:
        ops.append(v2.RandomApply([jitter], p=params.jitter_p))
    if in_channels == 3:
        ops.append(v2.RandomGrayscale(p=params.grayscale_p))
    if params.blur_kernel is not None:
        blur = v2.GaussianBlur(params.blur_kernel, sigma=params.blur_sigma)
        ops.append(v2.RandomApply([blur], p=params.blur_p))
    return ops


def simclr_ops(image_size: int, in_channels: int, params: SimCLRParams) -> list[v2.Transform]:
    """The random ops of a SimCLR view; they accept uint8 or [0, 1] float tensors."""
    ops: list[v2.Transform] = [
        v2.RandomResizedCrop(image_size, scale=params.crop_scale, antialias=True)
    ]
    if params.flip:
        ops.append(v2.RandomHorizontalFlip())
    return ops + photometric_ops(in_channels, params)


def group_ops(kind: Symmetry | str, rotation_order: int = 4) -> list[v2.Transform]:
    """H-SSL's A-SSL input augmentation for one group (App. A); rotations from C_rotation_order."""
    kind = parse_symmetry(kind, "group view")
    if kind == Symmetry.ROTATION:
        return [RandomCyclicRotation(rotation_order)]
    if kind == Symmetry.TRANSLATION:
        t = HSSL_MAX_TRANSLATION
        # Nearest keeps integer shifts exact (a pure pixel shift, as a CNN's translation group).
        return [
            v2.RandomAffine(
                degrees=0.0, translate=(t, t), interpolation=v2.InterpolationMode.NEAREST
            )
        ]
    return [
        v2.RandomAffine(
            degrees=0.0, scale=HSSL_SCALE_RANGE, interpolation=v2.InterpolationMode.BILINEAR
        )
    ]


def to_normalised(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    """uint8/[0, 1] image -> float32 normalised with the dataset statistics."""
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def view_pipeline(
    ops: Sequence[v2.Transform], mean: Sequence[float], std: Sequence[float]
) -> v2.Compose:
    """Per-sample pipeline for a loader worker: random ops, then dtype conversion and Normalize."""
    return v2.Compose([*ops, *to_normalised(mean, std)])
