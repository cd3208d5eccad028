"""Spectra and estimated ranks (projector-geometry paper, Eq. 2, Figs. 1, 4, 9, 10).

Cosentino et al., "Toward a Geometrical Understanding of Self-supervised Contrastive
Learning" (arXiv:2205.06926), Sec. 2: for a matrix W with singular values σ_1 ≥ … ≥ σ_d,

    Rank_τ(W) = Σ_j 1{|σ_j| ≥ τ}                                         (Eq. 2)

The paper gives no value of τ and says the estimate "is based on the total variance
explained", yet writes τ as an absolute number. An absolute τ on an unnormalised W makes the
rank follow the weights' *scale* (weight decay, learning rate, LARS trust ratio) as much as
their shape: multiply W by 10 and more singular values pass. So the thresholds here are
*relative* by default — ``σ_j ≥ τ·σ_1`` — which is scale-free; ``relative=False`` gives
Eq. 2 exactly as written. The geometry callbacks and the figures of ``make reproduce-rank``
use the relative threshold.

It is used on the linear projector's weight (Fig. 1), on the matrix of encoder embeddings
``[h(x_1), …, h(x_N)]`` (Figs. 4, 9: pass ``h`` to :func:`singular_values` /
:func:`projector_rank`, which accept any 2-D matrix), and on the covariance of a set of
samples (Fig. 10: :func:`covariance_spectrum`, :func:`covariance_rank`). The SVD comes from
``torch.linalg``; only the thresholding is ours.

Any threshold count jumps when a singular value crosses the cut, and a smooth spectrum (a W
that has learned for a few hundred steps decays from 1 to 0.04 without a gap) puts the cut's
choice in charge of the answer. :func:`effective_rank` is the threshold-free companion:
``exp`` of the entropy of the normalised spectrum (Roy & Vetterli, "The effective rank: a
measure of effective dimensionality", EUSIPCO 2007; the RankMe measure of Garrido et al.,
"RankMe: Assessing the downstream performance of pretrained self-supervised representations by
their rank", arXiv:2210.02885). It is d for d equal singular values, 1 for a rank-1 matrix,
and in between it weighs each direction by its share of the spectrum. Four lines, no package
exports it, so it is written here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_geom.metrics._checks import check_matrix, check_threshold
from ssl_geom.metrics._threads import one_thread_on_cpu


def singular_values(weight: Tensor) -> Tensor:
    """Singular values of a 2-D matrix in descending order (the spectrum behind Eq. 2).

    For ``nn.Linear`` pass ``layer.weight`` (``d_out × d_in`` = the paper's ``Wᵀ``; a matrix
    and its transpose have the same singular values). Gradients are not tracked: this is a
    measurement.
    """
    weight = check_matrix("weight", weight, layout="(rows, cols)")
    with one_thread_on_cpu(weight):
        return torch.linalg.svdvals(weight.detach())


def count_above(spectrum: Tensor, tau: float, relative: bool) -> int:
    """``#{s_j ≥ τ}`` (absolute) or ``#{s_j ≥ τ·max_j s_j}`` (relative) of a non-negative spectrum.

    A relative threshold on an all-zero spectrum counts nothing: a zero matrix has rank 0.
    """
    tau = check_threshold("tau", tau)
    if not relative:
        return int((spectrum >= tau).sum().item())
    largest = spectrum.max()
    if largest <= 0:
        return 0
    return int((spectrum >= tau * largest).sum().item())


def effective_rank(spectrum: Tensor) -> float:
    """``exp(−Σ_j p_j log p_j)`` with ``p_j = s_j / Σ_k s_k``, of a non-negative 1-D spectrum.

    Pass singular values (of W, or of the centred embeddings: the square roots of
    :func:`covariance_spectrum`). Scale-free like the relative threshold, and between 1 and
    the number of non-zero values; an all-zero spectrum has effective rank 0, as a zero matrix
    has rank 0.
    """
    if spectrum.dim() != 1:
        raise ValueError(
            f"spectrum must be 1-D (singular values); got shape {tuple(spectrum.shape)}"
        )
    spectrum = spectrum.detach().double()
    if not bool(torch.isfinite(spectrum).all()) or bool((spectrum < 0).any()):
        raise ValueError(
            "spectrum must hold finite non-negative singular values; got "
            f"min {float(spectrum.min())}, max {float(spectrum.max())}"
        )
    total = spectrum.sum()
    if total <= 0:
        return 0.0
    p = spectrum / total
    return float(torch.exp(-torch.special.xlogy(p, p).sum()))


def projector_rank(weight: Tensor, tau: float = 1e-2, *, relative: bool = True) -> int:
    """Estimated rank ``Rank_τ(W)`` (geometry paper Eq. 2).

    ``relative=True`` (default) counts ``σ_j ≥ tau·σ_1``, unchanged when W is rescaled;
    ``relative=False`` counts ``σ_j ≥ tau`` as Eq. 2 is written. ``tau`` must be a finite
    non-negative number.
    """
    return count_above(singular_values(weight), tau, relative)


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
    with one_thread_on_cpu(h):
        eigenvalues = torch.linalg.svdvals(centred).square() / (n - 1)
    return torch.cat([eigenvalues, eigenvalues.new_zeros(d - eigenvalues.shape[0])])


def covariance_rank(h: Tensor, tau: float = 1e-4, *, relative: bool = True) -> int:
    """Number of covariance eigenvalues ``≥ tau`` (Eq. 2 applied to Cov(h); paper Fig. 10).

    The covariance is symmetric PSD, so its singular values are its eigenvalues and Eq. 2
    applies unchanged. ``relative=True`` (default) compares with ``tau·λ_1``. The eigenvalues
    are squared singular values of the centred embeddings, so the default ``tau = 1e-4`` is
    the same cut as :func:`projector_rank`'s ``1e-2`` on those singular values.
    """
    return count_above(covariance_spectrum(h), tau, relative)
