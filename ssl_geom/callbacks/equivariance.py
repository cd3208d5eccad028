"""Relative rotational equivariance γ_f (CARE App. F.2.1, Eq. 2, Fig. 5).

Same protocol as :class:`~ssl_geom.callbacks.WahbaError` (K augmentations, each shared by
the whole reference set, L2-normalised embeddings); ``E_a`` is the mean over the K draws
and ``E_{x,x'}`` the mean over ordered pairs of reference samples. For an exactly
invariant encoder the ratio is 0/0; :func:`ssl_geom.metrics.relative_equivariance` leaves
such pairs out (0 if all are), so the logged value is always finite. Read it next to an
invariance measure, as CARE's Fig. 5 does.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from ssl_geom.callbacks.augmented import SharedAugmentationCallback
from ssl_geom.metrics import relative_equivariance


class RelativeEquivariance(SharedAugmentationCallback):
    """Log ``geometry/gamma_f``; shares its embeddings with a ``WahbaError`` of equal settings.

    Arguments: see :class:`~ssl_geom.callbacks.augmented.SharedAugmentationCallback`.
    """

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        pairs = self.augmented_pairs(trainer, pl_module, self.resolved_transform(trainer))
        gammas = torch.stack([relative_equivariance(f, f_a) for f, f_a in pairs])
        return {"geometry/gamma_f": gammas.mean().item()}
