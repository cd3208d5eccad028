"""Nearest negatives and their label agreement (projector-geometry paper, Prop. 3.1, Fig. 6).

Prop. 3.1 bounds InfoNCE using, for each anchor ``h_i^(1)``, its most similar negative in
projector space:

    h̃_i* = argmax_{h̃_l, l ∈ B_{−i}} Sim(Wᵀ h_i^(1), Wᵀ h̃_l),

where ``B_{−i}`` holds both views of every other sample (the 2n − 2 negatives) and Sim is
cosine similarity. Fig. 6 reports how often ``h̃_i*`` has the label of sample i (fine and
coarse CIFAR-100 labels). Written by hand: a masked argmax no package provides.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_geom.metrics._checks import as_tensor, check_paired


def nearest_negatives(p1: Tensor, p2: Tensor) -> Tensor:
    """Index of each anchor's nearest negative (geometry paper Prop. 3.1), LongTensor ``(n,)``.

    ``p1``, ``p2``: ``(n, d)`` projector outputs of the two views (row i of both is sample
    i). Anchors are the rows of ``p1``; entry i indexes ``torch.cat([p1, p2])`` and is the
    negative with the highest cosine similarity to ``p1[i]`` among the 2n − 2 candidates,
    both views of sample i (indices i and i + n) excluded. One matmul plus masking; ties go
    to the smallest index (``torch.argmax``). A zero row has similarity 0 to everything.
    """
    p1, p2 = check_paired("p1", p1, "p2", p2)
    n = p1.shape[0]
    if n < 2:
        raise ValueError(f"nearest_negatives needs at least 2 samples to have negatives; got n={n}")
    anchors = F.normalize(p1.detach(), dim=1)
    candidates = torch.cat([anchors, F.normalize(p2.detach(), dim=1)])
    similarity = anchors @ candidates.T
    rows = torch.arange(n, device=p1.device)
    similarity[rows, rows] = -torch.inf
    similarity[rows, rows + n] = -torch.inf
    return similarity.argmax(dim=1)


def label_match_rate(labels: Tensor, neg_index: Tensor) -> Tensor:
    """Fraction of anchors whose nearest negative shares their label (geometry paper Fig. 6).

    A 0-d float64 tensor on the labels' device.

    ``labels``: ``(n,)`` per-sample labels (fine or coarse — call once per label set).
    ``neg_index``: ``(n,)`` indices into the 2n concatenation of the two views, as returned
    by :func:`nearest_negatives`; index k belongs to sample ``k mod n``.
    """
    labels = as_tensor("labels", labels)
    neg_index = as_tensor("neg_index", neg_index)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor (n,); got {tuple(labels.shape)}")
    n = labels.shape[0]
    if neg_index.shape != (n,):
        raise ValueError(
            f"neg_index must have shape ({n},), one entry per anchor like labels; "
            f"got {tuple(neg_index.shape)}"
        )
    if neg_index.dtype.is_floating_point or neg_index.dtype == torch.bool:
        raise ValueError(f"neg_index must be an integer tensor, got dtype {neg_index.dtype}")
    if bool(((neg_index < 0) | (neg_index >= 2 * n)).any()):
        raise ValueError(
            f"neg_index values must lie in [0, {2 * n}) (indices into the concatenation of "
            f"both views); got min {int(neg_index.min())}, max {int(neg_index.max())}"
        )
    neighbour_labels = labels[neg_index.to(labels.device).long() % n]
    return (neighbour_labels == labels).double().mean()
