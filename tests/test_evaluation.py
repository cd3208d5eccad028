"""Linear evaluation and kNN of a frozen checkpoint (``ssl_geom.evaluation``), on fixtures.

Real Fashion-MNIST end to end through the CLI: ``tests/test_evaluation_configs.py``.
"""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_geom.backbones import StructuredBackbone, build_backbone, register_backbone
from ssl_geom.data import CIFAR10DataModule, MNISTDataModule
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.evaluation import (
    ClassifierBank,
    LinearEval,
    LinearEvalData,
    evaluate_checkpoint,
    load_backbone,
)
from ssl_geom.methods import DivergedError, SimCLR
from tests.conftest import quiet_trainer

QUIET = {"accelerator": "cpu", "devices": 1, "check_val_every_n_epoch": 1000}


class Flatten(StructuredBackbone):
    """Pixels as channels: ``(B, 1, H, W) -> (B, H*W, 1, 1, 1)``, so features are the images."""

    def __init__(self, in_channels: int = 1, size: int = 28) -> None:
        super().__init__()
        self.out_channels = in_channels * size * size
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.scale * x.flatten(1))[:, :, None, None, None]


register_backbone("test_evaluation_flatten")(Flatten)


def write_separable_mnist(root: Path, n_train: int = 200, n_test: int = 100) -> None:
    """MNIST IDX files where class ``k`` lights pixel block ``k`` (78 pixels at 255) over noise
    in 0..59: linearly separable by construction (``w_k`` = indicator of block ``k`` scores the
    true class >= 78 * 255 and any other <= 78 * 59)."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28 * 28)).astype(np.uint8)
        for i, k in enumerate(labels.tolist()):
            images[i, k * 78 : (k + 1) * 78] = 255
        for kind, array in (("images-idx3", images.reshape(n, 28, 28)), ("labels-idx1", labels)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
            header += struct.pack(f">{array.ndim}i", *array.shape)
            (raw / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake_eval_data")
    write_separable_mnist(root)
    write_fake_dataset("cifar10", root, n_train=20, n_test=20)
    return root


def mnist(root: Path, **kw) -> MNISTDataModule:
    return MNISTDataModule(root=str(root), batch_size=64, num_workers=0, train_views="none", **kw)


def save_state(backbone: torch.nn.Module, path: Path) -> Path:
    torch.save(backbone.state_dict(), path)
    return path


def test_linearly_separable_features_reach_100_percent(fake_root: Path, tmp_path: Path) -> None:
    # The Flatten backbone hands the (normalised) pixels of write_separable_mnist's images to
    # the classifiers: linearly separable by construction (see there).
    checkpoint = save_state(Flatten(), tmp_path / "flatten.pt")
    result = evaluate_checkpoint(
        checkpoint,
        mnist(fake_root),
        max_epochs=30,
        trainer_kwargs=QUIET,
        backbone="test_evaluation_flatten",
        lr=1e-2,
    )
    for i in range(3):
        assert result[f"linear/test_acc_{i}"] == 1.0
    assert result["linear/test_acc"] == 1.0
    assert result["linear/test_acc_std"] == 0.0
    # Cosine neighbours of a template-plus-noise image are its class's images.
    assert result["knn/test_acc"] == 1.0


@pytest.mark.parametrize("readout", ["global_pool", "backbone"])
def test_cached_and_uncached_features_give_the_same_result(
    fake_root: Path, tmp_path: Path, readout: str
) -> None:
    # "backbone" is the H-SSL MNIST readout (a trainable conv): its input maps are cached.
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    results = [
        evaluate_checkpoint(
            checkpoint,
            mnist(fake_root, max_train_samples=128, max_eval_samples=64),
            max_epochs=2,
            cache_features=cache,
            trainer_kwargs=QUIET,
            backbone="hssl_mnist_translation",
            readout=readout,
        )
        for cache in (True, False)
    ]
    assert results[0] == results[1]
    assert set(results[0]) >= {"linear/test_acc", "linear/test_acc_std", "knn/test_acc"}


def test_trainable_readout_is_cached_as_its_input_and_owned_by_each_classifier(
    tmp_path: Path,
) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    pooled = LinearEval(
        checkpoint, backbone="hssl_mnist_translation", num_classes=10, readout="global_pool"
    )
    assert not pooled.trainable_readout
    assert pooled.frozen_features(torch.zeros(2, 1, 28, 28)).shape == (2, 128)
    paper = LinearEval(checkpoint, backbone="hssl_mnist_translation", num_classes=10)
    assert paper.trainable_readout
    assert paper.frozen_features(torch.zeros(2, 1, 28, 28)).shape == (2, 128, 1, 7, 7)
    convs = [readout.conv for readout in paper.classifiers.readouts]
    assert convs[0] is not convs[1]
    assert not torch.equal(next(convs[0].parameters()), next(convs[1].parameters()))


def test_jointly_trained_classifiers_each_get_their_own_gradient() -> None:
    # Head i of a bank equals a bank of one head seeded seed + i, trained alone on the
    # same batches: the summed loss gives each head exactly its own gradient.
    torch.manual_seed(0)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    together, alone = ClassifierBank(8, 3, n=3, seed=5), ClassifierBank(8, 3, n=1, seed=6)
    torch.testing.assert_close(together.weight[1], alone.weight[0])
    for bank in (together, alone):
        optimizer = torch.optim.Adam(bank.parameters(), lr=1e-2, weight_decay=1e-6)
        for _ in range(5):
            loss = bank.losses(x, y).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.testing.assert_close(together.weight[1], alone.weight[0])
    torch.testing.assert_close(together.bias[1], alone.bias[0])
    assert not torch.equal(together.weight[0], together.weight[1])
    # The batched logits are each head's own affine map (an independent computation).
    expected = x @ together.weight[2].T + together.bias[2]
    torch.testing.assert_close(together(x)[2], expected)
    losses = together.losses(x, y)
    torch.testing.assert_close(losses[2], F.cross_entropy(expected, y))


def test_backbone_stays_frozen_and_in_eval_mode(tmp_path: Path) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    model = LinearEval(checkpoint, backbone="hssl_mnist_translation", num_classes=10).train()
    assert not model.backbone.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.classifiers.parameters())


# ---------------------------------------------------------------------- bad input
def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "runs" / "nope.ckpt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        LinearEval(str(missing), backbone="hssl_mnist_translation", num_classes=10)


def test_mismatched_backbone_lists_the_first_keys(tmp_path: Path) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    with pytest.raises(ValueError, match=r"'resnet18_cifar'.*missing: body\.0\.weight") as info:
        LinearEval(str(checkpoint), backbone="resnet18_cifar", num_classes=10)
    assert "unexpected: layers.0.0.weight" in str(info.value)
    # Same architecture, other input channels (as the CLI links from a 3-channel dataset).
    with pytest.raises(ValueError, match=r"shape: layers\.0\.0\.weight"):
        LinearEval(
            str(checkpoint), backbone="hssl_mnist_translation", num_classes=10, in_channels=3
        )


def test_plain_state_dict_needs_a_backbone_name(tmp_path: Path) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    with pytest.raises(ValueError, match="plain state dict"):
        load_backbone(checkpoint)


# How to make a file a linear evaluation reads, said by every refusal of a file.
HOW_TO_SAVE = re.escape("torch.save(backbone.state_dict(), path)")


def test_checkpoint_holding_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"model": build_backbone("hssl_mnist_translation", in_channels=1)}, path)
    with pytest.raises(ValueError, match="weights_only") as refused:
        load_backbone(path, backbone="hssl_mnist_translation")
    assert re.search(f"refusing to load {re.escape(str(path))}.*{HOW_TO_SAVE}", str(refused.value))


def test_a_missing_or_unreadable_checkpoint_is_named_with_how_to_make_one(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(missing))}.*{HOW_TO_SAVE}"):
        load_backbone(missing, backbone="hssl_mnist_translation")
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3: loss 1.2\n")
    with pytest.raises(
        ValueError, match=f"not a checkpoint file: {re.escape(str(text))}.*{HOW_TO_SAVE}"
    ):
        load_backbone(text, backbone="hssl_mnist_translation")


def test_input_shape_the_backbone_cannot_take_fails_before_training(
    fake_root: Path, tmp_path: Path
) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    model = LinearEval(
        str(checkpoint),
        backbone="hssl_mnist_translation",
        backbone_kwargs={"in_channels": 1},
        num_classes=10,
    )
    cifar = CIFAR10DataModule(root=str(fake_root), batch_size=8, num_workers=0, train_views="none")
    trainer = quiet_trainer(max_epochs=1, check_val_every_n_epoch=1000)
    with pytest.raises(ValueError, match=r"cannot take CIFAR-10 images of shape \(3, 32, 32\)"):
        trainer.fit(model, datamodule=LinearEvalData(cifar))
    assert trainer.global_step == 0


def test_augmented_training_cannot_be_cached(fake_root: Path) -> None:
    with pytest.raises(ValueError, match="cache_features=false"):
        LinearEvalData(MNISTDataModule(root=str(fake_root), train_views="simclr"), augment=True)
    with pytest.raises(ValueError, match="train_views='none'"):
        LinearEvalData(mnist(fake_root), augment=True, cache_features=False)


def _standardizing_eval(checkpoint: Path, backbone: str, readout: str) -> LinearEval:
    return LinearEval(
        str(checkpoint),
        backbone=backbone,
        num_classes=10,
        in_channels=1,
        readout=readout,
        standardize=True,
    )


def test_standardized_heads_ignore_the_feature_scale(tmp_path: Path) -> None:
    """With ``standardize`` the classifiers read (x - mean) / std of the training features.

    After one training-mode pass over a batch, the eval-mode input of the heads is the batch
    standardised by its own mean and unbiased variance (BatchNorm's running statistics with
    momentum=None are that one batch's), so features 1000x smaller give the same head input
    (up to the eps of 1e-10 on variances of 4 and 4e-6).
    """
    module = _standardizing_eval(
        save_state(Flatten(), tmp_path / "flatten.pt"), "test_evaluation_flatten", "global_pool"
    )
    features = torch.randn(256, 784, generator=torch.Generator().manual_seed(0)) * 2 + 5
    outputs = []
    for scale in (1.0, 1e-3):
        module.feature_norm.reset_running_stats()
        module.train()
        module.head_input(features * scale)
        module.eval()
        outputs.append(module.head_input(features * scale))
    expected = (features - features.mean(0)) / features.var(0, unbiased=True).sqrt()
    torch.testing.assert_close(outputs[0], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-3, atol=1e-3)


def test_standardize_needs_a_parameter_free_readout(tmp_path: Path) -> None:
    checkpoint = save_state(
        build_backbone("hssl_mnist_translation", in_channels=1), tmp_path / "b.pt"
    )
    with pytest.raises(ValueError, match="standardize=True needs a parameter-free readout"):
        _standardizing_eval(checkpoint, "hssl_mnist_translation", "backbone")


def test_an_unknown_readout_is_refused_naming_the_valid_ones() -> None:
    # Checked before the checkpoint is read, so none is needed.
    with pytest.raises(
        ValueError,
        match="readout must be one of 'backbone', 'global_pool', 'grid_pool', got 'nope'",
    ):
        LinearEval("unused.ckpt", num_classes=10, in_channels=1, readout="nope")


def test_standardized_evaluation_of_small_features_matches_unit_features(
    fake_root: Path, tmp_path: Path
) -> None:
    """End to end: the separable images at 1e-3 of their scale are classified as at full scale
    when standardised (both 100%), while raw they stay behind after the same 3 epochs."""
    small = Flatten()
    small.scale.data.fill_(1e-3)
    results = {}
    for name, backbone, standardize in (
        ("unit", Flatten(), True),
        ("small", small, True),
        ("small_raw", small, False),
    ):
        results[name] = evaluate_checkpoint(
            save_state(backbone, tmp_path / f"{name}.pt"),
            mnist(fake_root),
            max_epochs=3,
            trainer_kwargs=QUIET,
            backbone="test_evaluation_flatten",
            readout="global_pool",
            standardize=standardize,
            lr=1e-3,
        )["linear/test_acc"]
    assert results["small"] == results["unit"] == 1.0
    assert results["small_raw"] < 1.0


class Shifts(StructuredBackbone):
    """The image's 7x7 average-pooled map as one channel, ``(B, 1, H, W) -> (B, 1, 1, 7, 7)``."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.out_channels = 1
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.scale * F.adaptive_avg_pool2d(x[:, :1], 7))[:, :, None]


register_backbone("test_evaluation_shifts")(Shifts)


def write_corner_mnist(root: Path, n_train: int = 200, n_test: int = 100) -> None:
    """MNIST IDX files where class 0 is a 8x8 blob in the top-left corner and class 1 the same
    blob in the bottom-right one, over uniform noise: every image has the same mean, so a
    global pool of :class:`Shifts` cannot tell the classes apart, and a 3x3 grid can."""
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 2).astype(np.uint8)
        images = np.full((n, 28, 28), 40, dtype=np.uint8)
        for i, k in enumerate(labels.tolist()):
            corner = slice(0, 8) if k == 0 else slice(20, 28)
            images[i, corner, corner] = 255
        images = np.clip(images + rng.integers(0, 3, size=images.shape), 0, 255).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
            header += struct.pack(f">{array.ndim}i", *array.shape)
            (raw / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


def test_grid_pool_readout_reads_where_the_pattern_is(tmp_path: Path) -> None:
    """End to end: the corner classes are at chance through the global pool (the pooled value
    is the image mean, equal for both up to the noise) and 100% through the 3x3 grid, whose 9
    (standardised, cached) features feed the classifiers."""
    write_corner_mnist(tmp_path / "data")
    checkpoint = save_state(Shifts(), tmp_path / "shifts.pt")
    results = {
        readout: evaluate_checkpoint(
            checkpoint,
            mnist(tmp_path / "data"),
            max_epochs=20,
            trainer_kwargs=QUIET,
            backbone="test_evaluation_shifts",
            readout=readout,
            standardize=True,
            lr=1e-2,
        )["linear/test_acc"]
        for readout in ("global_pool", "grid_pool")
    }
    assert results["grid_pool"] == 1.0
    assert results["global_pool"] < 0.75
    module = _standardizing_eval(checkpoint, "test_evaluation_shifts", "grid_pool")
    assert module.classifiers.weight.shape[-1] == 9 and module.pool is not None


# ---------------------------------------------------------------------- no number from a bad run
def _lightning_checkpoint(
    model: torch.nn.Module, path: Path, class_path: str, global_step: int = 1
) -> Path:
    """A checkpoint as `lightning fit` writes it (the fields load_method reads)."""
    hparams = {
        **dict(getattr(model, "hparams", {})),
        "_class_path": class_path,
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
    }
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": hparams,
            "pytorch-lightning_version": lightning.__version__,
            "global_step": global_step,
        },
        path,
    )
    return path


def test_non_finite_pretrained_weights_are_refused_naming_the_first_bad_tensor(
    tmp_path: Path,
) -> None:
    """Issue 24 item 3: the linear evaluation of a diverged (NaN) checkpoint reported 10.9 %
    with exit code 0. Both kinds of file are refused at construction, before any number."""
    simclr = SimCLR(backbone="hssl_mnist_translation", in_channels=1, optimizer="adam")
    with torch.no_grad():
        simclr.backbone.layers[1][0].weight[0, 0, 0] = float("nan")
    diverged = _lightning_checkpoint(simclr, tmp_path / "diverged.ckpt", "ssl_geom.methods.SimCLR")
    first_bad = r"first layers\.1\.0\.weight \(1 of \d+ values are NaN or infinite\)"
    with pytest.raises(
        ValueError, match=f"the backbone of {diverged} holds non-finite weights, {first_bad}"
    ):
        LinearEval(str(diverged), num_classes=10)
    flatten = Flatten()
    with torch.no_grad():
        flatten.scale.fill_(float("inf"))
    state = save_state(flatten, tmp_path / "inf.pt")
    with pytest.raises(
        ValueError, match=rf"state dict {state} holds non-finite weights, first scale \(1 of 1"
    ):
        LinearEval(str(state), backbone="test_evaluation_flatten", num_classes=10)


def test_non_finite_features_or_outputs_fail_like_a_diverged_run_and_report_nothing(
    fake_root: Path, tmp_path: Path
) -> None:
    """Finite weights whose features overflow (scale 3e38 times pixels above 1.13 is inf in
    float32) make the training loss non-finite: DivergedError, no accuracy. Classifiers that
    turned NaN after training are caught when validated or tested, before anything is logged."""
    overflow = Flatten()
    with torch.no_grad():
        overflow.scale.fill_(3e38)
    checkpoint = save_state(overflow, tmp_path / "overflow.pt")
    # The sanity check's validation epoch sees the overflow first; without it, the loss does.
    for sanity_steps, message in ((2, "in the validation epoch"), (0, r"linear/train_loss=nan")):
        with pytest.raises(DivergedError, match=message):
            evaluate_checkpoint(
                checkpoint,
                mnist(fake_root),
                max_epochs=1,
                trainer_kwargs={**QUIET, "num_sanity_val_steps": sanity_steps},
                backbone="test_evaluation_flatten",
            )

    model = LinearEval(
        str(save_state(Flatten(), tmp_path / "flat.pt")),
        backbone="test_evaluation_flatten",
        num_classes=10,
    )
    data = LinearEvalData(mnist(fake_root))
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=1.0, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=data)
    with torch.no_grad():
        model.classifiers.weight[1, 0, 0] = float("nan")
    for run, stage in ((trainer.validate, "validation"), (trainer.test, "test")):
        with pytest.raises(
            DivergedError, match=f"non-finite features or classifier outputs in the {stage} epoch"
        ):
            run(model, datamodule=data, verbose=False)
        assert not any(name.startswith("linear/") for name in trainer.callback_metrics)


def test_a_file_that_is_no_pretrained_checkpoint_is_named_with_what_it_holds(
    tmp_path: Path,
) -> None:
    """Issue 24 item 5: files that are no pretrained checkpoint ended in errors naming neither
    the file nor the fix (a dict with int keys: bare TypeError from joining its keys; the
    evaluation's own checkpoint: "method must be an SSLMethod subclass")."""
    int_keys = tmp_path / "ints.pt"
    torch.save({101: torch.zeros(3)}, int_keys)
    with pytest.raises(
        ValueError,
        match=rf"{int_keys} is neither .* it holds \{{101: Tensor\}}\. Pass .*{HOW_TO_SAVE}",
    ):
        LinearEval(str(int_keys), backbone="hssl_mnist_translation", num_classes=10)
    evaluation = LinearEval(
        str(save_state(Flatten(), tmp_path / "flat.pt")),
        backbone="test_evaluation_flatten",
        num_classes=10,
    )
    own = _lightning_checkpoint(
        evaluation, tmp_path / "linear.ckpt", "ssl_geom.evaluation.LinearEval"
    )
    with pytest.raises(
        ValueError,
        match=rf"{own} is a checkpoint of .*LinearEval.*, not of a self-supervised method.*Pass the last\.ckpt of a pretraining run",
    ):
        LinearEval(str(own), num_classes=10)


def test_classifiers_loaded_to_be_scored_must_have_been_trained(tmp_path: Path) -> None:
    """Item 4's other door: a LinearEval checkpoint written before any optimizer step holds
    untrained classifiers; loading it to score them is refused."""
    evaluation = LinearEval(
        str(save_state(Flatten(), tmp_path / "flat.pt")),
        backbone="test_evaluation_flatten",
        num_classes=10,
    )
    untrained = _lightning_checkpoint(
        evaluation, tmp_path / "step0.ckpt", "ssl_geom.evaluation.LinearEval", global_step=0
    )
    with pytest.raises(ValueError, match=r"before any training step \(global_step 0\)"):
        LinearEval.load_from_checkpoint(untrained, weights_only=True)
    trained = _lightning_checkpoint(
        evaluation, tmp_path / "step5.ckpt", "ssl_geom.evaluation.LinearEval", global_step=5
    )
    assert LinearEval.load_from_checkpoint(trained, weights_only=True).trained_steps == 5
