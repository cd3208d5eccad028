"""The random frozen baseline of H-SSL Tables 1-2 ("Frozen" column).

The backbone keeps its random initialisation: no parameter is trained and it stays in
eval mode, so BatchNorm running statistics do not drift either and the representation is
exactly the initial one. Only the online linear probe trains (on the backbone map, through the
backbone's readout), and it logs ``probe/acc`` like every other method. No projection head
is built.
"""

from __future__ import annotations

from typing import Any

import torch

from ssl_geom.methods.base import SSLMethod, SSLStepOutput


class Frozen(SSLMethod):
    """A randomly initialised, frozen backbone read by the online linear probe.

    Args:
        **kwargs: :class:`~ssl_geom.methods.base.SSLMethod` arguments; ``num_classes`` is
            required (the probe is all that trains).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.probe is None:
            raise ValueError(
                "Frozen trains only the linear probe, so it needs num_classes; set "
                "model.num_classes or link it from data.num_classes"
            )
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> Frozen:
        """Switch modes as usual but keep the backbone in eval mode (frozen BN statistics)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        with torch.no_grad():
            features = self.backbone(views[0])
        # No SSL objective. A zero that is still attached to the probe keeps the step's
        # loss differentiable when a batch has no labelled sample for the probe.
        zero = sum(p.sum() for p in self.probe.parameters()) * 0.0
        return SSLStepOutput(loss=zero, probe_features=features)
