"""Device SimCLR augmentation: same ops and parameter distributions as the CPU pipeline.

References are torchvision itself: its functional ops on the same parameters (pixel equality)
and its own samplers (``v2.RandomResizedCrop.make_params``, ``v2.ColorJitter`` ranges) for the
distributions, compared by two-sample Kolmogorov-Smirnov tests.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import lightning as L
import pytest
import torch
from scipy.stats import binomtest, ks_2samp
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ssl_geom.augment import DeviceSameParams, DeviceSimCLRAugment, SimCLRParams, simclr_params
from ssl_geom.data import CIFAR10DataModule
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.methods import CARE
from tests.conftest import quiet_trainer

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def make(size: int = 32, channels: int = 3, seed: int = 0, **kw) -> DeviceSimCLRAugment:
    params = simclr_params(size) if not kw else SimCLRParams(**kw)
    return DeviceSimCLRAugment(size, channels, params, MEAN[:channels], STD[:channels], seed)


def test_resized_crop_equals_torchvision_resized_crop_per_row() -> None:
    aug = make()
    images = torch.rand(4, 3, 32, 32)
    boxes = torch.tensor([[3.0, 5, 20, 17], [0, 0, 32, 32], [10, 2, 7, 30], [1, 1, 31, 31]])
    out = aug.resized_crop(images, boxes)
    for row, (left, top, w, h) in enumerate(boxes.int().tolist()):
        ref = TF.resized_crop(images[row], top, left, h, w, [32, 32], antialias=True)
        torch.testing.assert_close(out[row], ref, atol=1e-5, rtol=0)


def test_color_jitter_applies_each_rows_own_order_like_torchvision() -> None:
    aug = make()
    orders = torch.tensor(list(itertools.permutations(range(4))))  # all 24 orders
    images = torch.rand(len(orders), 3, 8, 8)
    factors = torch.tensor([1.3, 0.6, 1.4, 0.05]).expand(len(orders), 4)
    out = aug.color_jitter(images, factors, orders)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for row, order in enumerate(orders.tolist()):
        ref = images[row]
        for op in order:
            ref = ops[op](ref, float(factors[row, op]))
        torch.testing.assert_close(out[row], ref, atol=1e-5, rtol=0)


def test_blur_equals_torchvision_gaussian_blur_and_sigma_zero_is_identity() -> None:
    aug = make(96, blur_kernel=9)
    images = torch.rand(2, 3, 96, 96)
    out = aug.blur(images, torch.tensor([1.3, 0.0]))
    torch.testing.assert_close(out[0], TF.gaussian_blur(images[0], [9, 9], [1.3, 1.3]))
    torch.testing.assert_close(out[1], images[1])


def test_crop_boxes_follow_torchvision_distribution() -> None:
    """KS two-sample tests against v2.RandomResizedCrop.make_params (4,000 draws each).

    Both samplers are seeded, so the test is deterministic; under equal distributions each
    p-value would be uniform, and 1e-3 is the rejection level (a wrong scale range, (0.2, 1),
    gives p = 2e-39 on the areas).
    """
    n = 4000
    aug = make()
    ours = aug.sample_crop(n, 32, 32, aug.generator(torch.device("cpu")))
    torch.manual_seed(0)
    ref_op = v2.RandomResizedCrop(32, scale=(0.08, 1.0))
    image = torch.zeros(3, 32, 32)
    ref = torch.tensor(
        [
            [p["left"], p["top"], p["width"], p["height"]]
            for p in (ref_op.make_params([image]) for _ in range(n))
        ],
        dtype=torch.float32,
    )
    for name, f in {
        "area": lambda b: b[:, 2] * b[:, 3],
        "log aspect": lambda b: torch.log(b[:, 2] / b[:, 3]),
        "left": lambda b: b[:, 0],
        "top": lambda b: b[:, 1],
    }.items():
        assert ks_2samp(f(ours).numpy(), f(ref).numpy()).pvalue > 1e-3, name
    inside = (ours[:, :2] >= 0).all() and (ours[:, :2] + ours[:, 2:] <= 32).all()
    assert inside and (ours[:, 2:] >= 1).all()


def test_coin_probabilities_and_jitter_ranges_match_the_cpu_pipeline() -> None:
    """Flip 1/2, grayscale 0.2, jitter 0.8 (binomial tests), factors uniform on v2's ranges."""
    n = 4000
    aug = make()
    params = aug.sample(n, 32, 32, torch.device("cpu"))
    jittered = (params.factors != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(dim=1)
    for coins, p in ((params.flip, 0.5), (params.gray, 0.2), (jittered, 0.8)):
        assert binomtest(int(coins.sum()), n, p).pvalue > 1e-3
    s = simclr_params(32).jitter_strength  # CIFAR: 0.5 -> b/c/s in [0.6, 1.4], hue in +-0.1
    ranges = [(1 - 0.8 * s, 1 + 0.8 * s)] * 3 + [(-0.2 * s, 0.2 * s)]
    gen = torch.Generator().manual_seed(1)
    for col, (lo, hi) in enumerate(ranges):
        drawn = params.factors[jittered, col]
        uniform = torch.rand(2000, generator=gen) * (hi - lo) + lo
        assert ks_2samp(drawn.numpy(), uniform.numpy()).pvalue > 1e-3
    # Every one of the 24 orders appears, none more than twice its fair share.
    counts = torch.unique(params.order, dim=0, return_counts=True)[1]
    assert len(counts) == 24 and counts.max() < 2 * n / 24


def test_two_rows_of_one_batch_get_different_views_and_groups_share_one() -> None:
    aug = make()
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    batch = image.expand(8, -1, -1, -1).contiguous()
    per_sample = aug(batch)
    assert not torch.allclose(per_sample[0], per_sample[1])
    boxes = aug.draw(8, batch.float(), None).box
    assert len(torch.unique(boxes, dim=0)) > 1
    grouped = aug(batch, n_groups=2)
    for group in grouped.split(4):
        torch.testing.assert_close(group, group[:1].expand_as(group))
    assert not torch.allclose(grouped[0], grouped[4])


def test_output_is_normalised_and_seed_reproducible() -> None:
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out_a, out_b = make(seed=3)(images), make(seed=3)(images)
    torch.testing.assert_close(out_a, out_b)
    identity = make(crop_scale=(1.0, 1.0), jitter_p=0.0, grayscale_p=0.0, flip=False)
    expected = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(identity(images), expected, atol=1e-5, rtol=0)


def test_bad_input_is_refused_with_the_expected_shape() -> None:
    aug = make()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        aug(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="n_groups=3"):
        aug(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), n_groups=3)
    with pytest.raises(ValueError, match="mean and std"):
        DeviceSimCLRAugment(32, 3, simclr_params(32), (0.5,), (0.2,))


def test_device_pair_draws_all_of_the_first_view_then_the_second() -> None:
    # CARE's seeded device runs depend on this order (one batched call per view).
    x = (torch.rand(8, 3, 32, 32) - 0.5) / 0.25
    first, second = DeviceSameParams(make(seed=5)).pair(x, n_groups=4)
    reference = make(seed=5)
    torch.testing.assert_close(first, reference.same_params(x, 4), rtol=0, atol=0)
    torch.testing.assert_close(second, reference.same_params(x, 4), rtol=0, atol=0)
    # One call on its own is one draw for the whole batch (what the callbacks use).
    torch.testing.assert_close(DeviceSameParams(make(seed=6))(x), make(seed=6).same_params(x))


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_dataset("cifar10", tmp_path_factory.mktemp("c10"), n_train=64, n_test=32)


def _device_views(root: Path) -> CIFAR10DataModule:
    """Batches of 16 uint8 images that become views (plus the original) on the device."""
    return CIFAR10DataModule(
        root=str(root), batch_size=16, num_workers=0, augment_on="device", include_original=True
    )


def test_datamodule_device_option_yields_uint8_then_views_after_transfer(cifar_root) -> None:
    dm = _device_views(cifar_root)
    images, y = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (16, 3, 32, 32) and y.shape == (16,)
    views = dm.augmentation.device_views(images, dm.n_views, dm.include_original)
    assert len(views) == 3 and all(v.shape == (16, 3, 32, 32) for v in views)
    assert not torch.allclose(views[0], views[1])
    eval_x = next(iter(dm.train_eval_dataloader()))[0]  # the original is the eval image
    x_all = torch.cat([b[0] for b in dm.train_eval_dataloader()])
    assert eval_x.dtype == torch.float32
    matches = (views[2][:, None] - x_all[None]).abs().amax(dim=(2, 3, 4)).min(dim=1).values
    assert matches.max() < 1e-5
    assert isinstance(dm.augmentation.same_params(), DeviceSameParams)


class _ResizingCIFAR(CIFAR10DataModule):
    """Like ImageNet-100: a loader-side resize, so images reach the device at varying sizes."""

    def _base_ops(self) -> list[v2.Transform]:
        return [v2.Resize(32)]


@pytest.mark.parametrize(
    ("cls", "kwargs", "pattern"),
    [
        (CIFAR10DataModule, {"augment_on": "gpu"}, "unknown augment_on 'gpu'"),
        (CIFAR10DataModule, {"augment_on": "device", "train_views": "rotation"}, "simclr"),
        (_ResizingCIFAR, {"augment_on": "device"}, "resizes"),
    ],
)
def test_device_option_refuses_what_it_cannot_do_at_construction(cls, kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        cls(root="unused", num_workers=0, **kwargs)


class _Recorder(L.Callback):
    def __init__(self) -> None:
        self.views: list[tuple[torch.dtype, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.views.append((batch[0][0].dtype, len(batch[0])))


def test_care_trains_through_the_trainer_with_device_views(cifar_root) -> None:
    """Lightning calls the DataModule hook: CARE gets 3 float views and one batched call."""
    dm = _device_views(cifar_root)
    model = CARE(
        backbone="hssl_mnist_mlp",
        backbone_kwargs={"in_channels": 3, "image_size": 32},
        n_split=4,
        batch_size=16,
        projector_hidden_dims=[16],
        projector_out_dim=8,
        optimizer="adam",
        lr=1e-3,
        warmup_epochs=0,
        same_params_transform=dm.augmentation,
    )
    recorder = _Recorder()
    trainer = quiet_trainer(max_steps=2, callbacks=[recorder])
    trainer.fit(model, datamodule=dm)
    assert recorder.views == [(torch.float32, 3)] * 2
    x = torch.randn(16, 3, 32, 32)
    same = x[:1].expand(16, -1, -1, -1)
    first, second = model.equivariance_views(same)  # a chunk's identical inputs stay identical
    for chunk in (*first.split(4), *second.split(4)):
        torch.testing.assert_close(chunk, chunk[:1].expand_as(chunk))
    assert not torch.allclose(first[0], first[4])  # a new draw per chunk
    assert not torch.allclose(first[0], second[0])  # and per view


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_views_never_synchronise_and_match_cpu_ops() -> None:
    aug = make()
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device="cuda")
    aug(images)  # first call creates the generator
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = aug(images, n_groups=None)
        aug(images, n_groups=8)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.is_cuda and out.dtype == torch.float32
    params = aug.sample(64, 32, 32, torch.device("cuda"))
    unit = aug.to_unit(images)
    cpu_params = type(params)(*(t.cpu() for t in vars(params).values()))
    torch.testing.assert_close(
        aug.apply(unit, params).cpu(), aug.apply(unit.cpu(), cpu_params), atol=1e-4, rtol=0
    )
