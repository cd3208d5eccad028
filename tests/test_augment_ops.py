"""Augmentation ops (``ssl_geom.augment``): one draw per batched call (every op), per-sample
views, presets, groups."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from ssl_geom.augment import (
    RandomRot90,
    SameParamsTransform,
    group_ops,
    simclr_ops,
    simclr_params,
    view_pipeline,
)
from ssl_geom.data.datasets import SeededViewSampler, SSLViewDataset
from ssl_geom.data.sources import ArraySource


def _all_ops() -> list[tuple[str, v2.Transform]]:
    """Every random op any pipeline uses: SimCLR at 28 (1 ch), 32 and 96 px (blur), groups."""
    ops = []
    for size, channels, strength in ((28, 1, None), (32, 3, None), (32, 3, "small"), (96, 3, None)):
        for op in simclr_ops(size, channels, simclr_params(size, strength)):
            ops.append((f"{size}px/{channels}ch/{strength}/{op.__class__.__name__}", op))
    ops += [(f"group/{kind}", group_ops(kind)[0]) for kind in ("rotation", "translation", "scale")]
    return ops


def _channels(op_id: str) -> int:
    return 1 if "/1ch/" in op_id else 3


def _size(op_id: str) -> int:
    return int(op_id.split("px")[0]) if "px" in op_id else 32


@pytest.mark.parametrize(("op_id", "op"), _all_ops(), ids=[i for i, _ in _all_ops()])
def test_one_draw_is_applied_to_the_whole_batch(op_id: str, op: v2.Transform) -> None:
    # Independent check: with the same RNG seed, transforming each sample alone (a batch of 1)
    # must reproduce its row of the batched result. If the op drew parameters per sample, row
    # i of the batch would use the i-th draw, while the single-sample call uses the first.
    c, size = _channels(op_id), _size(op_id)
    t = SameParamsTransform([op], mean=[0.5] * c, std=[0.25] * c)
    batch = (torch.rand(6, c, size, size) - 0.5) / 0.25
    changed = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out = t(batch)
        for i in range(len(batch)):
            torch.manual_seed(seed)
            torch.testing.assert_close(t(batch[i : i + 1])[0], out[i], atol=1e-5, rtol=0)
        changed += not torch.allclose(out, batch, atol=1e-4)
    # The op is really random and active: some calls change the batch (RandomApply p=0.5 or
    # flip p=0.5 leave 12 calls unchanged with probability 2^-12).
    assert changed > 0, f"{op_id} never changed the batch in 12 calls"


@pytest.mark.parametrize(("op_id", "op"), _all_ops(), ids=[i for i, _ in _all_ops()])
def test_identical_images_stay_identical_under_one_call(op_id: str, op: v2.Transform) -> None:
    c, size = _channels(op_id), _size(op_id)
    t = SameParamsTransform([op], mean=[0.0] * c, std=[1.0] * c)
    batch = torch.rand(1, c, size, size).repeat(5, 1, 1, 1)
    for seed in range(8):
        torch.manual_seed(seed)
        out = t(batch)
        assert all(torch.equal(out[0], out[i]) for i in range(1, 5)), op_id


def test_same_params_transform_redraws_on_each_call() -> None:
    ops = simclr_ops(32, 3, simclr_params(32))
    t = SameParamsTransform(ops, mean=[0.5] * 3, std=[0.25] * 3)
    batch = torch.randn(4, 3, 32, 32)
    torch.manual_seed(0)
    outputs = [t(batch) for _ in range(5)]
    assert all(not torch.allclose(outputs[0], o) for o in outputs[1:])


def test_same_params_transform_rejects_wrong_channel_count() -> None:
    t = SameParamsTransform(group_ops("rotation"), mean=[0.5] * 3, std=[0.25] * 3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\(4, 1, 8, 8\)"):
        t(torch.zeros(4, 1, 8, 8))


def test_simclr_views_are_drawn_per_sample() -> None:
    # 8 copies of one image: if a loader applied one draw per batch, all views would coincide.
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8).numpy().repeat(8, axis=0)
    source = ArraySource(image, [torch.zeros(8, dtype=torch.long).numpy()])
    pipeline = view_pipeline(simclr_ops(32, 3, simclr_params(32)), [0.5] * 3, [0.25] * 3)
    dataset = SSLViewDataset(source, pipeline, n_views=2)
    items = [dataset[key] for key in SeededViewSampler(8, seed=0)]
    first_views = torch.stack([views[0] for views, _ in items])
    second_views = torch.stack([views[1] for views, _ in items])
    for i in range(8):
        assert not torch.allclose(first_views[i], second_views[i])
        for j in range(i):
            assert not torch.allclose(first_views[i], first_views[j])


def _jitter(ops: list[v2.Transform]) -> v2.ColorJitter:
    (apply,) = [op for op in ops if isinstance(op, v2.RandomApply)][:1]
    return apply.transforms[0]


@pytest.mark.parametrize(
    ("strength", "crop", "s", "flip"),
    # Geometry paper, Table 2: crop scale, colour-jitter s, horizontal flip.
    [
        ("large", (0.08, 1.0), 0.5, True),
        ("moderate", (0.5, 1.0), 0.25, True),
        ("small", (0.9, 1.0), 0.05, False),
    ],
)
def test_strength_presets_match_table_2(strength, crop, s, flip) -> None:
    ops = simclr_ops(32, 3, simclr_params(32, strength))
    crop_op = ops[0]
    assert isinstance(crop_op, v2.RandomResizedCrop)
    assert tuple(crop_op.scale) == crop
    assert any(isinstance(op, v2.RandomHorizontalFlip) for op in ops) == flip
    jitter = _jitter(ops)
    # brightness/contrast/saturation 0.8s and hue 0.2s, as ranges around 1 (hue around 0).
    for name in ("brightness", "contrast", "saturation"):
        assert getattr(jitter, name) == pytest.approx((1 - 0.8 * s, 1 + 0.8 * s))
    assert jitter.hue == pytest.approx((-0.2 * s, 0.2 * s))
    apply = next(op for op in ops if isinstance(op, v2.RandomApply))
    assert apply.p == 0.8
    gray = next(op for op in ops if isinstance(op, v2.RandomGrayscale))
    assert gray.p == 0.2
    assert not any(isinstance(op, v2.GaussianBlur) for op in ops)


def test_blur_only_at_imagenet_like_sizes_and_grayscale_pipeline_for_one_channel() -> None:
    def names(ops):
        flat = []
        for op in ops:
            flat += [type(t).__name__ for t in getattr(op, "transforms", [op])]
        return flat

    assert "GaussianBlur" in names(simclr_ops(96, 3, simclr_params(96)))
    assert "GaussianBlur" not in names(simclr_ops(64, 3, simclr_params(64)))
    mnist = simclr_ops(28, 1, simclr_params(28, flip_allowed=False))
    assert "RandomGrayscale" not in names(mnist)
    assert "RandomHorizontalFlip" not in names(mnist)
    jitter = _jitter(mnist)
    assert jitter.saturation is None and jitter.hue is None


def test_unknown_strength_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'huge'.*large.*moderate.*small"):
        simclr_params(32, "huge")


def test_rotation_views_are_exact_quarter_turns_and_use_all_four() -> None:
    x = torch.rand(2, 3, 16, 16)
    seen = set()
    op = RandomRot90()
    for seed in range(40):
        torch.manual_seed(seed)
        out = op(x)
        matches = [k for k in range(4) if torch.equal(out, torch.rot90(x, k, dims=(-2, -1)))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}


def test_translation_views_are_pixel_shifts_within_20_percent() -> None:
    # Brute force over every integer shift: the output must equal x shifted by (dy, dx) with a
    # zero border, |dy|, |dx| <= 0.2 * 20 = 4 pixels.
    x = torch.rand(1, 1, 20, 20) + 0.1  # strictly positive, so the zero border is identifiable
    (op,) = group_ops("translation")
    shifts = set()
    for seed in range(30):
        torch.manual_seed(seed)
        out = op(x)
        found = None
        for dy in range(-10, 11):
            for dx in range(-10, 11):
                shifted = torch.zeros_like(x)
                ys, yd = slice(max(0, -dy), 20 - max(0, dy)), slice(max(0, dy), 20 - max(0, -dy))
                xs, xd = slice(max(0, -dx), 20 - max(0, dx)), slice(max(0, dx), 20 - max(0, -dx))
                shifted[..., yd, xd] = x[..., ys, xs]
                if torch.equal(out, shifted):
                    found = (dy, dx)
        assert found is not None
        assert abs(found[0]) <= 4 and abs(found[1]) <= 4
        shifts.add(found)
    assert len(shifts) > 5


def test_scale_views_shrink_about_the_centre_to_057_to_1() -> None:
    # An all-ones image downscaled by s about the centre is a centred box of side ~s*H on a
    # zero background; measure the side from the non-zero rows/columns.
    x = torch.ones(1, 1, 64, 64)
    (op,) = group_ops("scale")
    sides = []
    for seed in range(40):
        torch.manual_seed(seed)
        out = op(x)[0, 0]
        rows = (out > 0.5).any(dim=1).nonzero().flatten()
        cols = (out > 0.5).any(dim=0).nonzero().flatten()
        side = (rows.max() - rows.min() + 1).item() / 64
        assert side == pytest.approx((cols.max() - cols.min() + 1).item() / 64, abs=2 / 64)
        centre = (rows.max() + rows.min()).item() / 2
        assert centre == pytest.approx(31.5, abs=1.0)
        sides.append(side)
    assert min(sides) >= 0.57 - 2 / 64 and max(sides) <= 1.0
    assert min(sides) < 0.7 and max(sides) > 0.9


def test_unknown_group_view_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'shear'.*translation.*rotation.*scale"):
        group_ops("shear")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("op_id", "op"), _all_ops(), ids=[i for i, _ in _all_ops()])
def test_one_draw_per_batch_on_gpu_matches_cpu(op_id: str, op: v2.Transform) -> None:
    # Same seed, same parameters: the GPU batch result equals the CPU one (up to float error).
    c, size = _channels(op_id), _size(op_id)
    t = SameParamsTransform([op], mean=[0.5] * c, std=[0.25] * c)
    batch = (torch.rand(6, c, size, size) - 0.5) / 0.25
    for seed in range(4):
        torch.manual_seed(seed)
        cpu = t(batch)
        torch.manual_seed(seed)
        gpu = t(batch.cuda())
        assert gpu.is_cuda
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=0)
