"""CARE's losses (CARE paper, Sec. 3 and Algorithm 1), written by hand: no package has them.

Every function normalises its inputs onto the unit sphere first, because CARE's model
is ``f: X -> S^{d-1}`` (Principle 1) and the Gram matrices below compare cosines.

Orthogonal equivariance (Sec. 3)::

    L_equi = E_a E_{x,x'} [ f(a(x'))^T f(a(x)) - f(x')^T f(x) ]^2

In Algorithm 1 the two inputs of the loss are embeddings of the *same* images under
two augmentations ``ã1, ã2`` that are shared by every sample of a chunk; the loss
compares the chunk's Gram matrices ``G1 = Z1 Z1^T`` and ``G2 = Z2 Z2^T``: an orthogonal
map between the two views leaves all inner products unchanged. Per chunk of ``m``
samples we use ``(2/m) sum_{i != j} (G1 - G2)_ij^2`` and average over chunks; this is
the scale of the authors' code (github.com/Sharut/CARE), so the paper's lambda values
(0.01 CIFAR-10, 0.001 CIFAR-100, ...) carry over unchanged.

Uniformity and invariance, the decomposition ``L_InfoNCE = L_inv + L_unif`` of Sec. 3
used by the Fig. 7 ablations::

    L_unif = log E_{x, x'} exp(f(x)^T f(x'))        (pairs of distinct samples)
    L_inv  = E ||f(a(x)) - f(a'(x))||               (the Euclidean norm, not squared)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ssl_geom.losses._checks import check_pair


def orthogonal_equivariance_loss(
    z1: torch.Tensor, z2: torch.Tensor, n_split: int = 1
) -> torch.Tensor:
    """CARE's ``L_equi`` between two same-augmentation views, chunk by chunk.

    Args:
        z1, z2: ``(B, d)`` embeddings of the same ``B`` images; rows of chunk ``k``
            (rows ``k*m .. (k+1)*m - 1``, ``m = B / n_split``) share one augmentation
            pair. Normalised here.
        n_split: number of equal chunks; must divide ``B``.

    Returns:
        Mean over chunks of ``(2/m) * sum_{i != j} (G1 - G2)_ij^2``; zero iff every
        chunk's two views are related by an orthogonal map (on the normalised rows).
    """
    check_pair("orthogonal_equivariance_loss", z1, z2)
    batch = z1.shape[0]
    if n_split < 1 or batch % n_split != 0:
        raise ValueError(
            f"orthogonal_equivariance_loss cannot split a batch of {batch} samples into "
            f"n_split={n_split} equal chunks; choose n_split dividing {batch}"
        )
    m = batch // n_split
    n1 = F.normalize(z1, dim=1).reshape(n_split, m, -1)
    n2 = F.normalize(z2, dim=1).reshape(n_split, m, -1)
    diff = n1 @ n1.transpose(1, 2) - n2 @ n2.transpose(1, 2)
    off_diagonal = ~torch.eye(m, dtype=torch.bool, device=z1.device)
    per_chunk = (diff.pow(2) * off_diagonal).sum(dim=(1, 2)) * (2.0 / m)
    return per_chunk.mean()


def uniformity_loss(z: torch.Tensor) -> torch.Tensor:
    """``log E exp(f(x)^T f(x'))`` over the ``n(n-1)`` ordered pairs of distinct rows of ``z``."""
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(
            f"uniformity_loss expects an (n, d) batch with n >= 2, got {tuple(z.shape)}"
        )
    n = z.shape[0]
    normed = F.normalize(z, dim=1)
    sims = normed @ normed.T
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
    return torch.logsumexp(sims[off_diagonal], dim=0) - math.log(n * (n - 1))


def invariance_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """``E ||f(a(x)) - f(a'(x))||``: mean distance between the two normalised views."""
    check_pair("invariance_loss", z1, z2)
    return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).mean()
