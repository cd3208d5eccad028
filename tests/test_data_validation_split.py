"""``val_samples``: a validation split carved from the training split, never the test split.

Images are told apart by their bytes: the fake datasets draw every image at random, so two
images with the same bytes are the same image.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from ssl_geom.data import MNISTDataModule, STL10DataModule
from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.evaluation import LinearEvalData, evaluate_checkpoint
from ssl_geom.methods import SimCLR
from tests import methods_testing  # noqa: F401  (registers the tiny_cnn backbone)


def images(source) -> list[bytes]:
    return [source[i][0].numpy().tobytes() for i in range(len(source))]


@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_dataset("fashion", tmp_path_factory.mktemp("fashion"), 120, 40)


def module(root: Path, **kwargs) -> MNISTDataModule:
    dm = MNISTDataModule(root=str(root), variant="fashion", num_workers=0, batch_size=8, **kwargs)
    dm.setup("fit")
    return dm


def test_the_validation_split_is_held_out_of_every_training_subset(fashion_root: Path) -> None:
    dm = module(fashion_root, val_samples=30, max_train_samples=50)
    val = images(dm.source("val"))
    assert len(val) == len(set(val)) == 30
    for split in ("train", "ssl_train"):
        assert not set(val) & set(images(dm.source(split))), split
    assert not set(val) & set(images(dm.source("test")))
    # Without a subset, train and validation together are the whole training split.
    whole = module(fashion_root, val_samples=30)
    everything = set(images(module(fashion_root).source("train")))
    assert set(images(whole.source("train"))) | set(val) == everything
    assert len(whole.source("train")) == 120 - 30


def test_every_seed_is_validated_on_the_same_images(fashion_root: Path) -> None:
    first = images(module(fashion_root, val_samples=20, seed=0).source("val"))
    assert images(module(fashion_root, val_samples=20, seed=3).source("val")) == first
    # ...while the training subsets still follow the seed.
    subsets = [
        images(module(fashion_root, val_samples=20, seed=s, max_train_samples=40).source("train"))
        for s in (0, 3)
    ]
    assert subsets[0] != subsets[1]


def test_val_dataloader_serves_the_validation_split_and_test_the_test_split(
    fashion_root: Path,
) -> None:
    dm = module(fashion_root, val_samples=24)
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    test = torch.cat([x for x, _ in dm.test_dataloader()])
    assert len(val) == 24 and len(test) == 40
    plain = module(fashion_root)  # no val_samples: validation reads the test split, as before
    assert not plain.has_validation_split
    assert torch.equal(torch.cat([x for x, _ in plain.val_dataloader()]), test)


def test_stl10_validation_comes_from_labelled_images_only(tmp_path: Path) -> None:
    root = write_fake_dataset("stl10", tmp_path, n_train=20, n_test=10)
    dm = STL10DataModule(root=str(root), num_workers=0, batch_size=4, val_samples=5)
    dm.setup("fit")
    labels = [int(dm.source("val")[i][1][0]) for i in range(5)]
    assert all(label >= 0 for label in labels)  # unlabeled images carry -1
    assert not set(images(dm.source("val"))) & set(images(dm.source("ssl_train")))


@pytest.mark.parametrize("bad", [0, 120, 500])
def test_a_validation_split_that_cannot_be_carved_is_refused(fashion_root: Path, bad) -> None:
    with pytest.raises(ValueError, match="val_samples"):
        module(fashion_root, val_samples=bad)


def test_asking_for_a_validation_split_that_was_not_held_out_is_refused(
    fashion_root: Path,
) -> None:
    with pytest.raises(ValueError, match="no validation split; set val_samples"):
        module(fashion_root).source("val")


def test_the_linear_evaluation_validates_on_the_held_out_images(fashion_root: Path) -> None:
    dm = module(fashion_root, val_samples=30)
    data = LinearEvalData(dm, cache_features=False)
    served = torch.cat([x for x, _ in data.val_dataloader()])
    assert torch.equal(served, torch.cat([x for x, _ in dm.val_dataloader()]))
    assert len(served) == 30
    tested = torch.cat([x for x, _ in data.test_dataloader()])
    assert not set(map(bytes_of, served)) & set(map(bytes_of, tested))


def bytes_of(image: torch.Tensor) -> bytes:
    return image.numpy().tobytes()


def test_evaluate_checkpoint_reports_validation_accuracy_only_with_a_validation_split(
    fashion_root: Path, tmp_path: Path
) -> None:
    L.seed_everything(0)
    backbone = SimCLR(backbone="tiny_cnn", in_channels=1, projector_hidden_dims=[8]).backbone
    checkpoint = tmp_path / "backbone.pt"
    torch.save(backbone.state_dict(), checkpoint)

    def evaluate(**kwargs) -> dict[str, float]:
        dm = MNISTDataModule(
            root=str(fashion_root), variant="fashion", num_workers=0, batch_size=16, **kwargs
        )
        return evaluate_checkpoint(
            checkpoint, dm, max_epochs=1, backbone="tiny_cnn", trainer_kwargs={"accelerator": "cpu"}
        )

    held_out = evaluate(val_samples=30)
    assert {"linear/val_acc", "linear/val_acc_std", "linear/test_acc", "knn/test_acc"} <= set(
        held_out
    )
    assert "linear/val_acc" not in evaluate()  # no validation split, no validation number
