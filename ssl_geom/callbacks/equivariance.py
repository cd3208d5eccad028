"""Relative rotational equivariance γ_f (CARE App. F.2.1, Eq. 2, Fig. 5).

Same protocol as :class:`~ssl_geom.callbacks.WahbaError` (K augmentations, each shared by
the whole reference set, L2-normalised embeddings); ``E_a`` is the mean over the K draws
and ``E_{x,x'}`` the mean over ordered pairs of reference samples. For an exactly
invariant encoder the ratio is 0/0; :func:`ssl_geom.metrics.relative_equivariance` leaves
such pairs out (0 if all are), so the logged value is always finite. Read it next to an
invariance measure, as CARE's Fig. 5 does.
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer

from ssl_geom.callbacks.augmented import SharedAugmentationCallback
from ssl_geom.callbacks.base import Values
from ssl_geom.metrics import relative_equivariances


class RelativeEquivariance(SharedAugmentationCallback):
    """Log ``geometry/gamma_f``; shares its embeddings with a ``WahbaError`` of equal settings.

    Arguments: see :class:`~ssl_geom.callbacks.augmented.SharedAugmentationCallback`; by
    default it measures every 20 epochs, as ``WahbaError``, whose K augmented embeddings it
    reuses (``every_n_epochs=1`` gives the per-epoch curve).
    """

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        f, draws = self.augmented_embeddings(trainer, pl_module, self.resolved_transform(trainer))
        return {"geometry/gamma_f": relative_equivariances(f, draws).mean()}
