"""Spectra and estimated ranks (geometry paper Eq. 2, Figs. 1, 4, 10)."""

import numpy as np
import pytest
import torch

from ssl_geom.metrics import covariance_rank, covariance_spectrum, projector_rank, singular_values

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
def test_projector_rank_of_a_diagonal_matrix(tau, expected):
    assert projector_rank(DIAGONAL, tau) == expected


def test_rank_uses_an_absolute_threshold_not_a_normalised_one():
    # Scaling W by 10 scales every σ by 10: with an absolute τ = 2 the count goes 2 -> 4.
    assert projector_rank(DIAGONAL, 2.0) == 2
    assert projector_rank(10 * DIAGONAL, 2.0) == 4


def test_linear_weight_and_its_transpose_have_the_same_rank():
    # nn.Linear stores Wᵀ; the paper's W is its transpose; both have the same spectrum.
    layer = torch.nn.Linear(16, 4)
    torch.testing.assert_close(singular_values(layer.weight), singular_values(layer.weight.T))
    assert projector_rank(layer.weight, 1e-6) == 4


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
    assert covariance_rank(h, 1e-8) == 3


def test_covariance_rank_counts_the_dimension_of_the_data_subspace():
    # 200 samples drawn on a random 3-D subspace of R^8 (plus a common offset): covariance rank 3.
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 8, generator=g, dtype=torch.float64)
    h = torch.randn(200, 3, generator=g, dtype=torch.float64) @ basis + 7.0
    assert covariance_rank(h, 1e-8) == 3


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
