"""Relative rotational equivariance γ_f (CARE App. F.2.1, Eq. 2)."""

import itertools
import warnings

import pytest
import torch

from ssl_geom.metrics import relative_equivariance, relative_equivariances
from tests.test_metrics_wahba import random_rotation


def loop_gamma(f_x: torch.Tensor, f_ax: torch.Tensor) -> float:
    """Eq. 2 written out pair by pair in plain Python (pairs with a zero denominator skipped)."""
    x, a = f_x.tolist(), f_ax.tolist()

    def sq(u, v):
        return sum((ui - vi) ** 2 for ui, vi in zip(u, v, strict=True))

    ratios = []
    for i, j in itertools.permutations(range(len(x)), 2):
        den = (sq(a[j], x[j]) + sq(a[i], x[i])) ** 2
        if den > 0:
            ratios.append((sq(a[j], a[i]) - sq(x[j], x[i])) ** 2 / den)
    return sum(ratios) / len(ratios)


def test_zero_under_an_exact_rotation():
    # A rotation preserves every pairwise distance, so each numerator is 0 while the
    # denominators are positive (the rotation moves the points).
    g = torch.Generator().manual_seed(0)
    f = torch.nn.functional.normalize(torch.randn(20, 6, generator=g, dtype=torch.float64), dim=1)
    f_a = f @ random_rotation(6, g).T
    assert relative_equivariance(f, f_a).item() == pytest.approx(0.0, abs=1e-20)


def test_hand_computed_scaling():
    # 1-D embeddings x = (0, 1) mapped to (0, 3). Pair (0, 1): distance² after = 9, before = 1,
    # numerator (9 − 1)² = 64; displacements² are 0 and (3 − 1)² = 4, denominator 4² = 16;
    # ratio 4, same for the ordered pair (1, 0), so γ_f = 4.
    f_x = torch.tensor([[0.0], [1.0]])
    f_ax = torch.tensor([[0.0], [3.0]])
    assert relative_equivariance(f_x, f_ax).item() == pytest.approx(4.0)


def test_pairs_of_unmoved_samples_are_left_out():
    # x = (0, 1, 5) -> (0, 3, 5): samples 0 and 2 do not move, so pair (0, 2) is 0/0 and is
    # excluded. Pair (0, 1): (9 − 1)² / (4 + 0)² = 64/16 = 4. Pair (1, 2): distances² after
    # (5 − 3)² = 4, before (5 − 1)² = 16, numerator 144, denominator (4 + 0)² = 16 -> 9.
    # Mean over the 4 defined ordered pairs: (4 + 4 + 9 + 9) / 4 = 6.5.
    f_x = torch.tensor([[0.0], [1.0], [5.0]])
    f_ax = torch.tensor([[0.0], [3.0], [5.0]])
    assert relative_equivariance(f_x, f_ax).item() == pytest.approx(6.5)


def test_exactly_invariant_f_gives_zero_without_nan_or_warning():
    f = torch.randn(8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = relative_equivariance(f, f.clone())
    assert torch.isfinite(result)
    assert result.item() == 0.0


def test_matches_a_pairwise_loop():
    g = torch.Generator().manual_seed(5)
    f_x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    f_ax = f_x + 0.5 * torch.randn(7, 3, generator=g, dtype=torch.float64)
    f_ax[2] = f_x[2]  # one unmoved sample: its pairs stay defined through the other sample
    assert relative_equivariance(f_x, f_ax).item() == pytest.approx(loop_gamma(f_x, f_ax))


@pytest.mark.parametrize(
    ("f_x", "f_ax", "match"),
    [
        (torch.randn(1, 3), torch.randn(1, 3), "at least 2 samples"),
        (torch.randn(4, 3), torch.randn(4, 2), r"same shape.*\(4, 3\).*\(4, 2\)"),
        (torch.randn(4, 3, 1), torch.randn(4, 3, 1), "2-D"),
    ],
)
def test_bad_input_raises_value_error(f_x, f_ax, match):
    with pytest.raises(ValueError, match=match):
        relative_equivariance(f_x, f_ax)


def test_all_draws_at_once_equal_the_pairwise_loop_per_draw():
    # Three draws: noise, an exact rotation (γ_f = 0) and no move at all (every pair 0/0).
    g = torch.Generator().manual_seed(6)
    f_x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    draws = torch.stack(
        [
            f_x + 0.4 * torch.randn(6, 3, generator=g, dtype=torch.float64),
            f_x @ random_rotation(3, g).T,
            f_x.clone(),
        ]
    )
    gammas = relative_equivariances(f_x, draws)
    assert gammas.shape == (3,)
    assert gammas[0].item() == pytest.approx(loop_gamma(f_x, draws[0]))
    assert gammas[1].item() == pytest.approx(0.0, abs=1e-20)
    assert gammas[2].item() == 0.0
    with pytest.raises(ValueError, match=r"3-D tensor \(K, n, d\)"):
        relative_equivariances(f_x, draws[0])
