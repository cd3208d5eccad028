"""InfoNCE / NT-Xent (SimCLR; CARE Sec. 3 ``L_InfoNCE = L_inv + L_unif``).

For ``B`` positive pairs ``(z1_i, z2_i)`` there are ``2B`` anchors; anchor ``u`` with
positive ``v`` is scored against its positive and the ``2B - 2`` other embeddings::

    l(u) = -log  exp(sim(u, v) / t) / sum_{w != u} exp(sim(u, w) / t)

with cosine similarity ``sim``, and the loss is the mean of ``l`` over all ``2B`` anchors.

We wrap lightly's ``NTXentLoss`` rather than re-implementing it: its
``gather_distributed=True`` gathers the other processes' embeddings with a gather whose
backward all-reduces gradients, so under DDP every rank sees the global batch of
negatives and gradients are those of the global loss.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from lightly.loss import NTXentLoss

from ssl_geom.losses._checks import check_pair


@lru_cache(maxsize=16)
def _criterion(temperature: float, gather_distributed: bool) -> NTXentLoss:
    # NTXentLoss holds no parameters; caching avoids rebuilding it every step.
    return NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)


def info_nce(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """NT-Xent loss of the positive pairs ``(z1[i], z2[i])``; inputs need not be normalised.

    Args:
        z1, z2: ``(B, d)`` projector outputs of two views of the same ``B`` samples.
        temperature: ``t > 0`` (SimCLR 0.5, H-SSL 0.1, CARE MoCo 0.1/0.2).
        gather_distributed: under ``torch.distributed``, use all processes' embeddings
            as negatives (with gradients). Ignored when not initialised.
    """
    check_pair("info_nce", z1, z2)
    if not temperature > 0:
        raise ValueError(f"info_nce temperature must be > 0, got {temperature}")
    return _criterion(float(temperature), bool(gather_distributed))(z1, z2)
