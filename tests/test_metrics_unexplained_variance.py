"""Fraction of unexplained variance (geometry paper Eq. 10) and δh of Eq. 8."""

import numpy as np
import pytest
import torch

from ssl_geom.metrics import fraction_unexplained_variance, negative_displacements


def lstsq_fvu(delta_h: np.ndarray, weight: np.ndarray) -> float:
    """Eq. 10 literally: min_t ||δh_i − W t_i||² by least squares, with W = weightᵀ."""
    w = weight.T  # the paper's W, d_enc × d_proj (columns span the subspace)
    t, *_ = np.linalg.lstsq(w, delta_h.T, rcond=None)  # one column t_i per sample
    residual = delta_h.T - w @ t
    return float((residual**2).sum() / (delta_h**2).sum())


def test_zero_when_delta_h_lies_in_the_row_space():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 12, generator=g, dtype=torch.float64)  # nn.Linear(12, 4).weight
    delta_h = torch.randn(30, 4, generator=g, dtype=torch.float64) @ weight
    assert fraction_unexplained_variance(delta_h, weight) == pytest.approx(0.0, abs=1e-12)


def test_one_when_delta_h_is_orthogonal_to_the_row_space():
    # Row space = span(e1, e2); δh only uses e3..e6, so nothing is explained.
    weight = torch.zeros(2, 6)
    weight[0, 0], weight[1, 1] = 2.0, -0.5
    delta_h = torch.zeros(5, 6)
    delta_h[:, 2:] = torch.randn(5, 4)
    assert fraction_unexplained_variance(delta_h, weight) == pytest.approx(1.0)


def test_hand_computed_intermediate_value():
    # Row space = span(e1). δh_1 = (3, 4, 0): residual (0, 4, 0), 16 of 25.
    # δh_2 = (0, 1, 1): residual is itself, 2 of 2. FVU = (16 + 2) / (25 + 2) = 18/27 = 2/3.
    weight = torch.tensor([[1.0, 0.0, 0.0]])
    delta_h = torch.tensor([[3.0, 4.0, 0.0], [0.0, 1.0, 1.0]])
    assert fraction_unexplained_variance(delta_h, weight) == pytest.approx(2 / 3)


def test_rank_deficient_weight_by_hand():
    # Rows (1, 1, 0) and (2, 2, 0) span only the line u = (1, 1, 0)/√2. δh = (1, 0, 0) has
    # projection (½, ½, 0), residual (½, −½, 0) with squared norm ½, total 1 -> FVU = 0.5.
    weight = torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])
    delta_h = torch.tensor([[1.0, 0.0, 0.0]])
    assert fraction_unexplained_variance(delta_h, weight) == pytest.approx(0.5)


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_matches_least_squares_projection(rank):
    g = torch.Generator().manual_seed(rank)
    # (d_proj = 5, d_enc = 16) weight of the given rank, like a partially collapsed projector.
    weight = torch.randn(5, rank, generator=g, dtype=torch.float64) @ torch.randn(
        rank, 16, generator=g, dtype=torch.float64
    )
    delta_h = torch.randn(40, 16, generator=g, dtype=torch.float64)
    delta_h[:20] = torch.randn(20, 5, generator=g, dtype=torch.float64) @ weight  # half inside
    expected = lstsq_fvu(delta_h.numpy(), weight.numpy())
    assert 0.0 < expected < 1.0
    assert fraction_unexplained_variance(delta_h, weight) == pytest.approx(expected, rel=1e-9)


def test_degenerate_inputs_give_documented_values():
    delta_h = torch.randn(6, 4)
    assert fraction_unexplained_variance(delta_h, torch.zeros(3, 4)) == 1.0  # empty subspace
    assert fraction_unexplained_variance(torch.zeros(6, 4), torch.randn(3, 4)) == 0.0  # no variance


def test_negative_displacements_by_hand():
    # cat([h1, h2]) rows: 0:(1,0) 1:(0,1) 2:(2,0) 3:(0,2). Sample 0's nearest negative index 3
    # -> δh_0 = h2_0 − (0, 2) = (2, −2); sample 1's index 0 -> δh_1 = (0, 2) − (1, 0) = (−1, 2).
    h1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h2 = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    delta = negative_displacements(h1, h2, torch.tensor([3, 0]))
    torch.testing.assert_close(delta, torch.tensor([[2.0, -2.0], [-1.0, 2.0]]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        # Passing the paper's W (d_enc × d_proj) instead of nn.Linear's weight.
        (lambda: fraction_unexplained_variance(torch.randn(5, 8), torch.randn(8, 3)), "d_enc=3"),
        (lambda: fraction_unexplained_variance(torch.randn(8), torch.randn(3, 8)), "2-D"),
        (lambda: fraction_unexplained_variance(torch.randn(5, 8), torch.nn.Linear(8, 3)), "weight"),
        (
            lambda: negative_displacements(torch.randn(4, 2), torch.randn(4, 2), torch.arange(3)),
            r"shape \(4,\)",
        ),
        (
            lambda: negative_displacements(torch.randn(4, 2), torch.randn(3, 2), torch.arange(4)),
            "same shape",
        ),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
