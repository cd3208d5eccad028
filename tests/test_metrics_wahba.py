"""Wahba error (CARE Sec. 4): closed forms, independent solvers, invariants, bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from scipy.optimize import minimize_scalar

from ssl_geom.metrics import wahba_error, wahba_errors, wahba_rotation


def random_rotation(d: int, generator: torch.Generator) -> torch.Tensor:
    """A random element of SO(d): QR of a Gaussian matrix, sign-fixed, det forced to +1."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@pytest.mark.parametrize(("n", "d"), [(10, 2), (10, 3), (10, 8), (5, 20), (1, 4)])
def test_exact_rotation_has_zero_error(n, d):
    # F_a = F Rᵀ row-wise is R F column-wise: R itself attains ||R F − F_a|| = 0, which is
    # the minimum of a norm. Includes d > n, where R is not unique but the error still is 0.
    g = torch.Generator().manual_seed(n * 100 + d)
    f = torch.randn(n, d, generator=g, dtype=torch.float64)
    rotation = random_rotation(d, g)
    assert wahba_error(f, f @ rotation.T).item() == pytest.approx(0.0, abs=1e-10)


def test_recovers_the_rotation_when_samples_span_the_space():
    # With n ≥ d generic samples the zero-error rotation is unique, so it must be returned.
    g = torch.Generator().manual_seed(0)
    f = torch.randn(12, 5, generator=g, dtype=torch.float64)
    rotation = random_rotation(5, g)
    torch.testing.assert_close(wahba_rotation(f, f @ rotation.T), rotation)


def test_reflection_is_not_free():
    # F = I_2 (rows e1, e2), F_a = swap (rows e2, e1): a reflection across y = x.
    # For any rotation R_θ = [[c, −s], [s, c]]: ||R_θ − P||² = ||R_θ||² + ||P||² − 2 tr(R_θᵀP)
    # = 2 + 2 − 2 tr([[s, c], [c, −s]]) = 4 − 2·0 = 4, so W_f = 2 for every θ.
    # An O(d) solver would return P itself with error 0.
    f = torch.eye(2)
    f_a = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert wahba_error(f, f_a).item() == pytest.approx(2.0, abs=1e-6)


def test_rotation_is_proper_and_orthogonal_even_for_reflected_data():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(9, 4, generator=g, dtype=torch.float64)
    reflection = torch.diag(torch.tensor([1.0, 1.0, 1.0, -1.0], dtype=torch.float64))
    rotation = wahba_rotation(f, f @ reflection.T)
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(4, dtype=torch.float64))
    assert torch.linalg.det(rotation).item() == pytest.approx(1.0)


def procrustes_with_det_fix(f: np.ndarray, f_a: np.ndarray) -> float:
    """Independent reference: scipy's O(d) Procrustes, then the SO(d) correction by hand.

    orthogonal_procrustes(A, B) returns Ω ∈ O(d) minimising ||A Ω − B|| (row form, Ω = Rᵀ).
    If det Ω = −1, the best proper rotation flips the sign of the smallest singular
    direction of Aᵀ B = U S Vᵀ: Ω' = U diag(1, …, 1, −1) Vᵀ (Umeyama 1991).
    """
    omega, _ = orthogonal_procrustes(f, f_a)
    if np.linalg.det(omega) < 0:
        u, _, vt = np.linalg.svd(f.T @ f_a)  # singular values sorted descending
        flip = np.ones(f.shape[1])
        flip[-1] = -1.0
        omega = (u * flip) @ vt
    return float(np.linalg.norm(f @ omega - f_a))


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.parametrize(("n", "d"), [(30, 3), (30, 6), (4, 7)])
def test_matches_scipy_procrustes_with_det_fix(n, d, reflect):
    g = torch.Generator().manual_seed(7 * n + d)
    f = torch.randn(n, d, generator=g, dtype=torch.float64)
    transform = random_rotation(d, g)
    if reflect:  # makes the unconstrained O(d) optimum improper, exercising the det fix
        transform[:, 0] = -transform[:, 0]
    f_a = f @ transform.T + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    expected = procrustes_with_det_fix(f.numpy(), f_a.numpy())
    if reflect and n > d:
        omega, _ = orthogonal_procrustes(f.numpy(), f_a.numpy())
        assert np.linalg.det(omega) < 0, "test setup should need the det fix"
    assert wahba_error(f, f_a).item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_matches_brute_force_angle_search_in_2d():
    # SO(2) is one angle: minimise ||F R_θᵀ − F_a|| over θ numerically, no SVD involved.
    g = torch.Generator().manual_seed(3)
    f = torch.randn(6, 2, generator=g, dtype=torch.float64).numpy()
    f_a = (f @ np.array([[1.0, 0.0], [0.0, -1.0]]).T) + 0.1 * np.random.default_rng(3).normal(
        size=(6, 2)
    )

    def loss(theta: float) -> float:
        c, s = math.cos(theta), math.sin(theta)
        return float(np.linalg.norm(f @ np.array([[c, -s], [s, c]]).T - f_a))

    grid = np.linspace(-math.pi, math.pi, 721)
    start = grid[np.argmin([loss(t) for t in grid])]
    best = minimize_scalar(loss, bounds=(start - 0.01, start + 0.01), method="bounded")
    assert wahba_error(torch.from_numpy(f), torch.from_numpy(f_a)).item() == pytest.approx(
        best.fun, rel=1e-6
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 8), d=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), noise=st.floats(0, 2)
)
def test_invariant_to_a_common_rotation_and_bounded_by_identity(n, d, seed, noise):
    # ||R F Q − F_a Q|| over R ∈ SO(d) equals the original problem with R' = QᵀRQ ∈ SO(d).
    # R = I is feasible, so W_f ≤ ||F − F_a||.
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, generator=g, dtype=torch.float64)
    f_a = f @ random_rotation(d, g).T + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    q = random_rotation(d, g)
    error = wahba_error(f, f_a).item()
    assert wahba_error(f @ q.T, f_a @ q.T).item() == pytest.approx(error, rel=1e-7, abs=1e-9)
    assert error <= torch.linalg.matrix_norm(f - f_a).item() + 1e-9


def test_half_precision_input_is_computed_in_float32():
    g = torch.Generator().manual_seed(4)
    f = torch.randn(16, 4, generator=g)
    rotation = random_rotation(4, g).float()
    result = wahba_error(f.half(), (f @ rotation.T).half())
    assert result.dtype == torch.float32
    assert result.item() < 0.05  # fp16 rounding of 64 entries of size ~1 gives ~1e-2


@pytest.mark.parametrize(
    ("f", "f_a", "match"),
    [
        (torch.randn(5), torch.randn(5), "2-D"),
        (torch.randn(5, 3), torch.randn(5, 4), r"same shape.*\(5, 3\).*\(5, 4\)"),
        (torch.randn(5, 3), torch.randn(6, 3), "same shape"),
        (torch.zeros(5, 3, dtype=torch.long), torch.zeros(5, 3, dtype=torch.long), "floating"),
        (np.zeros((5, 3)), torch.randn(5, 3), "torch.Tensor"),
        (torch.randn(0, 3), torch.randn(0, 3), "non-empty"),
    ],
)
def test_bad_input_raises_value_error(f, f_a, match):
    with pytest.raises(ValueError, match=match):
        wahba_error(f, f_a)


def test_all_draws_at_once_equal_one_draw_at_a_time():
    # K = 4 draws of the same 12 samples: a rotation, a rotation plus noise, a reflection and
    # pure noise. Each entry must be wahba_error of that draw (checked against scipy above).
    g = torch.Generator().manual_seed(11)
    f = torch.randn(12, 5, generator=g, dtype=torch.float64)
    reflection = random_rotation(5, g)
    reflection[:, 0] = -reflection[:, 0]
    draws = torch.stack(
        [
            f @ random_rotation(5, g).T,
            f @ random_rotation(5, g).T
            + 0.2 * torch.randn(12, 5, generator=g, dtype=torch.float64),
            f @ reflection.T,
            torch.randn(12, 5, generator=g, dtype=torch.float64),
        ]
    )
    errors = wahba_errors(f, draws)
    assert errors.shape == (4,)
    for k in range(4):
        assert errors[k].item() == pytest.approx(wahba_error(f, draws[k]).item(), rel=1e-12)
    assert errors[0].item() == pytest.approx(0.0, abs=1e-10)
    assert errors[2].item() > 0.1  # a reflection is not free


@pytest.mark.parametrize(
    ("draws", "match"),
    [
        (torch.randn(5, 3), r"3-D tensor \(K, n, d\).*got shape \(5, 3\)"),
        (torch.randn(0, 5, 3), "at least one draw"),
        (torch.randn(2, 4, 3), r"same shape.*\(5, 3\).*\(4, 3\)"),
        (torch.zeros(2, 5, 3, dtype=torch.long), "floating"),
    ],
)
def test_bad_draws_raise_value_error(draws, match):
    with pytest.raises(ValueError, match=match):
        wahba_errors(torch.randn(5, 3), draws)
