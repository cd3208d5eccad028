"""The callbacks' default augmentation: one torchvision ``transforms.v2`` draw per batch.

CARE's Wahba error and gamma_f (Sec. 4, App. F.2.1) need an augmentation ``a`` applied with
the *same* random parameters to every reference sample. ``transforms.v2`` ops sample one set of
parameters per call on a batched ``(B, C, H, W)`` tensor, so calling them once on the whole
reference set is exactly that.

Unlike :class:`~ssl_geom.augment.same_params.SameParamsTransform`, which un-normalises with a
DataModule's known statistics, this one serves a user's DataModule whose normalisation the
callbacks do not know: the batch is mapped to ``[0, 1]`` by its own global minimum and maximum
(one affine map for the whole batch, so no per-sample parameter sneaks in), augmented, and
mapped back. The colour ops depend on the channel count at call time (the jitter is
:func:`~ssl_geom.augment.ops.simclr_color_jitter`): full colour jitter and random grayscale
for 3 channels, brightness and contrast only for 1 channel (MNIST), and geometric ops only for
any other count (``ColorJitter`` accepts only 1 or 3 channels).
"""

from __future__ import annotations

from torch import Tensor
from torchvision.transforms import v2

from ssl_geom.augment.ops import simclr_color_jitter
from ssl_geom.augment.same_params import SameParams

#: The SimCLR composite (the default) and its single ops, as CARE's per-augmentation plots.
AUGMENTATION_KINDS = ("simclr", "crop", "flip", "color_jitter", "grayscale")
SINGLE_KINDS = AUGMENTATION_KINDS[1:]


class BatchAugmentation(SameParams):
    """``t(batch)``: ONE random draw of an augmentation, applied to every sample of the batch.

    Args:
        kind: ``"simclr"`` (default; SimCLR's random resized crop, horizontal flip, colour
            jitter with p=0.8 and grayscale with p=0.2, Chen et al. 2020 App. A) or one op
            alone, always applied: ``"crop"``, ``"flip"``, ``"color_jitter"``,
            ``"grayscale"`` (the identity on 1-channel images).
        crop_scale: area range of the random resized crop.
        jitter_strength: SimCLR's colour-jitter strength s (0.5 is its CIFAR setting).

    Floating-point batches may be normalised any way (see the module docstring); integer
    (uint8) batches are augmented as they are.
    """

    def __init__(
        self,
        kind: str = "simclr",
        crop_scale: tuple[float, float] = (0.08, 1.0),
        jitter_strength: float = 0.5,
    ) -> None:
        if kind not in AUGMENTATION_KINDS:
            raise ValueError(f"kind must be one of {list(AUGMENTATION_KINDS)}, got {kind!r}")
        low, high = crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale!r}")
        if jitter_strength < 0:
            raise ValueError(f"jitter_strength must be >= 0, got {jitter_strength!r}")
        self.kind = kind
        self.crop_scale = (float(low), float(high))
        self.jitter_strength = float(jitter_strength)
        self._pipelines: dict[tuple[int, int, int], v2.Compose] = {}

    def ops(self, channels: int, height: int, width: int) -> list[v2.Transform]:
        """The v2 ops for images of this shape (colour ops depend on ``channels``)."""
        crop = v2.RandomResizedCrop((height, width), scale=self.crop_scale, antialias=True)
        jitter = simclr_color_jitter(channels, self.jitter_strength)
        grayscale = v2.Grayscale(num_output_channels=3) if channels == 3 else v2.Identity()
        if self.kind == "crop":
            return [crop]
        if self.kind == "flip":
            return [v2.RandomHorizontalFlip(p=1.0)]
        if self.kind == "color_jitter":
            return [jitter or v2.Identity()]
        if self.kind == "grayscale":
            return [grayscale]
        ops: list[v2.Transform] = [crop, v2.RandomHorizontalFlip()]
        if jitter is not None:
            ops.append(v2.RandomApply([jitter], p=0.8))
        if channels == 3:
            ops.append(v2.RandomGrayscale(p=0.2))
        return ops

    def __call__(self, batch: Tensor) -> Tensor:
        if not isinstance(batch, Tensor) or batch.ndim != 4:
            shape = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise ValueError(
                f"BatchAugmentation expects an image batch (B, C, H, W), got {shape}; for other "
                "inputs pass transform=callable to the callback"
            )
        channels, height, width = batch.shape[1:]
        key = (channels, height, width)
        if key not in self._pipelines:
            self._pipelines[key] = v2.Compose(self.ops(*key))
        pipeline = self._pipelines[key]
        if not batch.is_floating_point():
            return pipeline(batch)
        low = batch.amin()
        span = (batch.amax() - low).clamp_min(1e-12)
        return pipeline((batch - low) / span) * span + low

    def __repr__(self) -> str:
        return (
            f"BatchAugmentation(kind={self.kind!r}, crop_scale={self.crop_scale}, "
            f"jitter_strength={self.jitter_strength})"
        )
