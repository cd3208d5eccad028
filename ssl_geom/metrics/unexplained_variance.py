"""Fraction of unexplained variance of S by the projector (geometry paper, Eqs. 8-10, Fig. 7).

With ``δh_i = h_i^(2) − h̃_i*`` (Eq. 8; ``h̃_i*`` the nearest negative of Prop. 3.1) and a
linear projector ``g(h) = Wᵀh``, ``W ∈ R^{d_enc×d_proj}``, the paper measures how much of
``S = Span{δh_i}`` lies outside the column space of W:

    FVU = Σ_i min_{t_i} ||δh_i − W t_i||² / Σ_i ||δh_i||².               (Eq. 10)

``nn.Linear(d_enc, d_proj).weight`` stores ``Wᵀ`` (``d_proj × d_enc``), so the subspace is
that weight's *row* space. The inner least-squares problems all share W, so instead of n
solves we project onto an orthonormal basis of the row space (from one SVD) — exactly the
least-squares residual, and robust to rank-deficient (collapsed) projectors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_geom.metrics._checks import check_matrix, check_paired
from ssl_geom.metrics._threads import one_thread_on_cpu


def negative_displacements(h1: Tensor, h2: Tensor, neg_index: Tensor) -> Tensor:
    """``δh_i = h_i^(2) − h̃_i*`` of geometry paper Eq. 8, ``(n, d_enc)``.

    ``h1``, ``h2``: ``(n, d_enc)`` encoder embeddings of the two views; ``neg_index``: the
    ``(n,)`` output of :func:`ssl_geom.metrics.nearest_negatives` computed on the projector
    outputs (indices into ``torch.cat([h1, h2])``).
    """
    h1, h2 = check_paired("h1", h1, "h2", h2)
    n = h1.shape[0]
    if not isinstance(neg_index, Tensor) or neg_index.shape != (n,):
        shape = tuple(neg_index.shape) if isinstance(neg_index, Tensor) else type(neg_index)
        raise ValueError(f"neg_index must be a tensor of shape ({n},); got {shape}")
    return h2 - torch.cat([h1, h2])[neg_index.to(h1.device).long()]


def _row_space_basis(weight: Tensor) -> Tensor:
    """Orthonormal rows spanning the row space of ``weight``, rank decided like matrix_rank.

    Rows of ``vh`` outside the rank are zeroed rather than dropped: a projection onto them is
    0 either way, and the basis keeps a fixed shape, so nothing waits for the device to
    learn the rank (a zero weight gives an all-zero basis, the empty subspace).
    """
    _, s, vh = torch.linalg.svd(weight, full_matrices=False)
    tolerance = s[0] * max(weight.shape) * torch.finfo(weight.dtype).eps
    return vh * (s > tolerance).to(vh.dtype)[:, None]


def fraction_unexplained_variance(delta_h: Tensor, weight: Tensor) -> Tensor:
    """Fraction of the variance of ``delta_h`` outside the projector's subspace (Eq. 10).

    ``delta_h``: ``(n, d_enc)`` displacement vectors ``δh_i`` (see
    :func:`negative_displacements`). ``weight``: the linear projector's weight as
    ``nn.Linear`` stores it, ``(d_proj, d_enc)``; its row space is the paper's column space
    of ``W``. Singular directions below ``σ_max · max(shape) · eps`` (the
    ``torch.linalg.matrix_rank`` default) count as absent. Returns a 0-d tensor in
    ``[0, 1]``: 0 when every ``δh_i`` lies in the subspace, 1 when all are orthogonal to it
    (and for a zero weight). If every ``δh_i`` is zero there is no variance to explain and 0
    is returned instead of 0/0.
    """
    delta_h = check_matrix("delta_h", delta_h, layout="(n, d_enc)")
    weight = check_matrix("weight", weight, layout="(d_proj, d_enc) as nn.Linear stores it")
    if delta_h.shape[1] != weight.shape[1]:
        raise ValueError(
            f"delta_h has {delta_h.shape[1]} features but weight expects d_enc="
            f"{weight.shape[1]} (weight must be (d_proj, d_enc) as nn.Linear stores it); "
            f"got delta_h {tuple(delta_h.shape)}, weight {tuple(weight.shape)}"
        )
    dtype = torch.promote_types(delta_h.dtype, weight.dtype)
    delta_h = delta_h.detach().to(dtype)
    with one_thread_on_cpu(delta_h):
        basis = _row_space_basis(weight.detach().to(dtype=dtype, device=delta_h.device))
        total = delta_h.square().sum()
        residual = delta_h - (delta_h @ basis.T) @ basis
        has_variance = total > 0
        safe_total = torch.where(has_variance, total, torch.ones_like(total))
        fraction = (residual.square().sum() / safe_total).clamp(0.0, 1.0)
        return torch.where(has_variance, fraction, torch.zeros_like(fraction))
