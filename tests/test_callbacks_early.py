"""Fit-start checks, small validation sets, the reference source, sharing and scale-free rank.

Expected values are recomputed directly (as in tests/test_callbacks.py): the documented
sample choice (``sorted(torch.randperm(n, generator=seed 0)[:size])``), the documented seeds,
and the functions of ``ssl_geom.metrics``.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ssl_geom.callbacks import (
    KNNAccuracy,
    LabelMatch,
    ProjectorRank,
    RelativeEquivariance,
    WahbaError,
)
from ssl_geom.metrics import label_match_rate, nearest_negatives, wahba_error
from tests.callbacks_support import (
    FakeDataModule,
    MemoryLogger,
    PlainDataModule,
    ShiftScale,
    TinySSL,
    fake_images,
    trainer,
)
from tests.test_callbacks import FixedMaps, embed, knn_by_hand


class CountingSSL(TinySSL):
    """TinySSL that counts its training steps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = 0

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self.steps += 1
        return super().training_step(batch, batch_idx)


class TupleBackbone(nn.Module):
    """A foreign backbone returning ``(features, auxiliary)``, like many detection models."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.inner(x)
        return h, h.mean(dim=1)


class TupleSSL(CountingSSL):
    """A module whose own training step unpacks the tuple (so training itself works)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = TupleBackbone(self.backbone)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self.steps += 1
        h = self.backbone(batch[0])[0]
        z = F.normalize(self.projection_head(h), dim=1)
        return -(z @ z.T).mean()


@pytest.mark.parametrize(
    "callback", [ProjectorRank(), KNNAccuracy(), WahbaError(n_augmentations=2)]
)
def test_backbone_returning_a_tuple_fails_before_the_first_training_step(callback) -> None:
    model = TupleSSL()
    with pytest.raises(ValueError, match=r"one tensor of features, got tuple.*encoder=callable"):
        trainer([callback]).fit(model, datamodule=PlainDataModule())
    assert model.steps == 0


def test_encoder_callable_adapts_a_tuple_backbone() -> None:
    # The fix the message suggests works: the first element is the features.
    model, logger = TupleSSL(), MemoryLogger()
    rank = ProjectorRank(encoder=lambda x: model.backbone(x)[0])
    trainer([rank], logger).fit(model, datamodule=PlainDataModule())
    assert logger.last("geometry/embedding_rank") >= 1


def test_unlabelled_data_fails_label_match_before_the_first_training_step() -> None:
    data = DataLoader(TensorDataset(torch.randn(32, 1, 6, 6)), batch_size=16)
    model = CountingSSL()
    with pytest.raises(ValueError, match="LabelMatch needs labelled reference batches"):
        trainer([LabelMatch()]).fit(model, data, data)
    assert model.steps == 0


@pytest.fixture
def lightning_info(caplog: pytest.LogCaptureFixture):
    """Capture Lightning's rank-zero INFO messages (its logger does not propagate to root)."""
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("n_val", [10, 128])
def test_knn_defaults_split_a_small_validation_set_and_say_so_once(n_val, lightning_info) -> None:
    # KNNAccuracy() asks for 1,000 queries; with no train_eval_dataloader() and n_val images
    # the set is split in half: queries = the seeded subset of n_val // 2, bank = the rest.
    dm, model, logger = PlainDataModule(n_val=n_val), TinySSL(), MemoryLogger()
    trainer([KNNAccuracy(every_n_epochs=1)], logger, max_epochs=2).fit(model, datamodule=dm)
    half = n_val // 2
    messages = [r.getMessage() for r in lightning_info.records if "KNNAccuracy" in r.getMessage()]
    assert messages == [
        f"KNNAccuracy: no train_eval_dataloader() and only {n_val} validation samples "
        f"(reference_size=1000): using {half} as queries and the other {n_val - half} as the bank"
    ]
    model.eval()
    x, y, _ = dm.val.tensors
    queries = sorted(
        torch.randperm(n_val, generator=torch.Generator().manual_seed(0))[:half].tolist()
    )
    bank = sorted(set(range(n_val)) - set(queries))
    h = embed(model, x)[0]
    expected = knn_by_hand(h[queries], y[queries], h[bank], y[bank], min(200, len(bank)), 0.1)
    assert logger.last("knn/acc") == pytest.approx(expected)


def test_a_tiny_validation_set_fails_knn_at_fit_start() -> None:
    model = CountingSSL()
    with pytest.raises(
        ValueError,
        match=r"validation reference set has 1 sample\(s\); the geometry callbacks need at least 2",
    ):
        trainer([KNNAccuracy()]).fit(model, datamodule=PlainDataModule(n_val=1))
    assert model.steps == 0


def test_reference_source_train_measures_the_training_split() -> None:
    # FakeDataModule has train_eval_dataloader(): the reference set is 10 of its 96 training
    # images (seeded subset), viewed twice per sample with its ShiftScale transform (seed 0).
    dm, model, logger = FakeDataModule(), TinySSL(), MemoryLogger()
    callback = LabelMatch(reference_source="train", reference_size=10, every_n_epochs=1)
    trainer([callback], logger).fit(model, datamodule=dm)
    model.eval()
    chosen = sorted(torch.randperm(96, generator=torch.Generator().manual_seed(0))[:10].tolist())
    x, y, y_coarse = (t[chosen] for t in dm.train.tensors)
    torch.manual_seed(0)
    views = [torch.cat([ShiftScale()(x[i : i + 1]) for i in range(10)]) for _ in range(2)]
    neighbours = nearest_negatives(embed(model, views[0])[1], embed(model, views[1])[1])
    assert logger.last("geometry/label_match") == pytest.approx(
        float(label_match_rate(y, neighbours))
    )
    assert logger.last("geometry/label_match_coarse") == pytest.approx(
        float(label_match_rate(y_coarse, neighbours))
    )


def test_the_reference_set_is_embedded_once_and_the_draws_in_full_chunks() -> None:
    # Passes of 64 rows = the reference set (the fit-start checks embed 2, training batches 16).
    # f(X) is one pass shared by rank, Wahba and γ_f; the K = 2 augmented copies (128 rows)
    # fill one chunk of the default 256, so they make one more pass, whoever asks for them.
    def measurement_passes(callbacks: list[L.Callback]) -> list[int]:
        model, sizes = TinySSL(), []
        model.backbone.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
        trainer(callbacks).fit(model, datamodule=PlainDataModule())
        return [size for size in sizes if size not in (2, 16)]

    alone = measurement_passes([WahbaError(n_augmentations=2, every_n_epochs=1)])
    together = measurement_passes(
        [
            ProjectorRank(),
            WahbaError(n_augmentations=2, every_n_epochs=1),
            RelativeEquivariance(n_augmentations=2, every_n_epochs=1),
        ]
    )
    assert alone == together == [64, 128]
    # Chunks of 40 rows: f(X) in 40 + 24, the draws' 128 rows in 40 + 40 + 40 + 8.
    chunked = measurement_passes([WahbaError(n_augmentations=2, chunk_size=40, every_n_epochs=1)])
    assert chunked == [40, 24, 40, 40, 40, 8]


class LinearMaps(L.LightningModule):
    """Identity encoder and a linear projector with a chosen weight; only validated."""

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.backbone = nn.Identity()
        self.projection_head = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.projection_head.weight.data.copy_(weight)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None


@pytest.mark.parametrize(("relative", "expected"), [(True, (4, 4)), (False, (4, 8))])
def test_projector_rank_is_scale_free_by_default(relative, expected) -> None:
    # W = U diag(10^(-4j/7)) Vᵀ, j = 0..7: σ = 1, .27, .072, .019, .0052, ... 1e-4. The cut
    # 1e-2·σ_1 keeps 4 at any scale; the absolute 1e-2 keeps 4 of W but all 8 of 1000·W.
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    v, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    weight = (u * 10.0 ** (-4 * torch.arange(8.0) / 7)) @ v.T
    data = DataLoader(TensorDataset(torch.randn(20, 8, generator=g)), batch_size=10)
    ranks = []
    for scale in (1.0, 1000.0):
        logger = MemoryLogger()
        trainer([ProjectorRank(relative=relative)], logger).validate(
            LinearMaps(scale * weight), data, verbose=False
        )
        ranks.append(logger.last("geometry/projector_rank"))
    assert tuple(ranks) == expected


class SSLWithTestStep(TinySSL):
    def test_step(self, batch: Any, batch_idx: int) -> None:
        return None


def test_wahba_over_the_whole_test_set_matches_one_draw_on_all_of_it() -> None:
    # 40 test images in batches of 16: draw k is re-seeded with k for every batch, so each
    # batch gets the same gain/offset — the value must equal ONE ShiftScale draw (seed k) on
    # all 40 images at once, computed here directly.
    x, y, _ = fake_images(40, 7)
    test = DataLoader(TensorDataset(x, y), batch_size=16)
    model, logger = SSLWithTestStep(), MemoryLogger()
    callback = WahbaError(transform=ShiftScale(), n_augmentations=3, test_set=True)
    fitted = trainer([callback], logger)
    fitted.fit(model, datamodule=PlainDataModule())
    fitted.test(model, test, verbose=False)
    model.eval()
    f_x = F.normalize(embed(model, x)[1], dim=1)
    errors = []
    for k in range(3):
        torch.manual_seed(k)
        errors.append(wahba_error(f_x, F.normalize(embed(model, ShiftScale()(x))[1], dim=1)))
    errors = torch.stack(errors)
    assert logger.last("geometry/wahba_test_mean") == pytest.approx(errors.mean().item(), rel=1e-5)
    assert logger.last("geometry/wahba_test_max") == pytest.approx(errors.max().item(), rel=1e-5)
    assert errors.min() > 0  # a real, non-trivial check


def test_a_reference_set_smaller_than_the_embedding_is_refused_before_training() -> None:
    # TinySSL's encoder has 12 dimensions: on 8 samples Eq. 2 could count at most 8.
    model = CountingSSL()
    with pytest.raises(ValueError, match=r"reference_size=8 is below .* dimension 12.* >= 12"):
        trainer([ProjectorRank(reference_size=8)]).fit(model, datamodule=PlainDataModule())
    assert model.steps == 0


def test_an_orthonormal_embedding_reads_full_rank_on_as_many_samples_as_dimensions() -> None:
    # H = Q (8 orthonormal rows of R^8): all 8 singular values are 1, so Eq. 2 counts 8 and the
    # effective rank is exp(log 8) = 8. Centring first (a covariance) would lose one direction.
    rows, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))
    data = TensorDataset(rows, torch.arange(8) % 4)
    logger = MemoryLogger()
    model = FixedMaps(nn.Identity(), 8)
    trainer([ProjectorRank(reference_size=8)], logger).validate(
        model, DataLoader(data, batch_size=4), verbose=False
    )
    assert logger.last("geometry/embedding_rank") == 8
    assert logger.last("geometry/embedding_rank_fraction") == 1.0
    assert logger.last("geometry/embedding_effective_rank") == pytest.approx(8.0, rel=1e-6)
    centred = rows - rows.mean(dim=0)
    assert int(torch.linalg.matrix_rank(centred)) == 7


def test_a_validation_split_smaller_than_the_embedding_warns_and_caps_the_rank() -> None:
    # 5 orthonormal rows in R^8: rank 5 of at most 8, fraction 5/8, with a warning naming why.
    rows, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    data = TensorDataset(rows[:5], torch.arange(5) % 2)
    logger = MemoryLogger()
    with pytest.warns(UserWarning, match="holds 5 samples, fewer than the embedding dimension 8"):
        trainer([ProjectorRank(reference_size=8)], logger).validate(
            FixedMaps(nn.Identity(), 8), DataLoader(data, batch_size=4), verbose=False
        )
    assert logger.last("geometry/embedding_rank") == 5
    assert logger.last("geometry/embedding_rank_fraction") == 5 / 8
