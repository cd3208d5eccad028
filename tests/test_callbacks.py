"""Geometry callbacks on a user's LightningModule (no ssl_geom.methods import).

Expected values are recomputed here independently of the callbacks' code path: the reference
set is the whole validation set (reference_size >= its size), the K shared augmentations are re-drawn
with ``torch.manual_seed(seed + k)`` (the documented protocol), the model is embedded
directly in eval mode, and ``ssl_geom.metrics`` (tested on their own) give the numbers; the
weighted kNN vote is written out by hand.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ssl_geom.callbacks import (
    BatchAugmentation,
    FractionUnexplainedVariance,
    KNNAccuracy,
    LabelMatch,
    ProjectorRank,
    RelativeEquivariance,
    WahbaError,
)
from ssl_geom.metrics import (
    fraction_unexplained_variance,
    label_match_rate,
    nearest_negatives,
    negative_displacements,
    projector_rank,
    relative_equivariance,
    wahba_error,
)
from tests.callbacks_support import (
    FakeDataModule,
    MemoryLogger,
    PlainDataModule,
    TinySSL,
    trainer,
)

K = 3  # augmentations per evaluation in the tests (the default, 20, is CARE's)
KNN_K, KNN_QUERIES = 10, 32


def all_callbacks(
    n_augmentations: int = K, knn_queries: int = KNN_QUERIES, **settings: Any
) -> list[L.Callback]:
    """Every callback, measuring every epoch (the tests run one or two); ``settings`` go to
    the five that measure on the shared reference set, kNN has ``knn_queries`` of its own."""
    settings = {"every_n_epochs": 1, **settings}
    return [
        ProjectorRank(**settings),
        WahbaError(n_augmentations=n_augmentations, **settings),
        RelativeEquivariance(n_augmentations=n_augmentations, **settings),
        FractionUnexplainedVariance(**settings),
        LabelMatch(**settings),
        KNNAccuracy(k=KNN_K, reference_size=knn_queries, bank_size=None, every_n_epochs=1),
    ]


def expected_names() -> list[str]:
    return [
        "geometry/projector_rank",
        "geometry/embedding_rank",
        "geometry/projector_rank_fraction",
        "geometry/embedding_rank_fraction",
        "geometry/projector_effective_rank",
        "geometry/embedding_effective_rank",
        "geometry/projector_effective_rank_fraction",
        "geometry/embedding_effective_rank_fraction",
        "geometry/wahba_mean",
        "geometry/wahba_max",
        "geometry/gamma_f",
        "geometry/fvu",
        "geometry/label_match",
        "geometry/label_match_coarse",
        "knn/acc",
    ]


def embed(model: TinySSL, x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        h = model.backbone(x)
        return h, model.projection_head(h)


def knn_by_hand(q: Tensor, q_y: Tensor, bank: Tensor, bank_y: Tensor, k: int, t: float) -> float:
    """Weighted kNN (Wu et al. 2018): top-k cosine neighbours vote exp(sim / t) for their label."""
    q, bank = F.normalize(q, dim=1), F.normalize(bank, dim=1)
    sim, idx = (q @ bank.T).topk(k, dim=1)
    scores = torch.zeros(q.shape[0], int(bank_y.max()) + 1)
    scores.scatter_add_(1, bank_y[idx], (sim / t).exp())
    return (scores.argmax(dim=1) == q_y).double().mean().item()


def entropy_rank_by_hand(matrix: Tensor) -> float:
    """Effective rank from NumPy's SVD: exp of the entropy of the L1-normalised spectrum."""
    s = np.linalg.svd(matrix.double().numpy(), compute_uv=False)
    p = s[s > 0] / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def expected_values(model: TinySSL, dm: PlainDataModule) -> dict[str, float]:
    """Every logged metric, computed directly on the validation set (the reference set)."""
    model.eval()
    x, y, y_coarse = dm.val.tensors
    augment = BatchAugmentation()  # what a DataModule without same_params_transform gets
    h, z = embed(model, x)
    weight = model.projection_head.weight
    f_x = F.normalize(z, dim=1)
    pairs = []
    for k in range(K):
        torch.manual_seed(k)  # callback seed 0, draw k
        pairs.append((f_x, F.normalize(embed(model, augment(x))[1], dim=1)))
    wahba = torch.stack([wahba_error(a, b) for a, b in pairs])
    gamma = torch.stack([relative_equivariance(a, b) for a, b in pairs]).mean()
    torch.manual_seed(0)  # per-sample views: two passes of one draw per sample
    views = [torch.cat([augment(x[i : i + 1]) for i in range(len(x))]) for _ in range(2)]
    (h1, z1), (h2, z2) = embed(model, views[0]), embed(model, views[1])
    neighbours = nearest_negatives(z1, z2)
    delta_h = negative_displacements(h1, h2, neighbours)
    queries = sorted(torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:32])
    bank_idx = sorted(set(range(len(x))) - set(int(i) for i in queries))
    knn = knn_by_hand(h[queries], y[queries], h[bank_idx], y[bank_idx], KNN_K, 0.1)
    return {
        "geometry/projector_rank": projector_rank(weight, 1e-2, relative=True),
        # Eq. 2 on the embedding matrix itself (not centred), as the paper's Figs. 4 and 9.
        "geometry/embedding_rank": projector_rank(h, 1e-2, relative=True),
        # W is (out, in): at most min(out, in) non-zero singular values; h has h.shape[1] dims.
        "geometry/projector_rank_fraction": projector_rank(weight, 1e-2, relative=True)
        / min(weight.shape),
        "geometry/embedding_rank_fraction": projector_rank(h, 1e-2, relative=True) / h.shape[1],
        "geometry/projector_effective_rank": entropy_rank_by_hand(weight.detach()),
        "geometry/embedding_effective_rank": entropy_rank_by_hand(h),
        "geometry/projector_effective_rank_fraction": entropy_rank_by_hand(weight.detach())
        / min(weight.shape),
        "geometry/embedding_effective_rank_fraction": entropy_rank_by_hand(h) / h.shape[1],
        "geometry/wahba_mean": wahba.mean().item(),
        "geometry/wahba_max": wahba.max().item(),
        "geometry/gamma_f": gamma.item(),
        "geometry/fvu": float(fraction_unexplained_variance(delta_h, weight)),
        "geometry/label_match": float(label_match_rate(y, neighbours)),
        "geometry/label_match_coarse": float(label_match_rate(y_coarse, neighbours)),
        "knn/acc": knn,
    }


def test_every_metric_is_logged_and_equals_the_direct_computation() -> None:
    logger = MemoryLogger()
    model, dm = TinySSL(), PlainDataModule()
    trainer(all_callbacks(), logger).fit(model, datamodule=dm)
    expected = expected_values(model, dm)
    assert sorted(expected) == sorted(expected_names())
    logged = {name: logger.last(name) for name in expected}
    assert logged == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # A trained model and real augmentations: the values are not trivially 0 or 1.
    assert 0 < logged["geometry/wahba_mean"] <= logged["geometry/wahba_max"]
    assert 0 < logged["geometry/fvu"] < 1


class Snapshot(L.Callback):
    """Records mode, grad flags, grad mode and RNG state where it sits in the callback list."""

    def __init__(self, store: list[tuple[Any, ...]], hook: str) -> None:
        self.store = store
        setattr(self, hook, self.record)

    def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.store.append(
            (
                [m.training for m in pl_module.modules()],
                [p.requires_grad for p in pl_module.parameters()],
                torch.is_grad_enabled(),
                torch.get_rng_state(),
            )
        )


@pytest.mark.parametrize(
    "hook, limit_val_batches",
    [("on_train_epoch_end", 0), ("on_validation_epoch_end", 1.0)],
)
def test_module_state_is_unchanged_by_each_callback(hook: str, limit_val_batches: float) -> None:
    model = TinySSL()
    model.backbone[1].eval()  # a frozen BatchNorm inside a training module
    model.backbone[0].weight.requires_grad_(False)
    states: list[tuple[Any, ...]] = []
    interleaved: list[L.Callback] = [Snapshot(states, hook)]
    for callback in all_callbacks():
        interleaved += [callback, Snapshot(states, hook)]
    logger = MemoryLogger()
    trainer(interleaved, logger, limit_val_batches=limit_val_batches).fit(
        model, datamodule=FakeDataModule()
    )
    assert len(states) == 7
    modes, grads, grad_mode, rng = states[0]
    if hook == "on_train_epoch_end":  # mixed: training module with a frozen BatchNorm
        assert modes[0] and not all(modes) and grad_mode
    else:  # Lightning validates in eval mode under no_grad
        assert not any(modes) and not grad_mode
    assert not all(grads)
    for after in states[1:]:
        assert after[0] == modes and after[1] == grads and after[2] == grad_mode
        assert torch.equal(after[3], rng)
    for name in expected_names():
        assert math.isfinite(logger.last(name))


class RandomRotation:
    """Same-params transform on vectors: one random R in SO(d) per call, x -> x Rᵀ."""

    def __call__(self, x: Tensor) -> Tensor:
        q, r = torch.linalg.qr(torch.randn(x.shape[1], x.shape[1], dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))
        if torch.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        return (x.double() @ q.T).float()


class RandomPermutation:
    """Same-params transform on vectors: one random permutation of the features per call."""

    def __call__(self, x: Tensor) -> Tensor:
        return x[:, torch.randperm(x.shape[1])]


class SortValues(nn.Module):
    """Exactly permutation-invariant encoder: the sorted feature values (bit-identical)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sort(dim=1).values


class FixedMaps(L.LightningModule):
    """A module whose embedding is a fixed map; only validated, never trained."""

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection_head = nn.Linear(dim, dim, bias=False)
        generator = torch.Generator().manual_seed(0)
        orthogonal, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        self.projection_head.weight.data.copy_(orthogonal)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None


def validate_vectors(model: L.LightningModule, callbacks: list[L.Callback]) -> MemoryLogger:
    generator = torch.Generator().manual_seed(3)
    data = TensorDataset(torch.randn(40, 8, generator=generator), torch.arange(40) % 4)
    logger = MemoryLogger()
    trainer(callbacks, logger).validate(model, DataLoader(data, batch_size=16), verbose=False)
    return logger


def test_exactly_rotation_equivariant_embedding_has_zero_wahba_error() -> None:
    # f(x) = W x with W orthogonal and a(x) = R x: f(a(x)) = (W R Wᵀ) f(x), W R Wᵀ in SO(8).
    logger = validate_vectors(
        FixedMaps(nn.Identity(), 8),
        [
            WahbaError(transform=RandomRotation()),
            WahbaError(transform=RandomRotation(), space="encoder"),
            RelativeEquivariance(transform=RandomRotation()),
        ],
    )
    wahba = [row["geometry/wahba_max"] for row in logger.rows if "geometry/wahba_max" in row]
    assert wahba and max(wahba) < 1e-5
    # Distances are preserved too, so γ_f's numerator (and γ_f) vanish.
    assert logger.last("geometry/gamma_f") < 1e-8


def test_invariant_embedding_gives_finite_relative_equivariance() -> None:
    # Sorting is exactly invariant to permutations: every γ_f denominator is 0.
    logger = validate_vectors(
        FixedMaps(SortValues(), 8),
        [RelativeEquivariance(transform=RandomPermutation()), WahbaError(RandomPermutation())],
    )
    gamma = logger.last("geometry/gamma_f")
    assert math.isfinite(gamma) and gamma == 0.0
    assert logger.last("geometry/wahba_max") == pytest.approx(0.0, abs=1e-5)  # SVD rounding


@pytest.mark.parametrize("channels", [1, 3, 2])
def test_default_augmentation_draws_once_per_batch_for_any_channel_count(channels: int) -> None:
    images = torch.randn(6, 1, 12, 12).expand(6, channels, 12, 12).contiguous() * 2 + 1
    identical = images[:1].expand(6, -1, -1, -1)
    for kind in ("simclr", "crop", "flip", "color_jitter", "grayscale"):
        torch.manual_seed(1)
        out = BatchAugmentation(kind)(identical.clone())
        assert out.shape == images.shape and torch.isfinite(out).all()
        # Identical samples stay identical: one draw of parameters for the whole batch.
        assert torch.allclose(out, out[:1].expand_as(out), atol=1e-6), kind
    torch.manual_seed(0)
    moved = BatchAugmentation("crop", crop_scale=(0.2, 0.3))(images)
    assert not torch.allclose(moved, images)


def test_default_augmentation_keeps_the_batch_range_and_rejects_non_images() -> None:
    # flip only permutes pixels, so the inverse affine map restores the values exactly.
    x = torch.randn(4, 3, 5, 5) * 3 - 2
    torch.manual_seed(0)
    assert torch.allclose(BatchAugmentation("flip")(x), x.flip(-1), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*transform=callable"):
        BatchAugmentation()(torch.randn(4, 8))
    with pytest.raises(ValueError, match="kind must be one of"):
        BatchAugmentation("rotate")


def test_datamodule_transform_is_used_when_offered() -> None:
    # FakeDataModule.same_params_transform() is a gain/offset; the direct computation with it
    # must match the logged Wahba error (and BatchAugmentation would not).
    logger = MemoryLogger()
    model, dm = TinySSL(), FakeDataModule()
    wahba = WahbaError(n_augmentations=2, every_n_epochs=1)
    trainer([wahba], logger, max_epochs=1).fit(model, datamodule=dm)
    model.eval()
    x = dm.val.tensors[0]
    f_x = F.normalize(embed(model, x)[1], dim=1)
    errors = []
    for k in range(2):
        torch.manual_seed(k)
        errors.append(
            wahba_error(f_x, F.normalize(embed(model, dm.same_params_transform()(x))[1], dim=1))
        )
    assert logger.last("geometry/wahba_mean") == pytest.approx(
        torch.stack(errors).mean().item(), rel=1e-5
    )


def test_figures_go_to_tensorboard(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="figures")
    callbacks = [
        ProjectorRank(log_figures=True),
        WahbaError(n_augmentations=2, log_figures=True, figure_transforms=None, every_n_epochs=1),
    ]
    trainer(callbacks, logger, max_epochs=2).fit(TinySSL(), datamodule=PlainDataModule())
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert {"geometry/projector_spectrum", "geometry/embedding_spectrum"} <= set(tags["images"])
    expected = {"geometry/cos_fx_fax"} | {
        f"geometry/cos_fx_fax/{kind}" for kind in ("crop", "flip", "color_jitter", "grayscale")
    }
    assert expected <= set(tags["histograms"])
    # 1-channel images: grayscale is the identity, so every cosine is 1.
    (grayscale,) = events.Histograms("geometry/cos_fx_fax/grayscale")[-1:]
    assert grayscale.histogram_value.min == pytest.approx(1.0, abs=1e-5)
    assert len(events.Histograms("geometry/cos_fx_fax")) == 2  # one per epoch
    assert [epoch for epoch, _ in callbacks[0].projector_spectra] == [0, 1]


def test_every_n_epochs_and_interval_defaults() -> None:
    logger = MemoryLogger()
    rank = ProjectorRank(every_n_epochs=2)
    trainer([rank], logger, max_epochs=4).fit(TinySSL(), datamodule=PlainDataModule())
    assert [epoch for epoch, _ in rank.projector_spectra] == [1, 3]
    assert sum("geometry/projector_rank" in row for row in logger.rows) == 2
    wahba, knn = WahbaError(), KNNAccuracy()
    assert (wahba.n_augmentations, wahba.reference.size) == (20, 512)
    assert (knn.k, knn.temperature, knn.bank_size, knn.reference.size) == (200, 0.1, 5_000, 1_000)
    # Cadences chosen by cost (docs/callbacks.md); callbacks that share work share a cadence.
    callbacks = [
        ProjectorRank(),
        WahbaError(),
        RelativeEquivariance(),
        FractionUnexplainedVariance(),
        LabelMatch(),
        knn,
    ]
    assert {type(c).__name__: c.every_n_epochs for c in callbacks} == {
        "ProjectorRank": 1,
        "WahbaError": 20,
        "RelativeEquivariance": 20,
        "FractionUnexplainedVariance": 5,
        "LabelMatch": 5,
        "KNNAccuracy": 10,
    }


def test_a_fit_measures_at_the_cadence_and_validate_always_measures() -> None:
    # WahbaError's default cadence is 20 epochs: a 2-epoch fit never measures it, and an
    # explicit trainer.validate() afterwards does.
    logger, model, dm = MemoryLogger(), TinySSL(), PlainDataModule()
    fitted = trainer([WahbaError(n_augmentations=2)], logger, max_epochs=2)
    fitted.fit(model, datamodule=dm)
    assert not any("geometry/wahba_mean" in row for row in logger.rows)
    fitted.validate(model, datamodule=dm, verbose=False)
    assert 0 < logger.last("geometry/wahba_mean") <= logger.last("geometry/wahba_max")


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="n_augmentations must be a positive integer, got 0"):
        WahbaError(n_augmentations=0)
    with pytest.raises(ValueError, match="space must be one of"):
        RelativeEquivariance(space="latent")
    with pytest.raises(ValueError, match="reference_size must be an integer of at least 2"):
        LabelMatch(reference_size=1)
    with pytest.raises(
        ValueError, match=r"reference_source must be one of \['validation', 'train'\]"
    ):
        LabelMatch(reference_source="test")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        KNNAccuracy(temperature=0)
    with pytest.raises(ValueError, match="figure_transforms\\['x'\\] must be a callable"):
        WahbaError(figure_transforms={"x": 3})


def test_missing_parts_fail_at_setup_with_a_hint() -> None:
    no_projector = TinySSL()
    del no_projector.projection_head
    with pytest.raises(ValueError, match=r"no projector attribute .*pass projector="):
        trainer([ProjectorRank()]).fit(no_projector, datamodule=PlainDataModule())
    with pytest.raises(ValueError, match=r"has 2 nn\.Linear layers; pass layer="):
        trainer([FractionUnexplainedVariance()]).fit(
            TinySSL(mlp_head=True), datamodule=PlainDataModule()
        )


def test_labels_are_required_by_label_match() -> None:
    data = DataLoader(TensorDataset(torch.randn(32, 1, 6, 6)), batch_size=16)
    with pytest.raises(ValueError, match="LabelMatch needs labelled reference batches"):
        trainer([LabelMatch()]).fit(TinySSL(), data, data)
