"""Wahba error of the embeddings under K shared augmentations (CARE Sec. 4, Fig. 2c).

For each of K augmentations ``a_k`` (each applied with the same parameters to the whole
probe set) ``W_f = min_{R ∈ SO(d)} ||R F − F_a||_Fro`` on L2-normalised embeddings (CARE's
``f`` maps to the unit sphere). CARE reports the average and the worst case over 20
draws; so does this callback. Optionally (CARE Fig. 6) histograms of
``cos(f(x), f(a(x)))`` over all samples and draws go to TensorBoard: one for the measured
augmentation and one per augmentation type (crop, flip, colour jitter, grayscale by
default), each over its own K draws — so figures cost one more set of K forward passes of
the probe set per type; keep them for occasional epochs (``every_n_epochs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._augment import Space, augmented_pairs, check_space, resolve_transform
from ssl_geom.callbacks.augmentation import SINGLE_KINDS, BatchAugmentation
from ssl_geom.callbacks.base import GeometryCallback, Transform, positive_int
from ssl_geom.callbacks.figures import log_histogram
from ssl_geom.metrics import wahba_error


class WahbaError(GeometryCallback):
    """Log ``geometry/wahba_mean`` and ``geometry/wahba_max`` over K shared augmentations.

    Args:
        transform: batch callable drawing ONE fresh augmentation per call and applying it
            to every sample; default ``trainer.datamodule.same_params_transform()``.
        n_augmentations: K (CARE uses 20).
        space: ``"projector"`` (CARE's f, default) or ``"encoder"``.
        log_figures: also log histograms of ``cos(f(x), f(a(x)))`` (CARE Fig. 6) as
            ``geometry/cos_fx_fax`` (the measured augmentation) and
            ``geometry/cos_fx_fax/<name>`` for each of ``figure_transforms``.
        figure_transforms: ``{name: transform}`` for the per-type histograms; default one
            :class:`~ssl_geom.callbacks.BatchAugmentation` per single op (crop, flip,
            color_jitter, grayscale).
        **kwargs: see :class:`~ssl_geom.callbacks.base.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        n_augmentations: int = 20,
        space: Space = "projector",
        log_figures: bool = False,
        figure_transforms: Mapping[str, Transform] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform = transform
        self.n_augmentations = positive_int("n_augmentations", n_augmentations)
        self.space = check_space(space)
        self.log_figures = log_figures
        if figure_transforms is None:
            figure_transforms = {kind: BatchAugmentation(kind) for kind in SINGLE_KINDS}
        for name, figure_transform in figure_transforms.items():
            if not callable(figure_transform):
                raise ValueError(
                    f"figure_transforms[{name!r}] must be a callable batch transform, got "
                    f"{type(figure_transform).__name__}"
                )
        self.figure_transforms = dict(figure_transforms)

    def check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().check(trainer, pl_module)
        resolve_transform(trainer, self.transform, type(self).__name__)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        transform = resolve_transform(trainer, self.transform, type(self).__name__)
        pairs = augmented_pairs(
            self, trainer, pl_module, transform, self.n_augmentations, self.space
        )
        errors = torch.stack([wahba_error(f, f_a) for f, f_a in pairs])
        if self.log_figures:
            log_histogram(trainer, "geometry/cos_fx_fax", _cosines(pairs))
            for name, figure_transform in self.figure_transforms.items():
                typed = augmented_pairs(
                    self, trainer, pl_module, figure_transform, self.n_augmentations, self.space
                )
                log_histogram(trainer, f"geometry/cos_fx_fax/{name}", _cosines(typed))
        return {
            "geometry/wahba_mean": errors.mean().item(),
            "geometry/wahba_max": errors.max().item(),
        }


def _cosines(pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """``cos(f(x_i), f(a_k(x_i)))`` for every sample and draw (the embeddings are unit-norm)."""
    return torch.cat([(f * f_a).sum(dim=1) for f, f_a in pairs])
