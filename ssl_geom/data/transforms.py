"""Augmentation pipelines: SimCLR views, presets (geometry paper, MoCo-v2), H-SSL's group views.

Everything is built from torchvision ``transforms.v2`` ops acting on tensors (uint8 images in
the loader workers, float batches on any device for :class:`SameParamsTransform`). Written here
by hand, because no maintained package has them: the preset table, exact 90° rotations
(:class:`RandomRot90`, ``torch.rot90`` instead of interpolating ``rotate``) and the batched
"one draw for the whole batch" wrapper.

Sources:

* SimCLR (Chen et al. 2020, App. A): RandomResizedCrop, horizontal flip, colour jitter with
  p=0.8 and strength s (brightness/contrast/saturation 0.8s, hue 0.2s), grayscale p=0.2,
  Gaussian blur (p=0.5, kernel 10% of the image side, sigma 0.1-2.0) only at ImageNet-like
  resolutions: SimCLR drops blur on CIFAR. We use blur from 96 px up (STL10, ImageNet-100) and
  s=1.0 there, s=0.5 below (SimCLR's CIFAR setting).
* Geometry paper, Table 2: ``large`` (crop 0.08-1, s=0.5, flip), ``moderate`` (crop 0.5-1,
  s=0.25, flip), ``small`` (crop 0.9-1, s=0.05, no flip); grayscale p=0.2 and jitter p=0.8 in all.
  The table has no blur row; a preset keeps the dataset's blur setting (none on CIFAR, where
  the paper ran).
* MoCo-v2 (Chen et al., "Improved Baselines with Momentum Contrastive Learning",
  arXiv:2003.04297) as the CARE authors' ImageNet-100 code runs it (github.com/Sharut/CARE,
  ``imagenet100/main.py``, commit 28718be), preset ``"mocov2"``: crop scale 0.2-1, colour
  jitter (0.4, 0.4, 0.4, 0.1) (= SimCLR's s=0.5) with p=0.8, grayscale p=0.2, Gaussian blur
  with a fixed 5x5 kernel (their ``--kernel-size`` default; MoCo-v2's own PIL blur has no
  kernel size), sigma 0.1-2.0, p=0.5, flip. The CARE code draws the flip last; flip commutes
  with the pointwise jitter/grayscale and the symmetric blur kernel, so our order (flip after
  the crop) gives the same distribution of views.
* Photometric pairs (``PAIR_KINDS``): the same pipeline without its crop (``"photometric"``:
  jitter, grayscale, blur; no geometric change at all) or without its crop but with the flip
  (``"photometric_flip"``, the equivariance pair of the CARE ImageNet-100 code,
  ``input_transforms`` in ``imagenet100/main.py``).
* H-SSL, App. A (A-SSL views): rotation by one of 0/90/180/270°, translation by up to ±20% of
  height/width, downscaling to 0.57-1.0 of the original scale about the centre; the uncovered
  border is filled with zeros (black), the image keeps its size.

Single-channel images (MNIST) get the grayscale-sensible subset: no grayscale op, and colour
jitter reduced to brightness and contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from torchvision.transforms import v2

from ssl_geom.color_jitter import simclr_color_jitter
from ssl_geom.symmetry import SYMMETRIES, Symmetry, SymmetryName, parse_symmetry

Strength = Literal["large", "moderate", "small", "mocov2"]

STRENGTHS: tuple[str, ...] = ("large", "moderate", "small", "mocov2")
#: H-SSL's A-SSL input transformations: one per :class:`~ssl_geom.symmetry.Symmetry`.
GROUP_VIEWS: tuple[str, ...] = SYMMETRIES
PairKind = Literal["simclr", "photometric", "photometric_flip", SymmetryName]
#: Kinds of one-draw-per-batch transforms a DataModule builds (``same_params_transform``).
PAIR_KINDS: tuple[str, ...] = ("simclr", "photometric", "photometric_flip", *GROUP_VIEWS)

#: H-SSL App. A: translate up to ±20% of H/W, downscale to 0.57-1.0.
HSSL_MAX_TRANSLATION = 0.2
HSSL_SCALE_RANGE = (0.57, 1.0)


@dataclass(frozen=True)
class SimCLRParams:
    """The knobs of one SimCLR view pipeline."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    flip: bool = True
    #: Side of the (odd, square) Gaussian blur kernel; ``None``: no blur.
    blur_kernel: int | None = None
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = 0.5


#: Geometry paper, Table 2 (crop scale, colour-jitter strength s, horizontal flip).
_PRESETS: dict[str, tuple[tuple[float, float], float, bool]] = {
    "large": ((0.08, 1.0), 0.5, True),
    "moderate": ((0.5, 1.0), 0.25, True),
    "small": ((0.9, 1.0), 0.05, False),
}

#: MoCo-v2's views as the CARE ImageNet-100 code builds them (see the module docstring).
MOCOV2_PARAMS = SimCLRParams(crop_scale=(0.2, 1.0), jitter_strength=0.5, blur_kernel=5)


def simclr_blur_kernel(image_size: int) -> int:
    """SimCLR's blur kernel: 10% of the image side, rounded to an odd number of pixels."""
    return int(0.1 * image_size) // 2 * 2 + 1


def simclr_params(
    image_size: int, strength: str | None = None, flip_allowed: bool = True
) -> SimCLRParams:
    """SimCLR parameters at ``image_size``, optionally replaced by a preset.

    A Table 2 preset (``large``/``moderate``/``small``) sets crop, jitter and flip and keeps
    the size's blur setting; ``mocov2`` sets everything (:data:`MOCOV2_PARAMS`).
    ``flip_allowed=False`` removes the flip whatever the preset says (digits are not mirror
    symmetric).
    """
    large_images = image_size >= 96
    params = SimCLRParams(
        jitter_strength=1.0 if large_images else 0.5,
        blur_kernel=simclr_blur_kernel(image_size) if large_images else None,
    )
    if strength in _PRESETS:
        crop, s, flip = _PRESETS[strength]
        params = replace(params, crop_scale=crop, jitter_strength=s, flip=flip)
    elif strength == "mocov2":
        params = MOCOV2_PARAMS
    elif strength is not None:
        raise ValueError(
            f"unknown augmentation strength {strength!r}; expected one of {list(STRENGTHS)} or None"
        )
    return replace(params, flip=params.flip and flip_allowed)


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


class SameParamsTransform:
    """Apply ONE random draw of ``ops`` identically to every sample of a normalised batch.

    ``t(batch)`` un-normalises ``(B, C, H, W)`` to [0, 1], runs the ops once on the whole batch
    (``transforms.v2`` samples one set of parameters per call; the test-suite checks this holds
    for every op used here), and normalises again. Works on CPU and GPU tensors. CARE's
    same-augmentation chunks and the Wahba probe rely on it.
    """

    def __init__(
        self, ops: Sequence[v2.Transform], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.ops = v2.Compose(list(ops))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4 or batch.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"expected a normalised batch of shape (B, {self.mean.shape[1]}, H, W), "
                f"got {tuple(batch.shape)}"
            )
        mean = self.mean.to(batch.device, batch.dtype)
        std = self.std.to(batch.device, batch.dtype)
        images = (batch * std + mean).clamp_(0.0, 1.0)
        return (self.ops(images) - mean) / std

    def __repr__(self) -> str:
        return f"SameParamsTransform({self.ops})"
