"""Losses against closed forms, invariants and independent computations."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_geom.losses import (
    info_nce,
    invariance_loss,
    orthogonal_equivariance_loss,
    uniformity_loss,
)
from tests.ddp_utils import run_distributed

LossFn = Callable[[Tensor, Tensor], Tensor]


def _nt_xent_by_loop(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    """Independent NT-Xent: one anchor at a time, straight from the definition."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    losses = []
    for u in range(2 * n):
        v = (u + n) % (2 * n)
        sims = torch.stack([z[u] @ z[w] / t for w in range(2 * n) if w != u])
        positive = z[u] @ z[v] / t
        losses.append(torch.logsumexp(sims, 0) - positive)
    return torch.stack(losses).mean()


def test_info_nce_closed_form_orthogonal_pairs() -> None:
    # Two samples with identical views e1, e2: each anchor has sim 1 to its positive and 0 to
    # both negatives, so l = -log(e^{1/t} / (e^{1/t} + 2)) = log(1 + 2 e^{-1/t}).
    z = torch.eye(2)
    assert info_nce(z, z.clone()).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)
    z = torch.eye(2, 4)
    for t in (0.25, 0.5, 1.0):
        assert info_nce(z, z.clone(), temperature=t).item() == pytest.approx(
            math.log(1 + 2 * math.exp(-1 / t)), rel=1e-5
        )


def test_info_nce_matches_definition_and_ignores_scale() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    expected = _nt_xent_by_loop(z1, z2, 0.3)
    assert info_nce(z1, z2, 0.3).item() == pytest.approx(expected.item(), rel=1e-5)
    assert info_nce(3 * z1, 0.5 * z2, 0.3).item() == pytest.approx(expected.item(), rel=1e-5)


def test_info_nce_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(4, 2\)"):
        info_nce(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        info_nce(torch.randn(4, 3), torch.randn(4, 3), temperature=0)


def _rank_loss(rank: int, world_size: int, loss_fn: LossFn, z1: Tensor, z2: Tensor) -> dict:
    """This rank's share of the rows: its loss and the gradients of its rows."""
    n = z1.shape[0] // world_size
    local1 = z1[rank * n : (rank + 1) * n].clone().requires_grad_(True)
    local2 = z2[rank * n : (rank + 1) * n].clone().requires_grad_(True)
    loss = loss_fn(local1, local2)
    loss.backward()
    return {"loss": loss.detach(), "g1": local1.grad, "g2": local2.grad}


def _split_over_two_ranks(
    loss_fn: LossFn, whole_fn: LossFn, seed: int, dim: int
) -> tuple[Tensor, Tensor, Tensor, list[dict]]:
    """(whole-batch loss, its two gradients, the 2 ranks' results) on the same 8 rows."""
    g = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(8, dim, generator=g), torch.randn(8, dim, generator=g)
    full1, full2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    full = whole_fn(full1, full2)
    full.backward()
    return full, full1.grad, full2.grad, run_distributed(_rank_loss, 2, loss_fn, z1, z2)


@pytest.mark.ddp
def test_info_nce_gathers_negatives_and_gradients_across_processes() -> None:
    # Each rank scores its own anchors against the global batch, so the mean of the rank
    # losses is the full-batch loss, and (the gather's backward all-reduces) each rank's
    # gradient is world_size x the full-batch gradient of its rows: DDP's averaging of
    # parameter gradients then gives exactly the single-process gradient.
    full, grad1, grad2, results = _split_over_two_ranks(
        partial(info_nce, temperature=0.5, gather_distributed=True),
        partial(info_nce, temperature=0.5),
        seed=1,
        dim=4,
    )
    mean_loss = torch.stack([r["loss"] for r in results]).mean()
    assert mean_loss.item() == pytest.approx(full.item(), rel=1e-5)
    grads1 = torch.cat([r["g1"] for r in results])
    grads2 = torch.cat([r["g2"] for r in results])
    torch.testing.assert_close(grads1, 2 * grad1, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads2, 2 * grad2, rtol=1e-4, atol=1e-6)


@pytest.mark.ddp
def test_equivariance_loss_on_halves_matches_whole_batch_under_ddp() -> None:
    # Chunks never span processes: 2 ranks x 2 local chunks are the 4 chunks of the whole
    # batch, so the mean of the rank losses is the whole-batch loss, and each rank's gradient
    # is world_size x the whole-batch gradient of its rows (DDP then averages it back).
    full, grad1, grad2, results = _split_over_two_ranks(
        partial(orthogonal_equivariance_loss, n_split=2),
        partial(orthogonal_equivariance_loss, n_split=4),
        seed=4,
        dim=3,
    )
    assert torch.stack([r["loss"] for r in results]).mean().item() == pytest.approx(full.item())
    torch.testing.assert_close(torch.cat([r["g1"] for r in results]), 2 * grad1)
    torch.testing.assert_close(torch.cat([r["g2"] for r in results]), 2 * grad2)


def _random_rotation(d: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g))
    return q * torch.sign(torch.diagonal(r))


def test_equivariance_loss_zero_for_per_chunk_orthogonal_maps() -> None:
    # Each chunk's second view is the first one rotated by its own orthogonal matrix
    # (reflections included): inner products are preserved, so the loss is exactly 0.
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(12, 6, generator=g)
    z2 = torch.cat([c @ _random_rotation(6, g) for c in z1.chunk(3)])
    assert orthogonal_equivariance_loss(z1, z2, n_split=3).item() == pytest.approx(0, abs=1e-5)
    # One orthogonal map per chunk is not one for the whole batch: unsplit, the loss is > 0.
    assert orthogonal_equivariance_loss(z1, z2, n_split=1).item() > 1e-2


def test_equivariance_loss_hand_value_and_scale() -> None:
    # Chunk of m=2: view 1 has cosine 0 between the samples, view 2 has cosine 1.
    # (G1 - G2) is 0 on the diagonal and -1 off it: (2/m) * (1 + 1) = 2.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert orthogonal_equivariance_loss(z1, z2).item() == pytest.approx(2.0)
    # Two such chunks, one of them equivariant (loss 0): the mean is 1.
    both1 = torch.cat([z1, z1])
    both2 = torch.cat([z2, z1])
    assert orthogonal_equivariance_loss(both1, both2, n_split=2).item() == pytest.approx(1.0)


def test_equivariance_loss_matches_pair_loop() -> None:
    # Independent computation straight from (2/m) sum_{i != j} (cos1_ij - cos2_ij)^2.
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    expected = []
    for c1, c2 in zip(z1.chunk(2), z2.chunk(2), strict=True):
        m = c1.shape[0]
        total = sum(
            (F.cosine_similarity(c1[i], c1[j], 0) - F.cosine_similarity(c2[i], c2[j], 0)) ** 2
            for i in range(m)
            for j in range(m)
            if i != j
        )
        expected.append(2 / m * total)
    got = orthogonal_equivariance_loss(z1, z2, n_split=2)
    assert got.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_equivariance_loss_rejects_indivisible_batch_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"batch of 10 samples into n_split=4"):
        orthogonal_equivariance_loss(torch.randn(10, 3), torch.randn(10, 3), n_split=4)
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(5, 3\)"):
        orthogonal_equivariance_loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"got \(4, 3, 1\)"):
        invariance_loss(torch.randn(4, 3, 1), torch.randn(4, 3, 1))


def test_uniformity_closed_forms() -> None:
    # Antipodal pair: the only distinct pairs have cosine -1, so log E exp(-1) = -1.
    assert uniformity_loss(torch.tensor([[1.0, 0.0], [-3.0, 0.0]])).item() == pytest.approx(-1)
    # Collapsed batch: every cosine is 1, the maximum value 1.
    assert uniformity_loss(torch.ones(5, 3)).item() == pytest.approx(1.0)
    # Orthonormal rows: cosines 0, log E exp(0) = 0.
    assert uniformity_loss(torch.eye(4)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="n >= 2"):
        uniformity_loss(torch.randn(1, 3))


def test_invariance_closed_forms() -> None:
    z = torch.randn(5, 3)
    assert invariance_loss(z, 2 * z).item() == pytest.approx(0.0, abs=1e-6)
    # Orthogonal unit views are sqrt(2) apart; opposite ones 2 apart: mean (sqrt2 + 2) / 2.
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    z2 = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    assert invariance_loss(z1, z2).item() == pytest.approx((math.sqrt(2) + 2) / 2)


def test_losses_are_differentiable() -> None:
    z1 = torch.randn(8, 4, requires_grad=True)
    z2 = torch.randn(8, 4, requires_grad=True)
    total = (
        info_nce(z1, z2)
        + orthogonal_equivariance_loss(z1, z2, 2)
        + uniformity_loss(z1)
        + invariance_loss(z1, z2)
    )
    total.backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_info_nce_equals_lightly_ntxent(temperature: float) -> None:
    """Independent computation: lightly's NTXentLoss (boolean-mask version) on the same pairs."""
    from lightly.loss import NTXentLoss

    torch.manual_seed(3)
    z1, z2 = torch.randn(9, 5, dtype=torch.float64), torch.randn(9, 5, dtype=torch.float64)
    expected = NTXentLoss(temperature=temperature)(z1, z2)
    torch.testing.assert_close(info_nce(z1, z2, temperature), expected)
