"""Relative rotational equivariance γ_f (CARE paper, App. F.2.1, Eq. 2).

For one augmentation ``a`` and a pair of samples ``x, x'``:

    γ_f = E_a E_{x,x'} [ (||f(a(x')) − f(a(x))||² − ||f(x') − f(x)||²)²
                         / (||f(a(x')) − f(x')||² + ||f(a(x)) − f(x)||²)² ].

The numerator is zero when ``a`` acts on the embeddings by an orthogonal map (pairwise
distances are preserved); the denominator measures how far ``a`` moves the embeddings, i.e.
the lack of invariance. Lower γ_f means more *non-trivial* orthogonal equivariance. The
paper reads γ_f next to the invariance loss (its Fig. 5), and so should users.

Written by hand: no maintained package implements this metric.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_geom.metrics._checks import check_draws, check_paired
from ssl_geom.metrics._threads import one_thread_on_cpu


def _pairwise_sq_dist(x: Tensor) -> Tensor:
    # The non-matmul path computes each ||x_i − x_j|| from the difference itself, so
    # identical inputs give bit-identical distances and no Gram-expansion cancellation.
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").square()


def _gamma(f_x: Tensor, f_ax: Tensor, dist_x: Tensor, off_diagonal: Tensor) -> Tensor:
    """γ_f of one draw, given ``f_x``'s pairwise squared distances (see the public functions)."""
    numerator = (_pairwise_sq_dist(f_ax) - dist_x).square()
    displacement = (f_ax - f_x).square().sum(dim=1)
    denominator = (displacement[:, None] + displacement[None, :]).square()
    defined = off_diagonal & (denominator > 0)
    safe_denominator = torch.where(defined, denominator, torch.ones_like(denominator))
    ratios = torch.where(defined, numerator / safe_denominator, torch.zeros_like(numerator))
    # With no defined pair every ratio is 0, and 0 / max(count, 1) is the documented 0: no
    # branch on the count, so the value never waits for the device.
    return ratios.sum() / defined.sum().clamp_min(1)


def relative_equivariances(f_x: Tensor, draws: Tensor) -> Tensor:
    """γ_f of each of K augmentations of the same samples (CARE App. F.2.1), shape ``(K,)``.

    ``f_x``: ``(n, d)``; ``draws``: ``(K, n, d)``, draw k holding the embeddings after
    augmentation ``a_k``. Entry k equals ``relative_equivariance(f_x, draws[k])``; their mean
    is CARE's ``E_a``. The distances between the un-augmented samples are computed once for
    all draws, and the draws one at a time (each needs ``n²`` memory).
    """
    f_x, draws = check_draws("f_x", f_x, "draws", draws)
    n = f_x.shape[0]
    if n < 2:
        raise ValueError(f"relative_equivariance needs at least 2 samples for pairs; got n={n}")
    with one_thread_on_cpu(f_x):
        dist_x = _pairwise_sq_dist(f_x)
        off_diagonal = ~torch.eye(n, dtype=torch.bool, device=f_x.device)
        return torch.stack([_gamma(f_x, f_ax, dist_x, off_diagonal) for f_ax in draws])


def relative_equivariance(f_x: Tensor, f_ax: Tensor) -> Tensor:
    """γ_f of CARE App. F.2.1 (Eq. 2) for one augmentation over all pairs ``i ≠ j``; 0-d tensor.

    ``f_x``, ``f_ax``: ``(n, d)`` embeddings of the same n samples before and after one
    shared augmentation ``a`` (row i is ``f(x_i)`` and ``f(a(x_i))``). The expectation over
    ``x, x'`` is the mean of the per-pair ratio over the ``n(n−1)`` ordered pairs with
    ``i ≠ j``; average the returned values over several augmentations for ``E_a`` (or use
    :func:`relative_equivariances`).

    Guarded denominator: a pair whose two samples are both left exactly unmoved by ``a`` has
    denominator 0 and numerator 0 (0/0, undefined). Such pairs are left out of the mean,
    and if every pair is (an exactly invariant f) the result is 0 — invariance is the
    trivial form of equivariance, which is why γ_f must be read with the invariance loss.
    No NaN and no division by zero are produced. Embeddings are used as given (CARE's f is
    unit-norm; normalise before calling to match the paper).
    """
    f_x, f_ax = check_paired("f_x", f_x, "f_ax", f_ax)
    return relative_equivariances(f_x, f_ax[None])[0]
