"""Fraction of unexplained variance of S by a linear projector (geometry paper Eq. 10, Fig. 7).

Which vectors (Eqs. 8-10, Prop. 3.1): two views ``x_i^(1), x_i^(2)`` of each reference
sample are drawn *per sample*, as in training (the paper's ``t_1, t_2 ~ T`` per datum); the
encoder gives ``h_i^(1), h_i^(2)``; ``h̃_i*`` is the negative (either view of another
sample, 2n − 2 candidates) most cosine-similar to ``h_i^(1)`` in *projector* space;
``δh_i = h_i^(2) − h̃_i*`` in *encoder* space; FVU is the share of ``Σ||δh_i||²`` outside
the column space of W (``nn.Linear.weight`` = Wᵀ, so its row space).

Eq. 10 is defined for a linear projector ``g(h) = Wᵀh``; a projector with several linear
layers is refused at setup unless ``layer=`` names the one to use. The paper computes S
from a training batch ("For each batch, one obtains in the encoder space an estimate of
the data manifold directions", Sec. 5) of 128 images: ``reference_source="train",
reference_size=128`` reproduces that (as the ``experiments/geometry_*.yaml`` configs do).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from ssl_geom.callbacks._protocol import PROJECTOR_NAMES, count_linear, linear_layer, resolve
from ssl_geom.callbacks.augmented import VIEWS_EVERY_N_EPOCHS, AugmentedGeometryCallback
from ssl_geom.callbacks.base import Transform, Values
from ssl_geom.metrics import (
    fraction_unexplained_variance,
    nearest_negatives,
    negative_displacements,
)


class FractionUnexplainedVariance(AugmentedGeometryCallback):
    """Log ``geometry/fvu`` (Eq. 10) for a linear projector.

    Args:
        transform: batch augmentation; called on one sample at a time to draw per-sample
            views. Default ``trainer.datamodule.same_params_transform()``.
        layer: attribute path of the projector's ``nn.Linear``; required when the projector
            has more than one linear layer (Eq. 10 then measures that layer only).
        every_n_epochs: default every 5 epochs, as ``LabelMatch`` (the views' embeddings are
            shared when both measure), spread out for its cost (docs/callbacks.md);
            ``every_n_epochs=1`` gives the paper's per-epoch curve (Fig. 7), as the
            ``experiments/geometry_*.yaml`` configs set.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        layer: str | None = None,
        every_n_epochs: int = VIEWS_EVERY_N_EPOCHS,
        **kwargs: Any,
    ) -> None:
        super().__init__(transform, every_n_epochs=every_n_epochs, **kwargs)
        self.layer = layer

    def check_setup(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().check_setup(trainer, pl_module)
        if self.layer is None:
            projector = resolve(pl_module, self.projector, PROJECTOR_NAMES, "projector")
            n_linear = count_linear(projector)
            if n_linear != 1:
                raise ValueError(
                    "FractionUnexplainedVariance implements Eq. 10 for a linear projector, but "
                    f"the projector has {n_linear} nn.Linear layers; pass layer='attr.path' to "
                    "measure one layer's column space"
                )
        linear_layer(pl_module, self.layer, self.projector)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        h1, z1, h2, z2 = self.view_features(trainer, pl_module)
        delta_h = negative_displacements(h1, h2, nearest_negatives(z1, z2))
        weight = linear_layer(pl_module, self.layer, self.projector).weight
        return {"geometry/fvu": fraction_unexplained_variance(delta_h, weight)}
