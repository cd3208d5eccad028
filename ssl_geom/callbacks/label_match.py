"""Label agreement of each anchor's nearest negative (geometry paper Prop. 3.1, Fig. 6).

Same two per-sample views as :class:`~ssl_geom.callbacks.FractionUnexplainedVariance`
(and shared with it): for anchor ``h_i^(1)`` the nearest negative ``h̃_i*`` is found in
projector space among the ``2n − 2`` other views; the logged value is the fraction of
anchors whose ``h̃_i*`` has sample i's label. With ``(x, y_fine, y_coarse)`` eval batches
(CIFAR-100) both label sets are measured, as in Fig. 6.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from ssl_geom.callbacks._augment import resolve_transform, view_features
from ssl_geom.callbacks.base import GeometryCallback, Transform
from ssl_geom.metrics import label_match_rate, nearest_negatives

NAMES = ("geometry/label_match", "geometry/label_match_coarse")


class LabelMatch(GeometryCallback):
    """Log ``geometry/label_match`` (and ``geometry/label_match_coarse`` when present).

    Args:
        transform: batch augmentation, called per sample for the two views; default
            ``trainer.datamodule.same_params_transform()``.
        **kwargs: see :class:`~ssl_geom.callbacks.base.GeometryCallback`.
    """

    def __init__(self, transform: Transform | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transform = transform

    def check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().check(trainer, pl_module)
        resolve_transform(trainer, self.transform, type(self).__name__)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        labels = self.probe(trainer).labels
        if not labels:
            raise ValueError(
                "LabelMatch needs labelled probe batches such as (x, y) or (x, y, y_coarse); "
                "the batch reader found no labels — pass batch_fn=..."
            )
        transform = resolve_transform(trainer, self.transform, type(self).__name__)
        _, z1, _, z2 = view_features(self, trainer, pl_module, transform)
        neighbours = nearest_negatives(z1, z2)
        return {
            name: label_match_rate(y.to(neighbours.device), neighbours)
            for name, y in zip(NAMES, labels[:2], strict=False)
        }
