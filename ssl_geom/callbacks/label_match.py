"""Label agreement of each anchor's nearest negative (geometry paper Prop. 3.1, Fig. 6).

Same two per-sample views as :class:`~ssl_geom.callbacks.FractionUnexplainedVariance`
(and shared with it): for anchor ``h_i^(1)`` the nearest negative ``h̃_i*`` is found in
projector space among the ``2n − 2`` other views; the logged value is the fraction of
anchors whose ``h̃_i*`` has sample i's label. With ``(x, y_fine, y_coarse)`` batches
(CIFAR-100) both label sets are measured, as in Fig. 6.

The paper measures on *training batches* of its batch size, 128 (its Fig. 3 setting), so
the candidate negatives are ``2·128 − 2``. The reference set plays that batch:
``reference_source="train", reference_size=128`` reproduces the setting (the
``experiments/geometry_*.yaml`` configs use exactly that); a larger set makes the nearest
negative closer and the rate higher, so compare values at equal ``reference_size``.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._protocol import Samples
from ssl_geom.callbacks.augmented import VIEWS_EVERY_N_EPOCHS, AugmentedGeometryCallback
from ssl_geom.callbacks.base import Transform, Values
from ssl_geom.metrics import label_match_rate, nearest_negatives

NAMES = ("geometry/label_match", "geometry/label_match_coarse")


class LabelMatch(AugmentedGeometryCallback):
    """Log ``geometry/label_match`` (and ``geometry/label_match_coarse`` when present).

    Args:
        transform: batch augmentation, called on one sample at a time for the two views.
        every_n_epochs: default every 5 epochs, as ``FractionUnexplainedVariance`` (the
            views' embeddings are shared when both measure), spread out for its cost
            (docs/callbacks.md); ``every_n_epochs=1`` gives the paper's per-epoch
            curve (Fig. 6), as the ``experiments/geometry_*.yaml`` configs set.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        every_n_epochs: int = VIEWS_EVERY_N_EPOCHS,
        **kwargs: Any,
    ) -> None:
        super().__init__(transform, every_n_epochs=every_n_epochs, **kwargs)

    def check_samples(self, trainer: Trainer, pl_module: LightningModule, samples: Samples) -> None:
        _labels(samples)
        super().check_samples(trainer, pl_module, samples)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        labels = _labels(self.reference_samples(trainer))
        _, z1, _, z2 = self.view_features(trainer, pl_module)
        neighbours = nearest_negatives(z1, z2)
        return {
            name: label_match_rate(y.to(neighbours.device), neighbours)
            for name, y in zip(NAMES, labels[:2], strict=False)
        }


def _labels(samples: Samples) -> list[Tensor]:
    if not samples.labels:
        raise ValueError(
            "LabelMatch needs labelled reference batches such as (x, y) or (x, y, y_coarse); "
            "the batch reader found no labels — pass batch_fn=..."
        )
    return samples.labels
