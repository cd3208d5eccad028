"""InfoNCE / NT-Xent (SimCLR; CARE Sec. 3 ``L_InfoNCE = L_inv + L_unif``).

For ``B`` positive pairs ``(z1_i, z2_i)`` there are ``2B`` anchors; anchor ``u`` with
positive ``v`` is scored against its positive and the ``2B - 2`` other embeddings::

    l(u) = -log  exp(sim(u, v) / t) / sum_{w != u} exp(sim(u, w) / t)

with cosine similarity ``sim``, and the loss is the mean of ``l`` over all ``2B`` anchors.

Under DDP (``gather_distributed=True``) the candidates ``w`` are the embeddings of *all*
processes, gathered with lightly's ``lightly.utils.dist.gather``, whose backward
all-reduces the gradients, so every rank computes the gradient of the global loss.

Why not lightly's ``NTXentLoss`` itself (which this module wrapped before): it removes each
anchor's self-similarity by boolean-mask indexing (``logits[~diag_mask]``), and a boolean
index needs the number of selected elements on the host — a device-to-host copy that stalls
the GPU every step (found with ``torch.cuda.set_sync_debug_mode("error")`` on an H200).
Here the self-similarity is set to ``-inf`` in place (same value: ``exp(-inf) = 0``), by
kernels alone. ``tests/test_losses.py`` checks the result against ``NTXentLoss``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightly.utils.dist import gather

from ssl_geom.losses._checks import check_pair


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


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
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    n = z1.shape[0]
    if gather_distributed and _distributed():
        all1, all2 = torch.cat(gather(z1)), torch.cat(gather(z2))
        offset = dist.get_rank() * n
    else:
        all1, all2, offset = z1, z2, 0
    m = all1.shape[0]
    # Rows: the 2n local anchors; columns: the 2m candidates [all z1; all z2].
    logits = torch.cat([z1, z2]) @ torch.cat([all1, all2]).T / temperature
    local = torch.arange(n, device=z1.device) + offset
    itself = torch.cat([local, local + m])
    positive = torch.cat([local + m, local])
    logits = logits.scatter(1, itself[:, None], float("-inf"))
    return F.cross_entropy(logits, positive)
