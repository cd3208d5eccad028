"""CARE: one augmentation pair per chunk (or one shared), the loss terms and their switches.

A "same parameters" transform is recognisable by its output: fed a batch of identical
images it returns identical images; two draws differ. The tests use that with the real
augmentation of a CIFAR-10 DataModule, and a counting transform that adds one random number
per call for exact bookkeeping. CARE receives its augmentation: from the CLI's link of
``data.augmentation``, or passed by hand; without one it refuses to train.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from ssl_geom.augment import DeviceSameParams, SameParamsTransform
from ssl_geom.cli import build_cli
from ssl_geom.data import CIFAR10DataModule
from ssl_geom.methods import CARE
from tests.conftest import quiet_trainer
from tests.methods_testing import SyntheticSSLData

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}
FLIP = {"same_params_transform": lambda batch: batch.flip(-1)}
CARE_FASHION = Path(__file__).resolve().parents[1] / "experiments" / "care_simclr_fashion.yaml"


class AddOneDraw:
    """``t(batch) = batch + u`` with one ``u ~ U(0, 1)`` per call; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return batch + torch.rand(())


def chunk_offsets(views: torch.Tensor, n_split: int) -> torch.Tensor:
    """The per-chunk added value, after checking it is constant inside each chunk."""
    per_chunk = views.reshape(n_split, -1)
    assert torch.equal(per_chunk, per_chunk[:, :1].expand_as(per_chunk))
    return per_chunk[:, 0]


def test_each_chunk_gets_its_own_pair_shared_by_all_its_samples() -> None:
    t = AddOneDraw()
    model = CARE(n_split=4, same_params_transform=t, batch_size=8, **TINY)
    first, second = model.equivariance_views(torch.zeros(8, 3, 2, 2))
    a, b = chunk_offsets(first, 4), chunk_offsets(second, 4)
    assert t.calls == 8  # two draws per chunk
    assert len(set(a.tolist())) == 4 and len(set(b.tolist())) == 4  # fresh per chunk
    assert not torch.equal(a, b)  # the pair's two augmentations differ


class CallNumber:
    """``t(batch) = batch + k`` on the k-th call (k = 0, 1, ...): shows the order of the draws."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return batch + (self.calls - 1)


def test_draws_alternate_between_the_views_chunk_by_chunk() -> None:
    # Seeded runs depend on this order: first(chunk 0), second(chunk 0), first(chunk 1), ...
    model = CARE(n_split=4, same_params_transform=CallNumber(), batch_size=8, **TINY)
    first, second = model.equivariance_views(torch.zeros(8, 3, 2, 2))
    assert chunk_offsets(first, 4).tolist() == [0, 2, 4, 6]
    assert chunk_offsets(second, 4).tolist() == [1, 3, 5, 7]


def test_shared_pair_option_uses_one_pair_for_all_chunks() -> None:
    t = AddOneDraw()
    model = CARE(n_split=4, shared_pair_across_chunks=True, same_params_transform=t, **TINY)
    first, second = model.equivariance_views(torch.zeros(8, 3, 2, 2))
    assert t.calls == 2
    assert len(set(chunk_offsets(first, 1).tolist())) == 1
    assert chunk_offsets(first, 1) != chunk_offsets(second, 1)


def test_with_the_real_simclr_transform_chunks_share_parameters_and_differ_between_chunks() -> None:
    torch.manual_seed(0)
    augmentation = CIFAR10DataModule(root="unused", num_workers=0).augmentation
    model = CARE(n_split=2, same_params_transform=augmentation, **TINY)
    image = torch.randn(1, 3, 32, 32)
    first, _ = model.equivariance_views(image.expand(8, -1, -1, -1).contiguous())
    chunk0, chunk1 = first[:4], first[4:]
    assert torch.equal(chunk0, chunk0[:1].expand_as(chunk0))
    assert torch.equal(chunk1, chunk1[:1].expand_as(chunk1))
    assert not torch.allclose(chunk0[0], chunk1[0])


def add_shared_noise(batch: torch.Tensor) -> torch.Tensor:
    """One random image-shaped offset for the whole batch (BN cannot normalise it away)."""
    return batch + 0.5 * torch.randn(batch.shape[1:])


def fit(model: CARE, steps: int = 2, **data) -> L.Trainer:
    trainer = quiet_trainer(max_steps=steps)
    trainer.fit(model, SyntheticSSLData(include_original=True, **data))
    return trainer


def test_identity_pair_gives_zero_equivariance_and_the_loss_is_the_weighted_sum() -> None:
    # Identical equivariance views have identical Gram matrices, so L_equi = 0 exactly.
    model = CARE(n_split=2, equivariance_weight=0.5, same_params_transform=lambda x: x, **TINY)
    trainer = fit(model, steps=1)
    m = trainer.callback_metrics
    assert float(m["train/equivariance"]) == 0.0
    assert float(m["train/loss"]) == pytest.approx(float(m["train/info_nce"]), rel=1e-6)


def test_fig7_switches_log_and_sum_exactly_the_active_terms() -> None:
    # L_equi + L_unif (Fig. 7): no InfoNCE, no invariance term.
    model = CARE(
        n_split=2,
        info_nce_weight=0.0,
        uniformity_weight=2.0,
        equivariance_weight=0.5,
        same_params_transform=add_shared_noise,
        **TINY,
    )
    m = fit(model, steps=1).callback_metrics
    terms = {k for k in m if k.startswith("train/") and k != "train/loss"}
    assert terms == {"train/uniformity", "train/equivariance"}
    expected = 2.0 * float(m["train/uniformity"]) + 0.5 * float(m["train/equivariance"])
    assert float(m["train/loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(m["train/equivariance"]) > 0


def test_invariance_term_alone_logs_only_invariance() -> None:
    model = CARE(info_nce_weight=0.0, invariance_weight=1.0, equivariance_weight=0.0, **TINY)
    m = fit(model, steps=1, n_views=2).callback_metrics
    assert {k for k in m if k.startswith("train/")} == {"train/loss", "train/invariance"}


def test_moco_base_contrasts_against_its_queue_and_adds_the_equivariance_term() -> None:
    model = CARE(
        base="moco", queue_size=64, n_split=2, temperature=0.1, bn_splits=4, **FLIP, **TINY
    )
    m = fit(model, steps=2).callback_metrics
    assert model.momentum_encoder.queue_ptr == 2 * 8  # official direction: view-2 keys only
    assert {"train/info_nce", "train/equivariance"} <= set(m)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"n_split": 3, "batch_size": 8},
            "CARE n_split=3 must divide the batch size 8",
        ),
        ({"base": "byol"}, "unknown CARE base 'byol'; valid choices: simclr, moco"),
        ({"equivariance_weight": -1.0}, "equivariance_weight must be >= 0"),
        (
            {"base": "moco", "batch_size": 8, "n_split": 2},
            "MoCo bn_splits=8 must divide the batch size 8",
        ),
        ({"info_nce_weight": 0.0, "equivariance_weight": 0.0}, "all CARE loss weights are 0"),
    ],
)
def test_bad_configs_fail_at_construction(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        CARE(**TINY, **kwargs)


def test_batch_size_from_the_datamodule_is_checked_before_the_first_step() -> None:
    with pytest.raises(ValueError, match="n_split=3 must divide the batch size 8"):
        fit(CARE(n_split=3, **TINY))


def test_missing_originals_are_refused_before_the_first_step() -> None:
    trainer = quiet_trainer(max_steps=1)
    with pytest.raises(ValueError, match="include_original=False; set"):
        trainer.fit(CARE(n_split=2, **TINY), SyntheticSSLData(include_original=False))


def test_training_without_an_augmentation_is_refused_naming_the_fix() -> None:
    trainer = quiet_trainer(max_steps=1)
    with pytest.raises(ValueError, match=r"same_params_transform=datamodule\.augmentation"):
        trainer.fit(CARE(n_split=2, **TINY), SyntheticSSLData(include_original=True))
    assert trainer.global_step == 0


def test_without_the_equivariance_term_no_augmentation_is_needed() -> None:
    model = CARE(n_split=2, equivariance_weight=0.0, **TINY)
    assert fit(model, steps=1).global_step == 1


def _cli_model(*args: str) -> tuple[CARE, CIFAR10DataModule]:
    cli = build_cli(["--config", str(CARE_FASHION), "--data.init_args.root=.", *args], run=False)
    return cli.model, cli.datamodule


def test_the_cli_links_the_datamodules_augmentation_into_care() -> None:
    # strength=small is not the default: the crop of CARE's pairs must be the DataModule's
    # (Table 2 small: scale 0.9-1), and with the same RNG state its draws equal a transform
    # built independently from the DataModule's augmentation.
    model, dm = _cli_model("--data.init_args.strength=small")
    t = model._same_params
    assert isinstance(t, SameParamsTransform)
    assert tuple(t.ops.transforms[0].scale) == (0.9, 1.0)
    torch.testing.assert_close(t.mean.flatten(), torch.tensor(dm.mean))
    x = torch.randn(4, 1, 28, 28)
    torch.manual_seed(0)
    ours = t(x)
    torch.manual_seed(0)
    torch.testing.assert_close(ours, dm.augmentation.same_params()(x), rtol=0, atol=0)


def test_models_without_the_argument_neither_receive_nor_record_the_augmentation() -> None:
    # The link is skipped for SimCLR, and its hparams (hence checkpoints, which must load with
    # weights_only=True) hold no Augmentation; the other links still arrive.
    config = CARE_FASHION.with_name("simclr_fashion.yaml")
    cli = build_cli(["--config", str(config), "--data.init_args.root=."], run=False)
    assert "same_params_transform" not in cli.model.hparams
    assert (cli.model.hparams.num_classes, cli.model.hparams.batch_size) == (10, 128)


def test_the_cli_link_carries_device_augmentation_with_the_data_seed() -> None:
    model, dm = _cli_model("--data.init_args.augment_on=device", "--data.init_args.seed=7")
    t = model._same_params
    assert isinstance(t, DeviceSameParams) and t.augment.seed == 7
    x = torch.randn(8, 1, 28, 28)
    reference = dm.augmentation.same_params()  # a new generator, seeded like CARE's
    torch.testing.assert_close(t.pair(x, 4), reference.pair(x, 4), rtol=0, atol=0)
