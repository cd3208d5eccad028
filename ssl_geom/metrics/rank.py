"""Spectra and estimated ranks (projector-geometry paper, Eq. 2, Figs. 1, 4, 9, 10).

The paper defines, for a matrix W with singular values σ_1, …, σ_d,

    Rank_τ(W) = Σ_j 1{|σ_j| ≥ τ}                                         (Eq. 2)

with an *absolute* threshold τ: the singular values are not normalised (e.g. by σ_max)
before thresholding, so τ carries the scale of W. We follow the formula as written.

It is used on the linear projector's weight (Fig. 1), on the matrix of encoder embeddings
``[h(x_1), …, h(x_N)]`` (Figs. 4, 9: pass ``h`` to :func:`singular_values` /
:func:`projector_rank`, which accept any 2-D matrix), and on the covariance of a set of
samples (Fig. 10: :func:`covariance_spectrum`, :func:`covariance_rank`). The SVD comes from
``torch.linalg``; only the thresholding is ours.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_geom.metrics._checks import check_matrix, check_threshold


def singular_values(weight: Tensor) -> Tensor:
    """Singular values of a 2-D matrix in descending order (the spectrum behind Eq. 2).

    For ``nn.Linear`` pass ``layer.weight`` (``d_out × d_in`` = the paper's ``Wᵀ``; a matrix
    and its transpose have the same singular values). Gradients are not tracked: this is a
    measurement.
    """
    weight = check_matrix("weight", weight, layout="(rows, cols)")
    return torch.linalg.svdvals(weight.detach())


def projector_rank(weight: Tensor, tau: float) -> int:
    """Estimated rank ``Rank_τ(W)``: number of singular values ``≥ tau`` (geometry paper Eq. 2).

    ``tau`` is absolute (the paper does not normalise the spectrum); it must be a finite
    non-negative number.
    """
    tau = check_threshold("tau", tau)
    return int((singular_values(weight) >= tau).sum().item())


def covariance_spectrum(h: Tensor) -> Tensor:
    """Eigenvalues of the sample covariance of ``h`` (``(n, d)``), descending, length d.

    ``Cov = H_cᵀ H_c / (n − 1)`` with ``H_c`` the column-centred embeddings; its eigenvalues
    are ``σ_k(H_c)² / (n − 1)``, computed from the SVD of ``H_c`` (more accurate than
    forming Cov). When ``n ≤ d`` the missing ``d − min(n, d)`` eigenvalues are exactly 0 and
    are returned as zeros, so spectra of different batch sizes line up for plotting.
    Used for the covariance rank of geometry paper Fig. 10.
    """
    h = check_matrix("h", h).detach()
    n, d = h.shape
    if n < 2:
        raise ValueError(f"covariance needs at least 2 samples; got h of shape {tuple(h.shape)}")
    centred = h - h.mean(dim=0, keepdim=True)
    eigenvalues = torch.linalg.svdvals(centred).square() / (n - 1)
    return torch.cat([eigenvalues, eigenvalues.new_zeros(d - eigenvalues.shape[0])])


def covariance_rank(h: Tensor, tau: float) -> int:
    """Number of covariance eigenvalues ``≥ tau`` (Eq. 2 applied to Cov(h); paper Fig. 10).

    The covariance is symmetric PSD, so its singular values are its eigenvalues and Eq. 2
    applies unchanged with the absolute threshold ``tau``.
    """
    tau = check_threshold("tau", tau)
    return int((covariance_spectrum(h) >= tau).sum().item())
