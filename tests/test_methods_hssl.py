"""H-SSL, F-SSL, A-SSL, Supervised and Frozen LightningModules (H-SSL paper Tables 1-2).

Backbones: ``tests/hssl_testing.py`` (an exactly C4-equivariant ``test_c4`` and a
3-element ``test_scales``), ``tiny_cnn`` (G = 1) from ``tests/methods_testing.py`` and the
real ``hssl_mnist_mlp`` (narrowed) for the emulated-fiber baseline.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from ssl_geom.losses.fibers import Bundles, CyclicBundles, FiberPairs, IntervalBundles
from ssl_geom.methods.assl import ASSL
from ssl_geom.methods.frozen import Frozen
from ssl_geom.methods.fssl import FSSL
from ssl_geom.methods.hssl import HSSL
from ssl_geom.methods.supervised import Supervised
from tests.conftest import quiet_trainer
from tests.hssl_testing import rotate_each
from tests.methods_testing import SyntheticSSLData

SMALL_HEAD = {"projector_hidden_dims": [16], "projector_out_dim": 8}
MLP = {
    "backbone": "hssl_mnist_mlp",
    "backbone_kwargs": {"widths": [32, 64], "emulated_group_size": 16, "image_size": 8},
    "in_channels": 3,
}


def first_linear(module: nn.Module) -> nn.Linear:
    return next(m for m in module.modules() if isinstance(m, nn.Linear))


def fit_one_step(
    model: L.LightningModule,
    n_views: int = 1,
    callbacks: list | None = None,
    include_original: bool = False,
) -> L.Trainer:
    """One optimizer step, then one validation batch (so ``probe/acc`` is logged)."""
    trainer = quiet_trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    trainer.fit(model, SyntheticSSLData(n_views=n_views, include_original=include_original))
    return trainer


# ---------------------------------------------------------------- construction


def test_hssl_refuses_a_group_the_backbone_lacks_and_names_the_fix() -> None:
    with pytest.raises(ValueError) as info:
        HSSL(backbone="tiny_cnn", transformation="rotation", in_channels=3)
    message = str(info.value)
    for part in ("'tiny_cnn'", "group 'translation'", "hssl_mnist_rotation", "emulate_fibers=True"):
        assert part in message
    with pytest.raises(ValueError, match="backbone 'test_scales' \\(group 'scale', G=3\\)"):
        HSSL(backbone="test_scales", transformation="rotation")


def test_emulate_fibers_allows_the_table2_mlp_and_is_refused_elsewhere() -> None:
    # MLP: 64 features viewed as 16 fibers of 4 (the paper's 2048 -> (16, 128) reshape).
    model = HSSL(transformation="translation", emulate_fibers=True, base_size=2, **MLP)
    bundles = model.bundles
    assert isinstance(bundles, IntervalBundles)
    assert (bundles.size, bundles.base_size, bundles.max_distance, bundles.emulated) == (
        16,
        2,
        None,
        True,
    )
    assert first_linear(model.projector).in_features == 2 * 64 // 16
    with pytest.raises(ValueError, match=r"'test_c4' .* has a real group axis"):
        HSSL(backbone="test_c4", emulate_fibers=True)
    with pytest.raises(ValueError, match=r"emulated_group_size=None; use e.g. 'hssl_mnist_mlp'"):
        HSSL(backbone="tiny_cnn", transformation="scale", emulate_fibers=True, in_channels=3)


def test_bad_fiber_options_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown transformation 'shear'; valid choices"):
        HSSL(backbone="test_c4", transformation="shear")
    with pytest.raises(ValueError, match=r"base_size=5 exceeds .* 4 elements"):
        HSSL(backbone="test_c4", base_size=5)
    # A 3-element base on a 3-element non-cyclic axis has one position: pairs would be equal.
    with pytest.raises(ValueError, match="single bundle position"):
        HSSL(backbone="test_scales", transformation="scale", base_size=3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        HSSL(backbone="test_c4", temperature=0.0)
    # A-SSL transforms the input, so it needs no structure and allows a single position.
    bundles = ASSL(backbone="tiny_cnn", transformation="rotation", in_channels=3).bundles
    assert isinstance(bundles, CyclicBundles)
    assert (bundles.size, bundles.base_size, bundles.emulated) == (1, 1, False)
    with pytest.raises(ValueError, match="Frozen trains only the linear probe"):
        Frozen(backbone="tiny_cnn")
    with pytest.raises(ValueError, match="Supervised needs num_classes"):
        Supervised(backbone="tiny_cnn")


def test_assl_refuses_views_of_another_group_before_training() -> None:
    class RotatedData(SyntheticSSLData):
        train_views = "rotation"

    model = ASSL(backbone="test_scales", transformation="scale", **SMALL_HEAD)
    trainer = quiet_trainer(max_steps=1, barebones=True)
    with pytest.raises(
        ValueError, match="train_views='rotation'; set the data's train_views='scale'"
    ):
        trainer.fit(model, RotatedData(include_original=True))
    assert trainer.global_step == 0  # refused before the first step
    model = ASSL(backbone="test_scales", transformation="scale", **SMALL_HEAD)
    with pytest.raises(ValueError, match=r"include_original=False; set data\.init_args\.include"):
        trainer.fit(model, SyntheticSSLData(n_views=2))


def test_assl_probe_reads_the_un_augmented_original() -> None:
    """Issue 14.6: the classifier sees the original (last view), not a transformed view."""
    torch.manual_seed(0)
    model = ASSL(backbone="test_c4", num_classes=4, **SMALL_HEAD)
    x = torch.randn(6, 3, 9, 9)
    views = [rotate_each(x, torch.ones(6, dtype=torch.long)), x.flip(-1), x]
    _, _, probe_map = model.bundle_pair(views)
    with torch.no_grad():
        torch.testing.assert_close(probe_map, model.backbone(x), rtol=0, atol=0)
    assert not probe_map.requires_grad  # it trains only the probe
    with pytest.raises(ValueError, match=r"got 2 views; .* include_original=True"):
        model.bundle_pair(views[:2])


@pytest.mark.parametrize("base_size", [1, 2, 4])
def test_projector_input_grows_with_the_base(base_size: int) -> None:
    model = HSSL(backbone="test_c4", base_size=base_size, backbone_kwargs={"channels": 5})
    assert first_linear(model.projector).in_features == 5 * base_size  # C * |g0|
    patches = FSSL(backbone="test_c4", patch_size=base_size, backbone_kwargs={"channels": 5})
    # Translation fibers hold C * G numbers per pixel: p * p * C * G.
    assert first_linear(patches.projector).in_features == base_size**2 * 5 * 4


# ---------------------------------------------------------------- one training step


def test_hssl_step_trains_backbone_and_projector() -> None:
    torch.manual_seed(0)
    model = HSSL(backbone="test_c4", base_size=2, num_classes=4, lr=0.5, **SMALL_HEAD)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = fit_one_step(model)
    loss = trainer.callback_metrics["train/loss"]
    # InfoNCE with 2B = 16 anchors is at most about log(2B - 1) for any embedding.
    assert 0 < float(loss) < torch.log(torch.tensor(15.0)) + 1
    for prefix in ("backbone.", "projector.", "probe."):
        changed = [
            k
            for k, v in model.state_dict().items()
            if k.startswith(prefix) and v.is_floating_point()
        ]
        assert any(not torch.equal(before[k], model.state_dict()[k]) for k in changed), prefix
    assert "probe/acc" in trainer.callback_metrics


def test_hssl_refuses_augmented_views_with_the_fix() -> None:
    model = HSSL(backbone="test_c4", **SMALL_HEAD)
    with pytest.raises(ValueError, match="got 2 views; configure the DataModule with train_views"):
        model.bundle_pair([torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)])


def test_translation_on_a_map_without_room_for_two_patches_names_the_fix() -> None:
    model = HSSL(transformation="translation", **MLP, **SMALL_HEAD)
    with pytest.raises(ValueError, match=r"1x1 feature map .* emulate_fibers=True"):
        model.bundle_pair([torch.randn(4, 3, 8, 8)])


def test_fssl_is_hssl_over_translation() -> None:
    """Same seed, same weights: F-SSL(patch p) and H-SSL(translation, |g0| = p) agree."""
    kwargs = {"backbone": "tiny_cnn", "in_channels": 3, **SMALL_HEAD}
    fssl = FSSL(patch_size=2, max_distance=3, **kwargs)
    hssl = HSSL(transformation="translation", base_size=2, max_distance=3, **kwargs)
    hssl.load_state_dict(fssl.state_dict())
    x = [torch.randn(6, 3, 8, 8)]
    torch.manual_seed(1)
    a = fssl.bundle_pair(x)
    torch.manual_seed(1)
    b = hssl.bundle_pair(x)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    assert a[0].shape == (6, 2 * 2 * 8)


def test_frozen_step_changes_only_the_probe() -> None:
    model = Frozen(backbone="tiny_cnn", num_classes=4, lr=0.5, probe_lr=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit_one_step(model)
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("backbone."):
            # Parameters *and* BatchNorm buffers: the representation stays the random one.
            assert torch.equal(v, after[k]), k
    weight = "probe.classifier.linear.weight"
    assert not torch.equal(before[weight], after[weight])
    assert not model.backbone.training
    assert not hasattr(model, "projector")  # Frozen builds none (nothing to freeze)


def test_frozen_batch_norm_mode_is_explicit() -> None:
    """``batch``: weights stay, BatchNorm running statistics follow the data; bad values fail."""
    model = Frozen(backbone="tiny_cnn", num_classes=4, batch_norm="batch")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    fit_one_step(model)
    after = model.backbone.state_dict()
    assert torch.equal(before["conv.weight"], after["conv.weight"])
    assert not torch.equal(before["bn.running_mean"], after["bn.running_mean"])
    with pytest.raises(ValueError, match="unknown batch_norm 'train'; valid choices: eval, batch"):
        Frozen(backbone="tiny_cnn", num_classes=4, batch_norm="train")


def test_supervised_step_sends_gradients_through_the_backbone() -> None:
    grads: dict[str, float] = {}

    class RecordGrads(L.Callback):
        def on_after_backward(self, trainer, module) -> None:
            for name, p in module.named_parameters():
                if p.grad is not None:
                    grads[name] = float(p.grad.abs().sum())

    model = Supervised(backbone="tiny_cnn", num_classes=4, probe_lr=0.3, lr=0.3)
    trainer = fit_one_step(model, callbacks=[RecordGrads()])
    assert grads["backbone.conv.weight"] > 0
    assert grads["probe.classifier.linear.weight"] > 0
    assert not hasattr(model, "projector")  # Supervised builds none
    assert "probe/acc" in trainer.callback_metrics


# ---------------------------------------------------------------- A-SSL and Eq. 7


class Recording(Bundles):
    """Wraps a model's bundles: records what they sample and gather, or replays a fixed base."""

    def __init__(self, inner: Bundles, fixed_base: torch.Tensor | None = None) -> None:
        self.inner, self.fixed_base = inner, fixed_base
        self.log: list = []

    def bundle_dim(self, channels: int, group_size: int) -> int:
        return self.inner.bundle_dim(channels, group_size)

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner.prepare(z)

    def pairs(self, prepared, generator=None) -> FiberPairs:
        pairs = self.inner.pairs(prepared, generator)
        self.log.append(("pairs", pairs))
        return pairs

    def base(self, prepared, generator=None) -> torch.Tensor:
        base = self.inner.base(prepared, generator) if self.fixed_base is None else self.fixed_base
        self.log.append(("base", base))
        return base

    def gather(self, prepared, start):
        self.log.append(("gather", start))
        return self.inner.gather(prepared, start)


def recording(model, **extra) -> Recording:
    spec = Recording(model.bundles, **extra)
    model.bundles = spec
    return spec


def test_assl_reads_the_same_base_from_both_views() -> None:
    model = ASSL(backbone="test_c4", base_size=2, num_classes=4, **SMALL_HEAD)
    spec = recording(model)
    fit_one_step(model, n_views=2, include_original=True)
    kinds = [kind for kind, _ in spec.log]
    assert kinds == ["base", "gather", "gather"]
    base, first, second = (value for _, value in spec.log)
    assert first is base and second is base
    assert base.min() >= 0 and base.max() < 4


@pytest.mark.parametrize("base_size", [1, 3])
def test_hssl_pairs_equal_assl_pairs_for_an_equivariant_backbone(base_size: int) -> None:
    """Eq. 5 = Eq. 7: H-SSL on one image gives the same positive-pair embeddings as A-SSL
    on the image rotated by the sampled g1, g2 with the same g0 (exact C4 backbone)."""
    torch.manual_seed(0)
    kwargs = {"backbone": "test_c4", "base_size": base_size, **SMALL_HEAD}
    hssl, assl = HSSL(**kwargs), ASSL(**kwargs)
    assl.load_state_dict(hssl.state_dict())
    x = torch.randn(12, 3, 9, 9)
    h_spec = recording(hssl)
    h1, h2, _ = hssl.bundle_pair([x])
    (_, pairs) = h_spec.log[0]
    assert (pairs.shift1 != pairs.shift2).any()  # the pairs differ, so the check has teeth
    recording(assl, fixed_base=pairs.base)
    views = [rotate_each(x, pairs.shift1), rotate_each(x, pairs.shift2)]
    a1, a2, _ = assl.bundle_pair([*views, x])
    torch.testing.assert_close(h1, a1, rtol=0, atol=1e-6)
    torch.testing.assert_close(h2, a2, rtol=0, atol=1e-6)
    # Same for the projected embeddings the loss sees (train-mode BN: same batches in).
    torch.testing.assert_close(hssl.projector(h1), assl.projector(a1), rtol=0, atol=1e-5)
    torch.testing.assert_close(hssl.projector(h2), assl.projector(a2), rtol=0, atol=1e-5)
