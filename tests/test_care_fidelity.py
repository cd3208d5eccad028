"""CARE's STL10 and ImageNet-100 settings as the paper and the authors' code have them.

Expected values come from Gupta et al., "Structuring Representation Geometry with
Rotationally Equivariant Contrastive Learning" (CARE), arXiv:2306.13924, App. E.3, and where
it is silent from the authors' code (github.com/Sharut/CARE, commit 28718be): the numbers in
each test are copied from the line of code quoted next to it, never from our own modules.
Transforms are read off what the configs build, so a config and its comment cannot drift.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torchvision.transforms import v2

import tests.methods_testing  # noqa: F401  (registers the tiny_cnn backbone)
from ssl_geom.augment import GROUP_VIEWS, PAIR_KINDS
from ssl_geom.cli import build_cli
from ssl_geom.data import ImageNet100DataModule, STL10DataModule
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.methods import CARE
from tests.conftest import quiet_trainer

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
IMAGENET100_CONFIGS = (
    "simclr_imagenet100.yaml",
    "care_simclr_imagenet100.yaml",
    "mocov2_imagenet100.yaml",
    "care_mocov2_imagenet100.yaml",
)
STL10_CONFIGS = ("simclr_stl10.yaml", "care_simclr_stl10.yaml")


def _config(name: str) -> dict:
    return yaml.safe_load((EXPERIMENTS / name).read_text())


def _datamodule(config: dict, **overrides):
    """The DataModule a config builds (no files are read before ``setup``)."""
    module, _, cls = config["data"]["class_path"].rpartition(".")
    kwargs = {**config["data"]["init_args"], "num_workers": 0, **overrides}
    return getattr(importlib.import_module(module), cls)(**kwargs)


def _flat(ops) -> list:
    """Ops of a Compose, with each ``RandomApply`` kept and its content listed after it."""
    out = []
    for op in getattr(ops, "transforms", ops):
        out.append(op)
        if isinstance(op, v2.RandomApply):
            out += list(op.transforms)
    return out


def _one(ops: list, kind: type):
    found = [op for op in ops if type(op) is kind]
    assert len(found) == 1, f"expected one {kind.__name__} in {ops}"
    return found[0]


def _applied_with(ops: list, inner: type) -> float:
    """``p`` of the RandomApply wrapping the op of type ``inner``."""
    (apply,) = [o for o in ops if isinstance(o, v2.RandomApply) and type(o.transforms[0]) is inner]
    return apply.p


def _assert_simclr_colour(ops: list) -> None:
    """CARE code (both presets): RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), i.e.
    factors 1 -+ 0.4 and hue -+ 0.1, then RandomGrayscale(p=0.2)."""
    jitter = _one(ops, v2.ColorJitter)
    for attr in ("brightness", "contrast", "saturation"):
        assert getattr(jitter, attr) == pytest.approx((0.6, 1.4))
    assert jitter.hue == pytest.approx((-0.1, 0.1))
    assert _applied_with(ops, v2.ColorJitter) == 0.8
    assert _one(ops, v2.RandomGrayscale).p == 0.2


# ----------------------------------------------------------------------------- STL10 at 32 px
@pytest.fixture(scope="module")
def stl10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_dataset("stl10", tmp_path_factory.mktemp("stl10"), n_train=8, n_test=8)


def test_stl10_at_image_size_32_gives_32px_views_originals_and_eval_images(
    stl10_root: Path,
) -> None:
    dm = STL10DataModule(
        root=str(stl10_root), image_size=32, batch_size=4, num_workers=0, include_original=True
    )
    views, _ = next(iter(dm.train_dataloader()))
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 3  # two views + original
    x, _ = next(iter(dm.val_dataloader()))
    assert tuple(x.shape) == (4, 3, 32, 32)
    # Independent check that evaluation resizes the whole image (CARE code: Resize(32)), not a
    # crop: the test binary is column-major 3 x 96 x 96 uint8 (the STL10 format), so read it
    # by hand, shrink it with torch's antialiased bilinear interpolation and normalise.
    raw = np.fromfile(stl10_root / "stl10_binary" / "test_X.bin", dtype=np.uint8)
    stored = torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())[:4]
    small = F.interpolate(
        stored.float(), size=(32, 32), mode="bilinear", antialias=True, align_corners=False
    )
    mean = torch.tensor(STL10DataModule.mean).view(1, 3, 1, 1)
    std = torch.tensor(STL10DataModule.std).view(1, 3, 1, 1)
    expected = (small.round().clamp(0, 255) / 255 - mean) / std
    # torchvision resizes uint8 with fixed-point weights and rounds: within one grey level
    # (a crop or a different filter is off by tens of levels).
    torch.testing.assert_close(x, expected, atol=1.01 / 255 / min(STL10DataModule.std), rtol=0)


def test_stl10_default_keeps_the_stored_96px_images(stl10_root: Path) -> None:
    dm = STL10DataModule(root=str(stl10_root), batch_size=4, num_workers=0)
    x, _ = next(iter(dm.val_dataloader()))
    assert tuple(x.shape) == (4, 3, 96, 96)
    assert not [op for op in dm.eval_transform().transforms if isinstance(op, v2.Resize)]


@pytest.mark.parametrize("bad", [4, 32.0])
def test_stl10_refuses_a_bad_image_size_at_construction(bad) -> None:
    with pytest.raises(ValueError, match=rf"image_size must be an int >= 8.*got {bad!r}"):
        STL10DataModule(image_size=bad)


@pytest.mark.parametrize("name", STL10_CONFIGS)
def test_stl10_configs_train_at_32px_with_simclr_cifar_augmentations(name: str) -> None:
    dm = _datamodule(_config(name))
    ops = _flat(dm.view_transform())
    crop = _one(ops, v2.RandomResizedCrop)
    # CARE code, dataset.py: transforms.RandomResizedCrop(32), torchvision's default scale.
    assert tuple(crop.size) == (32, 32) and tuple(crop.scale) == (0.08, 1.0)
    _assert_simclr_colour(ops)
    assert _one(ops, v2.RandomHorizontalFlip).p == 0.5
    # Paper: "the same set of augmentations as in SimCLR", which has no blur at 32 px.
    assert not [op for op in ops if isinstance(op, v2.GaussianBlur)]
    resize = _one(_flat(dm.eval_transform()), v2.Resize)
    assert tuple(resize.size) == (32, 32)


# ----------------------------------------------------------------------------- MoCo-v2 preset
@pytest.mark.parametrize("name", IMAGENET100_CONFIGS)
def test_imagenet100_configs_use_the_mocov2_views_of_the_care_code(name: str) -> None:
    ops = _flat(_datamodule(_config(name)).view_transform())
    # CARE code, imagenet100/main.py: RandomResizedCrop(224, scale=(0.2, 1.)),
    # RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), RandomGrayscale(p=0.2),
    # RandomApply([TorchGaussianBlur(kernel_size=5, sigma=[.1, 2.])], p=0.5) (--kernel-size
    # default 5), RandomHorizontalFlip().
    crop = _one(ops, v2.RandomResizedCrop)
    assert tuple(crop.size) == (224, 224) and tuple(crop.scale) == (0.2, 1.0)
    _assert_simclr_colour(ops)
    blur = _one(ops, v2.GaussianBlur)
    assert tuple(blur.kernel_size) == (5, 5)
    assert tuple(blur.sigma) == pytest.approx((0.1, 2.0))
    assert _applied_with(ops, v2.GaussianBlur) == 0.5
    assert _one(ops, v2.RandomHorizontalFlip).p == 0.5


def test_care_simclr_imagenet100_pair_is_the_codes_input_transforms() -> None:
    # CARE code, imagenet100/main.py, input_transforms: ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8,
    # RandomGrayscale(p=0.2), blur kernel 5 p=0.5, RandomHorizontalFlip(); no crop ("resizing
    # has already been done": the originals are Resize(256) + CenterCrop(224)).
    config = _config("care_simclr_imagenet100.yaml")
    dm = _datamodule(config)
    kind = config["model"]["init_args"]["equivariance_views"]
    ops = _flat(dm.augmentation.same_params(kind).ops)
    assert [type(op) for op in ops if not isinstance(op, v2.RandomApply)] == [
        v2.RandomHorizontalFlip,
        v2.ColorJitter,
        v2.RandomGrayscale,
        v2.GaussianBlur,
    ]
    assert _one(ops, v2.ColorJitter).hue == pytest.approx((-0.1, 0.1))
    assert tuple(_one(ops, v2.GaussianBlur).kernel_size) == (5, 5)
    base = _flat(dm.eval_transform())
    assert tuple(_one(base, v2.Resize).size) == (256,)
    assert tuple(_one(base, v2.CenterCrop).size) == (224, 224)


# ----------------------------------------------------------------------------- photometric pairs
def _bright_pixel_positions(kind: str, draws: int = 40) -> tuple[set, int]:
    """Where a single white pixel on black ends up under ``draws`` calls of the ``kind`` pair.

    ImageNet-100's DataModule at 32 px with the MoCo-v2 preset: every photometric op,
    including the 5x5 blur, on a small image. Returns the positions of the brightest pixel
    (summed over channels, after un-normalising) and how many calls changed any value.
    """
    dm = ImageNet100DataModule(image_size=32, strength="mocov2", num_workers=0)
    t = dm.augmentation.same_params(kind)
    mean = torch.tensor(dm.mean).view(1, 3, 1, 1)
    std = torch.tensor(dm.std).view(1, 3, 1, 1)
    image = torch.zeros(2, 3, 32, 32)
    image[:, :, 5, 20] = 1.0  # off both axes of symmetry: any flip or shift moves it
    batch = (image - mean) / std
    positions, changed = set(), 0
    for seed in range(draws):
        torch.manual_seed(seed)
        out = (t(batch) * std + mean).sum(dim=1)
        flat = out.flatten(1).argmax(dim=1)
        positions |= {(int(i) // 32, int(i) % 32) for i in flat}
        changed += not torch.allclose(out, image.sum(dim=1), atol=1e-4)
    return positions, changed


def test_photometric_pair_never_moves_a_pixel() -> None:
    positions, changed = _bright_pixel_positions("photometric")
    assert positions == {(5, 20)}
    assert changed > 0  # the pair really changes pixel values


def test_photometric_flip_pair_only_mirrors() -> None:
    positions, _ = _bright_pixel_positions("photometric_flip")
    # Column 20 of 32 mirrors to 31 - 20 = 11; 40 fair flips miss one side with p = 2^-39.
    assert positions == {(5, 20), (5, 11)}


def test_pair_kinds_include_every_group_view() -> None:
    assert set(GROUP_VIEWS) <= set(PAIR_KINDS)


def test_unknown_pair_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'affine'.*simclr.*photometric.*photometric_flip"):
        STL10DataModule().augmentation.same_params("affine")


# ----------------------------------------------------------------------------- CARE arguments
TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


class RecordingPair:
    """An identity same-parameters transform that records every batch it is given."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.inputs.append(batch.clone())
        return batch


def test_equivariance_batch_size_uses_only_the_first_originals() -> None:
    # CARE code, imagenet100/main.py: images2 = images[2][:equivariant_batch_size/world_size],
    # split into chunks of equivariant_batch_size // equiv_splits_per_gpu = 128 // 4 = 32.
    spy = RecordingPair()
    model = CARE(
        n_split=4, equivariance_batch_size=128, batch_size=256, same_params_transform=spy, **TINY
    )
    torch.manual_seed(0)
    views = [torch.randn(256, 3, 4, 4) for _ in range(3)]  # two views + the originals
    model.ssl_step(views, 0)
    assert [len(x) for x in spy.inputs] == [32] * 8  # 4 chunks, two draws each
    firsts = torch.cat(spy.inputs[0::2])  # the first draw of each chunk, in chunk order
    torch.testing.assert_close(firsts, views[2][:128], rtol=0, atol=0)


def test_equivariance_batch_size_is_global_and_split_over_processes() -> None:
    model = CARE(n_split=4, equivariance_batch_size=128, **TINY)
    model._trainer = SimpleNamespace(world_size=2)  # the code: 128 / world_size per GPU
    assert model.equivariance_rows(256) == 64
    model._trainer = SimpleNamespace(world_size=3)  # 3 processes cannot hold 4 whole chunks
    with pytest.raises(
        ValueError, match=r"n_split=4 chunks .* world_size=3 .*divides 4 \(1, 2, 4\)"
    ):
        model.equivariance_rows(256)
    model._trainer = SimpleNamespace(world_size=1)
    with pytest.raises(ValueError, match=r"needs 128 originals per process.*batch has 64"):
        model.equivariance_rows(64)


def test_equivariance_batch_size_none_keeps_the_whole_batch() -> None:
    spy = RecordingPair()
    model = CARE(n_split=2, same_params_transform=spy, **TINY)
    model.ssl_step([torch.randn(8, 3, 4, 4) for _ in range(3)], 0)
    assert sum(len(x) for x in spy.inputs[0::2]) == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_split": 3, "equivariance_batch_size": 128}, r"equivariance_batch_size=128 must be"),
        ({"n_split": 4, "equivariance_batch_size": 0}, r"equivariance_batch_size=0 must be"),
        (
            {"n_split": 4, "equivariance_batch_size": 128, "batch_size": 64},
            r"equivariance_batch_size=128 exceeds the batch size 64",
        ),
        ({"equivariance_views": "affine"}, r"unknown equivariance_views 'affine'.*photometric"),
        (
            {"equivariance_views": "photometric", "same_params_transform": RecordingPair()},
            r"'photometric'.*plain transform.*datamodule\.augmentation",
        ),
    ],
)
def test_bad_equivariance_settings_fail_at_construction(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        CARE(**{**TINY, **kwargs})


def test_n_split_needs_to_divide_only_the_equivariance_batch() -> None:
    # 96 / 8 = 12 per chunk, while 8 does not divide a batch of 100: allowed, as in the code.
    model = CARE(n_split=8, equivariance_batch_size=96, batch_size=100, **TINY)
    assert model.equivariance_rows(100) == 96


def test_photometric_pair_is_drawn_from_the_datamodules_augmentation_and_trains(
    stl10_root: Path,
) -> None:
    dm = STL10DataModule(
        root=str(stl10_root), image_size=32, batch_size=8, num_workers=0, include_original=True
    )
    model = CARE(
        n_split=2,
        equivariance_batch_size=4,
        equivariance_views="photometric",
        batch_size=8,
        same_params_transform=dm.augmentation,
        **TINY,
    )
    trainer = quiet_trainer(max_steps=1)
    trainer.fit(model, dm)
    ops = _flat(model._same_params.ops)
    assert not [op for op in ops if isinstance(op, (v2.RandomResizedCrop, v2.RandomHorizontalFlip))]
    assert _one(ops, v2.RandomGrayscale).p == 0.2
    assert torch.isfinite(trainer.callback_metrics["train/equivariance"])


# ----------------------------------------------------------------------------- built models
def _built(name: str, root: Path, tmp_path: Path):
    """Model and DataModule as the CLI builds them from ``name`` (fake data, CPU, batch 8;
    32 for CARE on ImageNet-100, whose n_split 16 chunks the equivariance batch)."""
    care_imagenet = name.startswith("care_") and name.endswith("imagenet100.yaml")
    batch = 32 if care_imagenet else 8
    args = [
        "--config",
        str(EXPERIMENTS / name),
        f"--data.init_args.root={root}",
        "--data.init_args.num_workers=0",
        f"--data.init_args.batch_size={batch}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    if care_imagenet:
        args.append(f"--model.init_args.equivariance_batch_size={batch}")
    cli = build_cli(args, run=False)
    return cli.model, cli.trainer


def _layers(projector: torch.nn.Module) -> list[tuple]:
    """``(type, in, out, bias)`` for Linear layers, ``(type,)`` for the others, in order."""
    out = []
    for m in projector.modules():
        if isinstance(m, torch.nn.Linear):
            out.append(("Linear", m.in_features, m.out_features, m.bias is not None))
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.ReLU)):
            out.append((type(m).__name__,))
    return out


@pytest.mark.parametrize("name", STL10_CONFIGS)
def test_stl10_configs_build_the_codes_stem_and_projector(
    name: str, stl10_root: Path, tmp_path: Path
) -> None:
    model, _ = _built(name, stl10_root, tmp_path)
    # CARE code, model.py: conv1 = Conv2d(3, 64, kernel_size=3, stride=1, padding=1), the
    # max-pool dropped; g = Linear(2048, 512, bias=False), BatchNorm1d(512), ReLU,
    # Linear(512, feature_dim=128, bias=True).
    conv1 = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert not [m for m in model.backbone.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert _layers(model.projector) == [
        ("Linear", 2048, 512, False),
        ("BatchNorm1d",),
        ("ReLU",),
        ("Linear", 512, 128, True),
    ]
    # CARE code, utils.get_optimizer: torch SGD gets lr and weight_decay only -> momentum 0,
    # weight decay on model.parameters() (every parameter).
    hp = model.hparams
    assert (hp.optimizer, hp.lr, hp.momentum, hp.weight_decay) == ("sgd", 0.06, 0.0, 5e-4)
    assert hp.exclude_bias_norm_from_wd is False
    assert hp.warmup_steps == 10  # paper: "10 warmup steps"


@pytest.fixture(scope="module")
def imagenet100_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imagenet100")
    return write_fake_dataset("imagenet100", root, n_train=8, n_test=8)


@pytest.mark.parametrize("name", ("simclr_imagenet100.yaml", "care_simclr_imagenet100.yaml"))
def test_imagenet100_simclr_configs_build_the_codes_head_and_optimiser(
    name: str, imagenet100_root: Path, tmp_path: Path
) -> None:
    model, trainer = _built(name, imagenet100_root, tmp_path)
    # CARE code, builder.py: fc = Sequential(Linear(2048, 2048), ReLU(), Linear(2048, 128)).
    assert _layers(model.projector) == [
        ("Linear", 2048, 2048, True),
        ("ReLU",),
        ("Linear", 2048, 128, True),
    ]
    hp = model.hparams
    # loss.py divides by model.T = --moco-t 0.2; main.py: SGD(model.parameters(), lr,
    # momentum=0.9, weight_decay=1e-4), cosine per epoch without warm-up; lr: paper 0.8 @ 512.
    assert hp.temperature == 0.2
    assert (hp.optimizer, hp.lr, hp.momentum, hp.weight_decay) == ("sgd", 0.8, 0.9, 1e-4)
    assert hp.exclude_bias_norm_from_wd is False
    assert (hp.lr_schedule, hp.warmup_epochs, hp.warmup_steps) == ("warmup_cosine", 0, None)
    # main.py converts the equivariant model (not the SimCLR baseline) to SyncBatchNorm.
    assert (trainer._accelerator_connector._layer_sync is not None) == name.startswith("care_")


def test_device_views_need_stl10_at_its_stored_size() -> None:
    # Device augmentation crops the stored images and ships the stored image as the original,
    # so it is only right when no loader-side resize is needed (96 px).
    assert STL10DataModule(augment_on="device").augment_on == "device"
    with pytest.raises(ValueError, match=r"augment_on='device' needs images stored at one size"):
        STL10DataModule(image_size=32, augment_on="device")
