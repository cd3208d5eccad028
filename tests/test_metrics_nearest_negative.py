"""Nearest negatives (geometry paper Prop. 3.1) and label match rate (Fig. 6)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_geom.metrics import label_match_rate, nearest_negatives


def loop_nearest_negatives(p1: torch.Tensor, p2: torch.Tensor) -> list[int]:
    """Prop. 3.1 by brute force: cosine similarity to each of the 2n − 2 negatives."""
    n = len(p1)
    candidates = p1.tolist() + p2.tolist()

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    result = []
    for i, anchor in enumerate(p1.tolist()):
        negatives = [k for k in range(2 * n) if k not in (i, i + n)]
        result.append(max(negatives, key=lambda k: cosine(anchor, candidates[k])))
    return result


def test_matches_a_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    # Rows of very different norms: only the direction may matter (cosine similarity).
    p1 = torch.randn(9, 5, generator=g, dtype=torch.float64) * torch.rand(9, 1, generator=g) * 10
    p2 = torch.randn(9, 5, generator=g, dtype=torch.float64)
    assert nearest_negatives(p1, p2).tolist() == loop_nearest_negatives(p1, p2)


def test_own_second_view_is_excluded_even_when_identical():
    # p2 = p1, so each anchor's most similar candidate is its own second view (cos 1), which
    # must be skipped. Anchor 0 = (1, 0): the closest other sample is 2 = (1, 0.1) in view 1
    # (index 2) and view 2 (index 5) alike; ties go to the smaller index, 2.
    # Anchor 1 = (0, 1): cos with (1, 0.1) is 0.1/√1.01 > 0 = cos with (1, 0) -> index 2.
    # Anchor 2 = (1, 0.1): closest is (1, 0), index 0.
    p1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    assert nearest_negatives(p1, p1.clone()).tolist() == [2, 2, 0]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 10), d=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_never_returns_either_view_of_the_anchor(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    p1 = torch.randn(n, d, generator=g)
    p2 = p1 + 0.01 * torch.randn(n, d, generator=g)  # own view is the tempting answer
    index = nearest_negatives(p1, p2)
    assert index.dtype == torch.long and index.shape == (n,)
    anchors = torch.arange(n)
    assert torch.all((index != anchors) & (index != anchors + n))
    assert torch.all((index >= 0) & (index < 2 * n))


def loop_label_match(labels: list[int], neg_index: list[int]) -> float:
    n = len(labels)
    return sum(labels[k % n] == labels[i] for i, k in enumerate(neg_index)) / n


@pytest.mark.parametrize(
    ("neg_index", "expected"),
    [
        # labels (0, 0, 1, 1). Index k -> sample k mod 4.
        ([1, 4, 7, 2], 1.0),  # samples (1, 0, 3, 2): labels (0, 0, 1, 1), all match
        ([2, 6, 0, 1], 0.0),  # samples (2, 2, 0, 1): labels (1, 1, 0, 0), none match
        ([1, 6, 3, 0], 0.5),  # samples (1, 2, 3, 0): labels (0, 1, 1, 0), anchors 0, 2 match
    ],
)
def test_label_match_by_hand(neg_index, expected):
    assert label_match_rate(torch.tensor([0, 0, 1, 1]), torch.tensor(neg_index)) == expected


def test_label_match_agrees_with_a_loop_on_real_nearest_negatives():
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (25,), generator=g)
    centers = torch.randn(3, 8, generator=g)  # clustered by label, so matches are common
    p1 = centers[labels] + 0.5 * torch.randn(25, 8, generator=g)
    p2 = centers[labels] + 0.5 * torch.randn(25, 8, generator=g)
    index = nearest_negatives(p1, p2)
    expected = loop_label_match(labels.tolist(), index.tolist())
    assert label_match_rate(labels, index) == pytest.approx(expected)
    assert expected > 0.5  # guards the test: the loop must see real matches


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: nearest_negatives(torch.randn(1, 3), torch.randn(1, 3)), "at least 2"),
        (lambda: nearest_negatives(torch.randn(4, 3), torch.randn(5, 3)), "same shape"),
        (lambda: nearest_negatives(torch.randn(4), torch.randn(4)), "2-D"),
        (lambda: label_match_rate(torch.zeros(4), torch.tensor([1, 2, 8, 0])), r"\[0, 8\)"),
        (lambda: label_match_rate(torch.zeros(4), torch.tensor([1, 2, -1, 0])), r"\[0, 8\)"),
        (lambda: label_match_rate(torch.zeros(4), torch.arange(3)), r"shape \(4,\)"),
        (lambda: label_match_rate(torch.zeros(4), torch.zeros(4)), "integer"),
        (lambda: label_match_rate(torch.zeros(2, 2), torch.arange(2)), "1-D"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
