"""Wahba error: how well one rotation explains what an augmentation does to a batch.

CARE paper (Gupta et al.), Sec. 4: with ``F, F_a ∈ R^{d×n}`` whose i-th columns are
``f(x_i)`` and ``f(a(x_i))`` for one augmentation ``a``,

    W_f = min_{R ∈ SO(d)} ||R F − F_a||_Fro.

``W_f = 0`` iff ``f(a(x_i)) = R_a f(x_i)`` for every i. The paper takes the plain Frobenius
norm: no division by n and no normalisation inside the metric; its ``f`` maps to the unit
sphere (CARE Principle 1), so pass L2-normalised embeddings to reproduce its numbers.

This is solved in closed form by the SVD (Kabsch/Umeyama) with the determinant correction,
so the minimiser is a proper rotation and a reflection is *not* free. No maintained package
does this for general d (``scipy.linalg.orthogonal_procrustes`` optimises over O(d);
``scipy.spatial.transform.Rotation.align_vectors`` is 3-D only), hence the code here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_geom.metrics._checks import check_draws, check_paired
from ssl_geom.metrics._threads import one_thread_on_cpu


def _rotations(f: Tensor, draws: Tensor) -> Tensor:
    """``(K, d, d)``: the optimal rotation of each draw (see :func:`wahba_rotation`), batched.

    One batched SVD for all K draws: on a GPU each ``torch.linalg.svd`` call waits for the
    host, so K separate calls would wait K times.
    """
    u, _, vh = torch.linalg.svd(draws.transpose(-2, -1) @ f)
    sign = torch.sign(torch.linalg.det(u @ vh))
    # det is ±1 up to rounding; sign() of an exact 0 cannot occur for orthogonal u, vh.
    correction = torch.cat([torch.ones_like(u[..., 0, 1:]), sign[..., None]], dim=-1)
    return (u * correction[..., None, :]) @ vh


def wahba_rotation(f: Tensor, f_a: Tensor) -> Tensor:
    """Return the rotation ``R ∈ SO(d)`` minimising ``||R F − F_a||_Fro`` (CARE Sec. 4).

    Batch-first: ``f`` and ``f_a`` are ``(n, d)`` with row i holding ``f(x_i)`` and
    ``f(a(x_i))``, so the paper's ``R F`` is ``f @ R.T`` here. With ``B = f_aᵀ f = U S Vᵀ``
    the optimum is ``R = U diag(1, …, 1, det(U Vᵀ)) Vᵀ``: the sign flip on the smallest
    singular direction turns the best orthogonal map into the best *proper* rotation.
    Works for any n, including ``d > n`` (then B is rank deficient and the flip costs
    nothing, as it should: a direction no sample spans can be mirrored for free).
    """
    f, f_a = check_paired("f", f, "f_a", f_a)
    with one_thread_on_cpu(f):
        return _rotations(f, f_a[None])[0]


def wahba_errors(f: Tensor, draws: Tensor) -> Tensor:
    """``W_f`` of each of K augmentations at once (CARE Sec. 4, Fig. 2c), shape ``(K,)``.

    ``f``: ``(n, d)`` embeddings of n samples; ``draws``: ``(K, n, d)``, draw k holding the
    embeddings of the same samples after augmentation ``a_k``. Entry k equals
    ``wahba_error(f, draws[k])``; CARE reports the mean and the worst of them.
    """
    f, draws = check_draws("f", f, "draws", draws)
    with one_thread_on_cpu(f):
        rotations = _rotations(f, draws)
        # The residual is evaluated directly from the optimal rotation (not from the
        # ||F||² + ||F_a||² − 2 tr identity), so an exact rotation gives an error at rounding
        # level rather than the square root of a cancellation error.
        return torch.linalg.matrix_norm(f @ rotations.transpose(-2, -1) - draws)


def wahba_error(f: Tensor, f_a: Tensor) -> Tensor:
    """Wahba error ``W_f = min_{R ∈ SO(d)} ||R F − F_a||_Fro`` (CARE Sec. 4), a 0-d tensor.

    ``f``, ``f_a``: ``(n, d)`` embeddings of the same n samples before and after one shared
    augmentation (rows are samples; the rotation acts on each row's d-dim embedding).
    Not normalised by n and no normalisation of the embeddings is applied here — pass
    unit-norm embeddings as CARE does. For K augmentations of the same samples,
    :func:`wahba_errors` computes all K at once.
    """
    f, f_a = check_paired("f", f, "f_a", f_a)
    return wahba_errors(f, f_a[None])[0]
