"""The random frozen baseline of H-SSL Tables 1-2 ("Frozen" column).

The backbone keeps its random initialisation: no parameter is trained. Only the online
linear probe trains (on the backbone map, through the backbone's readout), and it logs
``probe/acc`` like every other method. No projection head is built.

Which mode its BatchNorm layers run in is a choice the H-SSL paper (Keller et al.,
"Homomorphic Self-Supervised Learning", arXiv:2211.08282) does not make: it only calls the
baseline "a 'frozen' randomly initialized backbone". So it is an explicit argument:

- ``batch_norm="eval"`` (default): BatchNorm uses its initial running statistics (mean 0,
  variance 1), so the representation is exactly the initial function, identical in
  training and evaluation -- "frozen" taken literally.
- ``batch_norm="batch"``: BatchNorm normalises with batch statistics during training and
  its running statistics follow the data, so evaluation uses data-calibrated statistics.
  No weight trains, but the evaluated function changes with the running statistics.

The choice moves the probe's accuracy by a few points (``benchmarks/frozen_batch_norm.py``;
the numbers: docs/benchmarks.md). ``"eval"`` stays the default because it is the
representation at initialisation, unchanged by data; pick the mode your comparison needs
and state it.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import torch

from ssl_geom.methods.base import SSLMethod, SSLStepOutput
from ssl_geom.methods.probe import OnlineProbe

FrozenBatchNorm = Literal["eval", "batch"]
FROZEN_BATCH_NORMS: tuple[str, ...] = ("eval", "batch")


class Frozen(SSLMethod):
    """A randomly initialised, frozen backbone read by the online linear probe.

    Args:
        batch_norm: ``"eval"`` (initial running statistics throughout) or ``"batch"``
            (batch statistics in training, running statistics follow the data); see the
            module docstring.
        **kwargs: :class:`~ssl_geom.methods.base.SSLMethod` arguments; ``num_classes`` is
            required (the probe is all that trains).
    """

    def __init__(self, batch_norm: FrozenBatchNorm = "eval", **kwargs: Any) -> None:
        if batch_norm not in FROZEN_BATCH_NORMS:
            raise ValueError(
                f"unknown batch_norm {batch_norm!r}; valid choices: {', '.join(FROZEN_BATCH_NORMS)}"
            )
        super().__init__(**kwargs)
        if self.probe is None:
            raise ValueError(
                "Frozen trains only the linear probe, so it needs num_classes; set "
                "model.num_classes or link it from data.num_classes"
            )
        self.backbone.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Frozen:
        """Switch modes as usual; with ``batch_norm="eval"`` the backbone stays in eval mode."""
        super().train(mode)
        if self.hparams.batch_norm == "eval":
            self.backbone.eval()
        return self

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        with torch.no_grad():
            features = self.backbone(views[0])
        # No SSL objective. A zero that is still attached to the probe keeps the step's
        # loss differentiable when a batch has no labelled sample for the probe.
        probe = cast(OnlineProbe, self.probe)  # __init__ refuses a Frozen without one
        # a Tensor, not sum()'s start 0: the probe has parameters (its linear layer)
        zero = cast(torch.Tensor, sum(p.sum() for p in probe.parameters())) * 0.0
        return SSLStepOutput(loss=zero, probe_features=features)
