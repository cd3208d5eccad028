"""SimCLR (Chen et al., 2020): augmentation-based SSL with the InfoNCE / NT-Xent loss.

Two augmented views of each image go through the backbone and projector; the loss
contrasts each view with its positive against the ``2B - 2`` other views of the batch
(``ssl_geom.losses.info_nce``). With ``gather_distributed=True`` (default) the negatives
under DDP are the views of the *global* batch, as in the SimCLR paper, so a 4-GPU run
with per-GPU batch 64 trains like batch 256.
"""

from __future__ import annotations

from typing import Any

import torch

from ssl_geom.losses import info_nce
from ssl_geom.methods.base import SSLMethod, SSLStepOutput


class SimCLR(SSLMethod):
    """SimCLR; every base argument (backbone, projector, optimizer, ...) passes through ``kwargs``.

    Args:
        temperature: InfoNCE temperature ``τ`` (0.5 in the CARE and geometry papers' CIFAR runs).
        gather_distributed: use the views of all processes as negatives under DDP.
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = True, **kwargs: Any):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(**kwargs)
        self.projector = self.make_projector(self.backbone.embed_dim)

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        if len(views) < 2:
            raise ValueError(
                f"SimCLR needs two augmented views per sample, got {len(views)}; "
                "use a DataModule with train_views='simclr' and n_views=2"
            )
        map1, z1 = self.project(views[0])
        _, z2 = self.project(views[1])
        loss = info_nce(
            z1,
            z2,
            temperature=self.hparams.temperature,
            gather_distributed=self.hparams.gather_distributed,
        )
        return SSLStepOutput(loss, map1, {"info_nce": loss.detach()})
