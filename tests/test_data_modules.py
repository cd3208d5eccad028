"""DataModules on small files in the real on-disk formats (written by ssl_geom.data.fake and by
hand): shapes, dtypes, labels, view counts, errors, reproducibility, and a read-only data folder.
"""

from __future__ import annotations

import gzip
import hashlib
import inspect
import pickle
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_geom.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    CorruptDatasetError,
    DatasetNotFoundError,
    ImageNet100DataModule,
    MNISTDataModule,
    STL10DataModule,
    TinyImageNetDataModule,
    UnreadableFilesError,
    imagenet100_classes,
)
from ssl_geom.data import mnist as mnist_module
from ssl_geom.data.fake import write_fake_dataset

N_TRAIN, N_TEST = 40, 24

# name -> (DataModule class, extra kwargs, channels, size, classes)
CASES = {
    "mnist": (MNISTDataModule, {}, 1, 28, 10),
    "fashion": (MNISTDataModule, {"variant": "fashion"}, 1, 28, 10),
    "cifar10": (CIFAR10DataModule, {}, 3, 32, 10),
    "cifar100": (CIFAR100DataModule, {}, 3, 32, 100),
    "stl10": (STL10DataModule, {}, 3, 96, 10),
    "tiny_imagenet": (TinyImageNetDataModule, {}, 3, 64, 200),
    "imagenet100": (ImageNet100DataModule, {"image_size": 48}, 3, 48, 100),
}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake_data")
    for name in CASES:
        write_fake_dataset(name, root / name, n_train=N_TRAIN, n_test=N_TEST)
    return root


def _dm(fake_root: Path, name: str, **kw):
    cls, extra, *_ = CASES[name]
    args = {"root": str(fake_root / name), "batch_size": 8, "num_workers": 0, **extra, **kw}
    return cls(**args)


def _tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.md5(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_loaders_yield_contract_shapes_dtypes_labels(fake_root: Path, name: str) -> None:
    _, _, channels, size, classes = CASES[name]
    before = _tree_digest(fake_root / name)
    dm = _dm(fake_root, name, n_views=3, include_original=True)
    assert (dm.num_classes, dm.in_channels, dm.image_size) == (classes, channels, size)
    assert len(dm.mean) == len(dm.std) == channels

    views, y = next(iter(dm.train_dataloader()))
    assert len(views) == 4  # 3 views + the original
    for v in views:
        assert v.shape == (8, channels, size, size) and v.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (8,)

    labelled = -1 if name == "stl10" else 0
    assert ((y >= labelled) & (y < classes)).all()

    n_ssl = 2 * N_TRAIN if name == "stl10" else N_TRAIN  # STL10 adds as many unlabeled images
    assert len(dm.train_dataloader()) == n_ssl // 8  # drop_last
    for loader, n in ((dm.val_dataloader(), N_TEST), (dm.train_eval_dataloader(), N_TRAIN)):
        batches = list(loader)
        assert sum(len(b[1]) for b in batches) == n
        x, labels = batches[0][0], batches[0][1]
        assert x.shape[1:] == (channels, size, size) and x.dtype == torch.float32
        all_y = torch.cat([b[1] for b in batches])
        assert all_y.dtype == torch.int64 and all_y.min() >= 0 and all_y.max() < classes
        assert len(batches[0]) == (3 if name == "cifar100" else 2)
        assert labels.shape == (len(x),)
    # Nothing in the data folder was modified, added or removed.
    assert _tree_digest(fake_root / name) == before


@pytest.mark.parametrize("name", list(CASES))
def test_eval_images_are_normalised_with_dataset_statistics(fake_root: Path, name: str) -> None:
    dm = _dm(fake_root, name)
    x = next(iter(dm.val_dataloader()))[0]
    mean = torch.tensor(dm.mean).view(1, -1, 1, 1)
    std = torch.tensor(dm.std).view(1, -1, 1, 1)
    pixels = x * std + mean  # back to [0, 1]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert pixels.max() - pixels.min() > 0.5


def test_cifar100_carries_fine_and_coarse_labels(fake_root: Path) -> None:
    dm = _dm(fake_root, "cifar100")
    assert dm.num_coarse_classes == 20
    fine, coarse = [], []
    for _, y_fine, y_coarse in dm.val_dataloader():
        fine.append(y_fine)
        coarse.append(y_coarse)
    fine, coarse = torch.cat(fine), torch.cat(coarse)
    # The fake writer stores coarse = fine // 5; reading the wrong key would break this.
    assert torch.equal(coarse, fine // 5)
    assert coarse.max() < 20
    assert CIFAR10DataModule.num_coarse_classes is None


def test_stl10_ssl_split_includes_unlabeled_with_label_minus_one(fake_root: Path) -> None:
    dm = _dm(fake_root, "stl10", batch_size=N_TRAIN)
    labels = torch.cat([y for _, y in dm.train_dataloader()])
    assert (labels == -1).sum() == N_TRAIN
    assert ((labels >= 0) & (labels < 10)).sum() == N_TRAIN
    assert len(dm.source("train")) == N_TRAIN  # linear-probe split: labelled only


def test_stl10_reads_column_major_pixels(tmp_path: Path) -> None:
    # STL10 stores each channel column by column: byte k of a channel is pixel
    # (row=k % 96, col=k // 96). Fill pixel (c, row, col) with value row + c, written in that
    # order by hand, and expect image[c, row, col] == row + c.
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rows = np.tile(np.arange(96, dtype=np.uint8), 96)  # column after column
    image = np.concatenate([rows + c for c in range(3)])
    for split in ("train", "test"):
        (folder / f"{split}_X.bin").write_bytes(image.tobytes() * 2)
        (folder / f"{split}_y.bin").write_bytes(bytes([1, 10]))
    (folder / "unlabeled_X.bin").write_bytes(image.tobytes())
    dm = STL10DataModule(root=str(tmp_path), num_workers=0)
    x, labels = dm.source("train")[1]
    expected = torch.arange(96).view(1, 96, 1) + torch.arange(3).view(3, 1, 1)
    assert torch.equal(x.long(), expected.expand(3, 96, 96))
    assert labels == (9,)  # label bytes are 1..10


def test_mnist_idx_parsed_by_hand_written_bytes(tmp_path: Path) -> None:
    # IDX: magic 0x00000803 (ubyte, 3 dims), big-endian dims, then row-major bytes.
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    for prefix in ("train", "t10k"):
        header = struct.pack(">BBBBiii", 0, 0, 8, 3, 2, 28, 28)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        labels = struct.pack(">BBBBi", 0, 0, 8, 1, 2) + bytes([7, 3])
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    dm = MNISTDataModule(root=str(tmp_path), num_workers=0)
    x, y = dm.source("test")[1]
    assert torch.equal(x[0], torch.from_numpy(images[1]))
    assert y == (3,)


def test_cifar_pickle_layout_by_hand(tmp_path: Path) -> None:
    # A CIFAR row is 1024 red, 1024 green, 1024 blue bytes, each channel row-major.
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    row = np.concatenate([np.full(1024, 10 * (c + 1), np.uint8) for c in range(3)])
    row[1] = 99  # red channel, row 0, column 1
    batch = {"data": row[None].repeat(2, 0), "labels": [4, 2]}
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f).write_bytes(pickle.dumps(batch, protocol=2))
    dm = CIFAR10DataModule(root=str(tmp_path), num_workers=0)
    x, y = dm.source("test")[0]
    assert x[0, 0, 1] == 99 and x[0, 1, 1] == 10 and x[1, 5, 5] == 20 and x[2, 31, 31] == 30
    assert y == (4,)
    assert len(dm.source("train")) == 10


def test_cifar_pickle_with_code_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    evil = pickle.dumps({"data": __import__("os").getcwd}, protocol=2)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / f).write_bytes(evil)
    with pytest.raises(CorruptDatasetError, match=r"data_batch_1.*not allowed"):
        CIFAR10DataModule(root=str(tmp_path), num_workers=0).setup()


def test_fashion_is_found_in_debian_folder_without_configuration(
    tmp_path: Path, monkeypatch
) -> None:
    debian = write_fake_dataset("fashion", tmp_path / "deb", n_train=9, n_test=5)
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", debian / "FashionMNIST" / "raw")
    # Without configuration = no root and no $SSL_GEOM_DATA (an explicit root is the only
    # place looked at: tests/test_data_mnist_files.py).
    monkeypatch.delenv("SSL_GEOM_DATA", raising=False)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    dm = MNISTDataModule(variant="fashion", num_workers=0)
    assert len(dm.source("train")) == 9 and len(dm.source("test")) == 5


@pytest.mark.parametrize("name", list(CASES))
def test_missing_dataset_error_names_path_files_and_remedy(
    tmp_path: Path, name: str, monkeypatch
) -> None:
    monkeypatch.setattr(mnist_module, "DEBIAN_FASHION_DIR", tmp_path / "no_debian")
    cls, extra, *_ = CASES[name]
    dm = cls(root=str(tmp_path / "nothing"), num_workers=0, **extra)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "nothing") in message
    assert "expected there:" in message
    if name == "imagenet100":
        assert "cannot be downloaded" in message and "train/<wnid>" in message
    else:
        assert "download=True" in message
    if name == "fashion":
        assert "dataset-fashion-mnist" in message
    assert not (tmp_path / "nothing").exists()  # looking does not create anything


def test_download_refused_at_construction_where_torchvision_cannot(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="download=True is not supported for ImageNet-100"):
        ImageNet100DataModule(root=str(tmp_path), download=True)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 - 7])  # mid-record, as an interrupted copy would


@pytest.mark.parametrize(
    ("name", "relative"),
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte.gz"),
        ("cifar10", "cifar-10-batches-py/data_batch_3"),
        ("cifar100", "cifar-100-python/test"),
        ("stl10", "stl10_binary/unlabeled_X.bin"),
    ],
)
def test_truncated_file_error_names_the_file(
    fake_root: Path, tmp_path: Path, name: str, relative: str
) -> None:
    root = tmp_path / name
    shutil.copytree(fake_root / name, root)
    _truncate(root / relative)
    cls, extra, *_ = CASES[name]
    with pytest.raises(CorruptDatasetError, match=re.escape(str(root / relative))):
        cls(root=str(root), num_workers=0, **extra).setup()


def test_raw_idx_with_wrong_length_names_the_file(tmp_path: Path) -> None:
    raw = write_fake_dataset("mnist", tmp_path, n_train=4, n_test=4) / "MNIST" / "raw"
    bad = raw / "t10k-labels-idx1-ubyte"
    bad.write_bytes(gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())[:-1])
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(CorruptDatasetError, match=re.escape(str(bad)) + ".*truncated"):
        MNISTDataModule(root=str(tmp_path), num_workers=0).setup()


@pytest.mark.parametrize("name", ["tiny_imagenet", "imagenet100"])
def test_corrupt_jpeg_error_names_the_file(fake_root: Path, tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    shutil.copytree(fake_root / name, root)
    dm = _dm(root.parent, name)
    bad = Path(dm.source("test").paths[0])
    _truncate(bad)
    with pytest.raises(CorruptDatasetError, match=re.escape(str(bad))):
        list(dm.val_dataloader())


def _first_batches(dm, n: int = 2) -> list:
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a[0], b[0], strict=True)) and torch.equal(
        a[1], b[1]
    )


def test_seed_makes_train_loader_reproducible_and_independent_of_workers(fake_root) -> None:
    a = _first_batches(_dm(fake_root, "cifar10", seed=3))
    b = _first_batches(_dm(fake_root, "cifar10", seed=3))
    c = _first_batches(_dm(fake_root, "cifar10", seed=4))
    w = _first_batches(_dm(fake_root, "cifar10", seed=3, num_workers=1))
    torch.manual_seed(123)  # the global RNG plays no part
    g = _first_batches(_dm(fake_root, "cifar10", seed=3))
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert all(_same(x, y) for x, y in zip(a, w, strict=True))
    assert all(_same(x, y) for x, y in zip(a, g, strict=True))
    assert not _same(a[0], c[0])


def test_epochs_differ_and_set_epoch_replays_an_epoch(fake_root: Path) -> None:
    dm = _dm(fake_root, "cifar10")
    loader = dm.train_dataloader()
    epoch0, epoch1 = next(iter(loader)), next(iter(loader))
    assert not torch.equal(epoch0[0][0], epoch1[0][0])
    loader.sampler.set_epoch(1)
    assert _same(next(iter(loader)), epoch1)


def test_subsets_are_seeded_random_and_cover_several_classes(fake_root: Path) -> None:
    dm = _dm(fake_root, "tiny_imagenet", max_train_samples=10, max_eval_samples=6)
    assert len(dm.source("ssl_train")) == 10 and len(dm.source("test")) == 6
    labels = {dm.source("train")[i][1][0] for i in range(10)}
    assert len(labels) > 1  # not the first 10 files, which share a class folder
    again = _dm(fake_root, "tiny_imagenet", max_train_samples=10)
    assert list(again.source("train").indices) == list(dm.source("train").indices)


def test_none_views_are_the_eval_image(fake_root: Path) -> None:
    dm = _dm(fake_root, "cifar10", train_views="none", include_original=True)
    views, _ = next(iter(dm.train_dataloader()))
    assert len(views) == 2 and torch.equal(views[0], views[1])


def test_rotation_views_are_quarter_turns_of_the_original(fake_root: Path) -> None:
    dm = _dm(fake_root, "mnist", train_views="rotation", include_original=True)
    (v1, v2, original), _ = next(iter(dm.train_dataloader()))
    for view in (v1, v2):
        for i in range(len(original)):
            assert any(
                torch.equal(view[i], torch.rot90(original[i], k, dims=(-2, -1))) for k in range(4)
            )


@pytest.mark.parametrize("kind", ["translation", "scale"])
def test_group_views_keep_size(fake_root: Path, kind: str) -> None:
    dm = _dm(fake_root, "imagenet100", train_views=kind)
    views, _ = next(iter(dm.train_dataloader()))
    assert [tuple(v.shape) for v in views] == [(8, 3, 48, 48)] * 2


def test_datamodule_same_params_transform_one_draw(fake_root: Path) -> None:
    dm = _dm(fake_root, "stl10")
    x = next(iter(dm.val_dataloader()))[0][:1].repeat(4, 1, 1, 1)
    t = dm.same_params_transform()
    for seed in range(5):
        torch.manual_seed(seed)
        out = t(x)
        assert out.shape == x.shape
        assert all(torch.equal(out[0], out[i]) for i in range(4))
    with pytest.raises(ValueError, match=r"'blur'.*simclr.*rotation"):
        dm.same_params_transform("blur")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"train_views": "crop"}, "'crop'.*simclr.*none.*rotation"),
        ({"train_views": "rotation", "strength": "small"}, "strength='small'.*train_views"),
        ({"strength": "tiny"}, "'tiny'.*large.*moderate.*small"),
        ({"train_views": "none", "n_views": 2}, "exactly one.*n_views=2"),
        ({"n_views": 0}, "n_views must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"num_workers": 0, "persistent_workers": True}, "persistent_workers=True needs"),
        ({"variant": "kmnist"}, "'kmnist'.*mnist.*fashion"),
    ],
)
def test_incompatible_options_fail_at_construction(kwargs, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        MNISTDataModule(root="unused", **kwargs)


def test_batch_larger_than_dataset_is_a_clear_error(fake_root: Path) -> None:
    dm = _dm(fake_root, "mnist", batch_size=1000)
    with pytest.raises(ValueError, match=r"40 SSL training samples.*batch_size=1000"):
        dm.train_dataloader()


def test_root_defaults_to_env_then_dot_data(monkeypatch) -> None:
    monkeypatch.setenv("SSL_GEOM_DATA", "/some/where")
    assert CIFAR10DataModule().root == Path("/some/where")
    monkeypatch.delenv("SSL_GEOM_DATA")
    assert CIFAR10DataModule().root == Path("data")


def test_every_init_argument_is_type_hinted_for_lightning_cli() -> None:
    for cls, *_ in CASES.values():
        params = inspect.signature(cls.__init__).parameters.values()
        unhinted = [p.name for p in params if p.name != "self" and p.annotation is p.empty]
        assert not unhinted, f"{cls.__name__}: {unhinted}"


def test_imagenet100_class_list_is_the_cmc_subset() -> None:
    classes = imagenet100_classes()
    assert len(classes) == 100 and len(set(classes)) == 100
    assert all(len(c) == 9 and c[0] == "n" and c[1:].isdigit() for c in classes)
    # Head of CMC's published list (Tian et al. 2020, imagenet100.txt).
    assert classes[:5] == ["n02869837", "n01749939", "n02488291", "n02107142", "n13037406"]


def test_imagenet100_from_a_full_imagenet_root_ignores_other_classes(
    fake_root: Path, tmp_path: Path
) -> None:
    shutil.copytree(fake_root / "imagenet100" / "imagenet100", tmp_path / "imagenet")
    extra = tmp_path / "imagenet" / "train" / "n99999999"
    extra.mkdir()
    shutil.copy(next((tmp_path / "imagenet" / "train" / "n02869837").iterdir()), extra / "x.JPEG")
    dm = ImageNet100DataModule(root=str(tmp_path), image_size=32, num_workers=0)
    source = dm.source("train")
    assert len(source) == N_TRAIN
    assert not any("n99999999" in p for p in source.paths)
    assert sorted(set(source.labels.tolist())) == list(range(min(N_TRAIN, 100)))


@pytest.mark.parametrize("name", ["tiny_imagenet", "imagenet100"])
def test_verify_lists_every_unreadable_image_at_setup(
    fake_root: Path, tmp_path: Path, name: str
) -> None:
    root = tmp_path / name
    shutil.copytree(fake_root / name, root)
    plain = _dm(root.parent, name)
    bad = sorted([plain.source("train").paths[3], *plain.source("test").paths[:2]])
    for path in bad:
        _truncate(Path(path))
    _dm(root.parent, name).setup()  # without verify: found only when an epoch reaches them
    with pytest.raises(UnreadableFilesError) as info:
        _dm(root.parent, name, verify=True, num_workers=2).setup()
    assert [path for path, _ in info.value.failures] == bad  # all three, each once, sorted
    message = str(info.value)
    assert "3 unreadable file(s)" in message and all(p in message for p in bad)
    assert "replace them with intact copies" in message


def test_verify_passes_intact_files_and_keeps_the_sources(fake_root: Path) -> None:
    dm = _dm(fake_root, "tiny_imagenet", verify=True)
    dm.setup()
    assert (len(dm.source("train")), len(dm.source("test"))) == (N_TRAIN, N_TEST)


def test_allowed_values_come_from_the_literal_types_and_match_the_transforms() -> None:
    # The argument types (what --help and YAML validation show) are the single source; the
    # transforms must offer exactly those choices.
    from typing import get_args, get_type_hints

    from ssl_geom.augment import GROUP_VIEWS, STRENGTHS
    from ssl_geom.data.base import TRAIN_VIEWS, SSLDataModule

    strength = get_type_hints(SSLDataModule.__init__)["strength"]
    assert set(get_args(get_args(strength)[0])) == set(STRENGTHS)
    assert set(TRAIN_VIEWS) == {"simclr", "none", *GROUP_VIEWS}
    with pytest.raises(ValueError, match=r"unknown strength 'huge'; expected one of \['large'"):
        MNISTDataModule(strength="huge")
