"""Relative rotational equivariance γ_f (CARE App. F.2.1, Eq. 2, Fig. 5).

Same protocol as :class:`~ssl_geom.callbacks.WahbaError` (K augmentations, each shared by
the whole probe set, L2-normalised embeddings); ``E_a`` is the mean over the K draws and
``E_{x,x'}`` the mean over ordered pairs of probe samples. For an exactly invariant
encoder the ratio is 0/0; :func:`ssl_geom.metrics.relative_equivariance` leaves such
pairs out (0 if all are), so the logged value is always finite. Read it next to an
invariance measure, as CARE's Fig. 5 does.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from ssl_geom.callbacks._augment import Space, augmented_pairs, check_space, resolve_transform
from ssl_geom.callbacks.base import GeometryCallback, Transform, positive_int
from ssl_geom.metrics import relative_equivariance


class RelativeEquivariance(GeometryCallback):
    """Log ``geometry/gamma_f``; shares its embeddings with a ``WahbaError`` of equal settings.

    Args:
        transform: batch callable drawing ONE fresh augmentation per call; default
            ``trainer.datamodule.same_params_transform()``.
        n_augmentations: K (CARE uses 20).
        space: ``"projector"`` (default) or ``"encoder"``.
        **kwargs: see :class:`~ssl_geom.callbacks.base.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        n_augmentations: int = 20,
        space: Space = "projector",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform = transform
        self.n_augmentations = positive_int("n_augmentations", n_augmentations)
        self.space = check_space(space)

    def check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().check(trainer, pl_module)
        resolve_transform(trainer, self.transform, type(self).__name__)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        transform = resolve_transform(trainer, self.transform, type(self).__name__)
        pairs = augmented_pairs(
            self, trainer, pl_module, transform, self.n_augmentations, self.space
        )
        gammas = torch.stack([relative_equivariance(f, f_a) for f, f_a in pairs])
        return {"geometry/gamma_f": gammas.mean().item()}
