"""The cheaper measurements log what the callbacks logged before, at equal settings.

Issue 27 made the callbacks cheaper: the reference set is embedded once for every callback,
the K augmented copies are embedded in full chunks across draws, Wahba's K SVDs are one
batched call, γ_f computes the distances of f(X) once, FVU zeroes basis rows instead of
dropping them, and every value reaches the host in one transfer. ``old_values`` below is the
previous code path (commit 40344ee) written out plainly: each input embedded on its own in
chunks of ``chunk_size`` rows, the reference set embedded by ProjectorRank and again for
Wahba/γ_f, one SVD, one γ_f (with both distance matrices) and one ``.item()`` per draw, FVU's
basis by boolean indexing, the per-sample views drawn one sample per call. One measurement
changed on purpose afterwards (issue 26): the embedding rank is Eq. 2 on the embedding matrix
itself, as the geometry paper's Figs. 4 and 9, no longer on its centred covariance.

The setting makes every change matter: a reference set of 100 (a seeded subset of the 150
validation images, so the subset choice is exercised), chunks of 48 rows (no draw fills whole
chunks, so the new chunks cross draws) and CARE's K = 20.

Tolerance: Lightning logs float32, so a logged value is the expected one rounded to float32
(up to 6e-8 relative; ``rel=1e-7`` for the counts and label agreements, which must not move at
all). The other values are computed in float32, and batching may change the order of float32
sums (another chunk composition, a batched matmul and SVD, a basis with zero rows): a few ulps
(1.2e-7 relative each) through an SVD and a mean over 20 draws, so ``rel=1e-6``. On this
machine every value was within 4e-8 (the float32 rounding); a change of what is measured
(another draw, sample or chunk) moves them by percents.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_geom.callbacks import BatchAugmentation
from tests.callbacks_support import MemoryLogger, PlainDataModule, TinySSL, trainer
from tests.test_callbacks import KNN_K, all_callbacks, expected_names, knn_by_hand

K, REFERENCE, CHUNK, N_VAL = 20, 100, 48, 150
KNN_QUERIES = 40


def old_embed(model: TinySSL, x: Tensor) -> tuple[Tensor, Tensor]:
    """``h, z`` of one input, chunk by chunk as the old ``features`` did."""
    with torch.no_grad():
        hs = [model.backbone(x[start : start + CHUNK]) for start in range(0, len(x), CHUNK)]
        zs = [model.projection_head(h) for h in hs]
    return torch.cat(hs), torch.cat(zs)


def old_wahba_error(f: Tensor, f_a: Tensor) -> float:
    u, _, vh = torch.linalg.svd(f_a.T @ f)
    correction = torch.ones(u.shape[0])
    correction[-1] = torch.sign(torch.linalg.det(u @ vh))
    rotation = (u * correction) @ vh
    return torch.linalg.matrix_norm(f @ rotation.T - f_a).item()


def old_gamma(f_x: Tensor, f_ax: Tensor) -> float:
    def sq_dist(x: Tensor) -> Tensor:
        return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").square()

    numerator = (sq_dist(f_ax) - sq_dist(f_x)).square()
    moved = (f_ax - f_x).square().sum(dim=1)
    denominator = (moved[:, None] + moved[None, :]).square()
    defined = ~torch.eye(len(f_x), dtype=torch.bool) & (denominator > 0)
    if defined.sum() == 0:
        return 0.0
    return (numerator[defined] / denominator[defined]).sum().item() / defined.sum().item()


def old_nearest_negatives(z1: Tensor, z2: Tensor) -> Tensor:
    anchors = F.normalize(z1, dim=1)
    similarity = anchors @ torch.cat([anchors, F.normalize(z2, dim=1)]).T
    rows = torch.arange(len(z1))
    similarity[rows, rows] = -torch.inf
    similarity[rows, rows + len(z1)] = -torch.inf
    return similarity.argmax(dim=1)


def old_fvu(delta_h: Tensor, weight: Tensor) -> float:
    _, s, vh = torch.linalg.svd(weight, full_matrices=False)
    basis = vh[s > s[0] * max(weight.shape) * torch.finfo(weight.dtype).eps]
    total = delta_h.square().sum()
    residual = delta_h - (delta_h @ basis.T) @ basis
    return (residual.square().sum() / total).clamp(0.0, 1.0).item()


def count(spectrum: Tensor, tau: float) -> int:
    return int((spectrum >= tau * spectrum.max()).sum().item())


def entropy_rank(spectrum: Tensor) -> float:
    p = spectrum.double() / spectrum.double().sum()
    p = p[p > 0]
    return math.exp(-(p * p.log()).sum().item())


def old_values(model: TinySSL, dm: PlainDataModule) -> tuple[dict[str, float], dict[str, float]]:
    """The logged values by the previous code path: those that must not move, and the rest."""
    model.eval()
    x_all, y_all, coarse_all = dm.val.tensors
    chosen = sorted(torch.randperm(N_VAL, generator=torch.Generator().manual_seed(0))[:REFERENCE])
    x, y, y_coarse = x_all[chosen], y_all[chosen], coarse_all[chosen]
    weight = model.projection_head.weight.detach()
    augment = BatchAugmentation()  # PlainDataModule has no same_params_transform()

    h, _ = old_embed(model, x)  # ProjectorRank's own pass
    w_spectrum = torch.linalg.svdvals(weight)
    h_spectrum = torch.linalg.svdvals(h)  # Eq. 2 on the embedding matrix itself (Figs. 4, 9)
    w_rank, h_rank = count(w_spectrum, 1e-2), count(h_spectrum, 1e-2)

    f_x = F.normalize(old_embed(model, x)[1], dim=1)  # Wahba/γ_f's own pass
    wahba, gamma = [], []
    for k in range(K):
        torch.manual_seed(k)
        f_a = F.normalize(old_embed(model, augment(x))[1], dim=1)
        wahba.append(old_wahba_error(f_x, f_a))
        gamma.append(old_gamma(f_x, f_a))

    torch.manual_seed(0)
    views = [torch.cat([augment(x[i : i + 1]) for i in range(REFERENCE)]) for _ in range(2)]
    (h1, z1), (h2, z2) = old_embed(model, views[0]), old_embed(model, views[1])
    neighbours = old_nearest_negatives(z1, z2)
    delta_h = h2 - torch.cat([h1, h2])[neighbours]

    queries = sorted(torch.randperm(N_VAL, generator=torch.Generator().manual_seed(0))[:40])
    bank = sorted(set(range(N_VAL)) - {int(i) for i in queries})
    h_val = old_embed(model, x_all)[0]
    d_enc = h.shape[1]
    # The counts and label agreements, which must not move at all, then the float32 values.
    exact = {
        "geometry/projector_rank": w_rank,
        "geometry/embedding_rank": h_rank,
        "geometry/projector_rank_fraction": w_rank / min(weight.shape),
        "geometry/embedding_rank_fraction": h_rank / d_enc,
        "geometry/label_match": (y[neighbours % REFERENCE] == y).double().mean().item(),
        "geometry/label_match_coarse": (
            (y_coarse[neighbours % REFERENCE] == y_coarse).double().mean().item()
        ),
        "knn/acc": knn_by_hand(
            h_val[queries], y_all[queries], h_val[bank], y_all[bank], KNN_K, 0.1
        ),
    }
    computed = {
        "geometry/projector_effective_rank": entropy_rank(w_spectrum),
        "geometry/embedding_effective_rank": entropy_rank(h_spectrum),
        "geometry/projector_effective_rank_fraction": entropy_rank(w_spectrum) / min(weight.shape),
        "geometry/embedding_effective_rank_fraction": entropy_rank(h_spectrum) / d_enc,
        "geometry/wahba_mean": sum(wahba) / K,
        "geometry/wahba_max": max(wahba),
        "geometry/gamma_f": sum(gamma) / K,
        "geometry/fvu": old_fvu(delta_h, weight),
    }
    return exact, computed


def test_logged_values_equal_the_previous_code_path() -> None:
    logger, model, dm = MemoryLogger(), TinySSL(), PlainDataModule(n_val=N_VAL)
    callbacks = all_callbacks(K, KNN_QUERIES, reference_size=REFERENCE, chunk_size=CHUNK)
    trainer(callbacks, logger).fit(model, datamodule=dm)
    exact, computed = old_values(model, dm)
    expected = {**exact, **computed}
    assert sorted(expected) == sorted(expected_names())
    logged = {name: logger.last(name) for name in expected}
    for name in exact:
        assert logged[name] == pytest.approx(expected[name], rel=1e-7), name
    assert logged == pytest.approx(expected, rel=1e-6)
    # Nothing trivial: real augmentations move a trained model's embeddings.
    assert 0 < logged["geometry/wahba_mean"] < logged["geometry/wahba_max"]
    assert 0 < logged["geometry/fvu"] < 1 and logged["geometry/gamma_f"] > 0
