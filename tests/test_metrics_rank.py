"""Spectra and estimated ranks (geometry paper Eq. 2, Figs. 1, 4, 10)."""

import math

import numpy as np
import pytest
import torch

from ssl_geom.metrics import (
    covariance_rank,
    covariance_spectrum,
    effective_rank,
    projector_rank,
    singular_values,
)

# The singular values of a diagonal matrix are the absolute values of its diagonal.
DIAGONAL = torch.diag(torch.tensor([5.0, -3.0, 1.0, 0.5, 0.0]))


def test_singular_values_of_a_diagonal_matrix_are_sorted_absolute_entries():
    torch.testing.assert_close(singular_values(DIAGONAL), torch.tensor([5.0, 3.0, 1.0, 0.5, 0.0]))


@pytest.mark.parametrize(
    ("tau", "expected"),
    [
        (1.0, 3),  # {5, 3, 1}: Eq. 2 counts σ ≥ τ, so the value equal to τ is included
        (0.75, 3),  # {5, 3, 1}
        (0.5, 4),  # {5, 3, 1, 0.5}
        (6.0, 0),  # nothing reaches 6
        (0.0, 5),  # every σ ≥ 0, the zero one included
    ],
)
def test_absolute_projector_rank_of_a_diagonal_matrix(tau, expected):
    assert projector_rank(DIAGONAL, tau, relative=False) == expected


def test_absolute_threshold_follows_the_scale_of_w():
    # Scaling W by 10 scales every σ by 10: with an absolute τ = 2 the count goes 2 -> 4.
    assert projector_rank(DIAGONAL, 2.0, relative=False) == 2
    assert projector_rank(10 * DIAGONAL, 2.0, relative=False) == 4


@pytest.mark.parametrize(
    ("tau", "expected"),
    [
        (0.2, 3),  # cut 0.2·5 = 1: {5, 3, 1}, the value equal to the cut included
        (0.1, 4),  # cut 0.5: {5, 3, 1, 0.5}
        (0.7, 1),  # cut 3.5: {5}
        (0.0, 5),  # every σ ≥ 0
    ],
)
def test_relative_projector_rank_of_a_diagonal_matrix(tau, expected):
    assert projector_rank(DIAGONAL, tau) == expected  # relative is the default


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_default_rank_is_unchanged_when_w_is_rescaled(scale):
    # σ_j(cW) = c·σ_j(W), and the default cut is τ·σ_1: the count cannot depend on c.
    # W: 64x32 with singular values 10^(-4 j / 31), spanning 1 to 1e-4 (so the absolute 1e-2
    # would count 16 of them at c = 1 and all 32 at c = 1000).
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(64, 32, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(32, 32, generator=g, dtype=torch.float64))
    sigma = 10.0 ** (-4 * torch.arange(32, dtype=torch.float64) / 31)
    w = scale * (u * sigma) @ v.T
    # cut 1e-2·σ_1 keeps σ_j ≥ 1e-2, i.e. j ≤ 15.5: j = 0..15, 16 values
    assert projector_rank(w) == 16
    assert covariance_rank(torch.randn(300, 6, generator=g) * scale) == 6


def test_relative_rank_of_a_zero_matrix_is_zero():
    assert projector_rank(torch.zeros(3, 4)) == 0


def test_linear_weight_and_its_transpose_have_the_same_rank():
    # nn.Linear stores Wᵀ; the paper's W is its transpose; both have the same spectrum.
    layer = torch.nn.Linear(16, 4)
    torch.testing.assert_close(singular_values(layer.weight), singular_values(layer.weight.T))
    assert projector_rank(layer.weight, 1e-6, relative=False) == 4


def test_covariance_spectrum_matches_numpy_cov_eigenvalues():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(50, 6, generator=g, dtype=torch.float64) * torch.arange(1, 7)
    expected = np.sort(np.linalg.eigvalsh(np.cov(h.numpy(), rowvar=False)))[::-1]
    np.testing.assert_allclose(covariance_spectrum(h).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_covariance_spectrum_is_zero_padded_to_d_when_n_is_small():
    # 4 samples in 10 dims: the centred matrix has rank ≤ 3, the covariance 10 eigenvalues.
    h = torch.randn(4, 10, dtype=torch.float64)
    spectrum = covariance_spectrum(h)
    assert spectrum.shape == (10,)
    assert torch.all(spectrum[3:] < 1e-12)
    assert covariance_rank(h, 1e-8, relative=False) == 3


def test_covariance_rank_counts_the_dimension_of_the_data_subspace():
    # 200 samples drawn on a random 3-D subspace of R^8 (plus a common offset): covariance rank 3.
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 8, generator=g, dtype=torch.float64)
    h = torch.randn(200, 3, generator=g, dtype=torch.float64) @ basis + 7.0
    assert covariance_rank(h, 1e-8, relative=False) == 3
    assert covariance_rank(h, 1e-8) == 3  # relative: the zero eigenvalues are ~1e-30 of λ_1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: projector_rank(DIAGONAL, -1.0), "non-negative"),
        (lambda: projector_rank(DIAGONAL, float("nan")), "non-negative"),
        (lambda: projector_rank(DIAGONAL, "big"), "non-negative"),
        (lambda: singular_values(torch.randn(3)), r"2-D.*\(3,\)"),
        (lambda: singular_values(torch.nn.Linear(3, 2)), r"\.weight"),
        (lambda: covariance_spectrum(torch.randn(1, 4)), "at least 2 samples"),
        (lambda: covariance_rank(torch.randn(5, 4), -0.1), "non-negative"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_effective_rank_of_equal_singular_values_is_their_count():
    # p_j = 1/d for all j: entropy log d, effective rank d; zeros contribute nothing.
    assert effective_rank(torch.tensor([2.0, 2.0, 2.0, 0.0])) == pytest.approx(3.0)
    assert effective_rank(singular_values(torch.eye(7))) == pytest.approx(7.0)


def test_effective_rank_of_a_rank_one_matrix_is_one():
    w = torch.outer(torch.arange(1.0, 6.0), torch.tensor([1.0, -2.0, 0.5]))
    assert effective_rank(singular_values(w)) == pytest.approx(1.0, abs=1e-5)


def test_effective_rank_by_hand_and_scale_free():
    # Spectrum (3, 1): p = (3/4, 1/4), entropy = -(3/4 log 3/4 + 1/4 log 1/4) = 0.5623...
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert effective_rank(torch.tensor([3.0, 1.0])) == pytest.approx(expected)
    assert effective_rank(torch.tensor([300.0, 100.0])) == pytest.approx(expected)


def test_effective_rank_matches_numpy_on_a_random_matrix():
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    s = np.linalg.svd(w.double().numpy(), compute_uv=False)
    p = s / s.sum()
    assert effective_rank(singular_values(w)) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_effective_rank_of_zero_spectrum_is_zero_and_bad_spectra_are_refused():
    assert effective_rank(torch.zeros(5)) == 0.0
    with pytest.raises(ValueError, match="1-D"):
        effective_rank(torch.ones(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        effective_rank(torch.tensor([1.0, -0.5]))
