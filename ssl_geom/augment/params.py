"""The knobs of the augmentations: SimCLR parameters, their presets, and the kinds of view.

Plain values, no ops: :mod:`ssl_geom.augment.ops` (CPU) and :mod:`ssl_geom.augment.device`
build their pipelines from the same :class:`SimCLRParams`, so the two cannot drift.

Sources:

* SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual
  Representations", arXiv:2002.05709, App. A): RandomResizedCrop, horizontal flip, colour
  jitter with p=0.8 and strength s (brightness/contrast/saturation 0.8s, hue 0.2s),
  grayscale p=0.2, Gaussian blur (p=0.5, kernel 10% of the image side, sigma 0.1-2.0) only
  at ImageNet-like resolutions: SimCLR drops blur on CIFAR. We use blur from 96 px up
  (STL10, ImageNet-100) and s=1.0 there, s=0.5 below (SimCLR's CIFAR setting).
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
* H-SSL (Keller, Suau, Zappella, "Homomorphic Self-Supervised Learning", arXiv:2211.08282),
  App. A (A-SSL views): rotation by one of 0/90/180/270°, translation by up to ±20% of
  height/width, downscaling to 0.57-1.0 of the original scale about the centre; the uncovered
  border is filled with zeros (black), the image keeps its size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from ssl_geom.symmetry import SYMMETRIES, SymmetryName

Strength = Literal["large", "moderate", "small", "mocov2"]
STRENGTHS: tuple[str, ...] = get_args(Strength)
#: H-SSL's A-SSL input transformations: one per :class:`~ssl_geom.symmetry.Symmetry`.
GROUP_VIEWS: tuple[str, ...] = SYMMETRIES
PairKind = Literal["simclr", "photometric", "photometric_flip", SymmetryName]
#: Kinds of one-draw-per-batch transforms (:meth:`Augmentation.same_params`).
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


def check_strength(strength: str | None) -> None:
    """Refuse a preset name that is neither one of :data:`STRENGTHS` nor None."""
    if strength is not None and strength not in STRENGTHS:
        raise ValueError(
            f"unknown strength {strength!r}; expected one of {list(STRENGTHS)} or None"
        )


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
    check_strength(strength)
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
    return replace(params, flip=params.flip and flip_allowed)
