"""ssl_geom.analysis: scalars, spectra and methods read back from files written here by hand."""

from __future__ import annotations

import math
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from ssl_geom.analysis import (
    CheckpointMismatchError,
    load_method,
    read_scalars,
    read_spectra,
    run_checkpoint,
)
from ssl_geom.callbacks import ProjectorRank
from ssl_geom.checkpoint_file import CheckpointFileError
from ssl_geom.methods import SimCLR


def test_read_scalars_returns_values_with_their_steps_and_epochs(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="run")
    # Lightning adds "epoch" to every log_metrics call; the last call has none on purpose.
    logger.log_metrics({"a": 1.0, "epoch": 0}, step=3)
    logger.log_metrics({"a": 2.5, "b": -4.0, "epoch": 1}, step=7)
    logger.log_metrics({"c": 9.0}, step=8)
    logger.finalize("success")

    scalars = read_scalars(logger.log_dir)

    assert set(scalars) == {"a", "b", "c", "epoch"}
    np.testing.assert_array_equal(scalars["a"].steps, [3, 7])
    np.testing.assert_array_equal(scalars["a"].epochs, [0.0, 1.0])
    np.testing.assert_array_equal(scalars["a"].values, [1.0, 2.5])
    assert scalars["a"].last == 2.5
    np.testing.assert_array_equal(scalars["b"].epochs, [1.0])
    assert math.isnan(scalars["c"].epochs[0]) and scalars["c"].last == 9.0


def test_read_scalars_on_the_parent_folder_names_the_run_folders(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="run")
    logger.log_metrics({"a": 1.0}, step=0)
    logger.finalize("success")
    with pytest.raises(FileNotFoundError, match="version_0"):
        read_scalars(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        read_scalars(tmp_path / "empty")


def test_read_spectra_reads_projector_rank_state_from_a_checkpoint(tmp_path: Path) -> None:
    callback = ProjectorRank()
    callback.projector_spectra = [(0, torch.tensor([3.0, 1.0])), (1, torch.tensor([2.0, 0.5]))]
    callback.embedding_spectra = [(1, torch.tensor([7.0, 0.0]))]
    path = tmp_path / "last.ckpt"
    # Lightning stores each callback's state_dict under its state_key.
    torch.save({"callbacks": {callback.state_key: callback.state_dict()}}, path)

    projector = read_spectra(path)
    assert [e for e, _ in projector] == [0, 1]
    np.testing.assert_array_equal(projector[1][1], [2.0, 0.5])
    ((epoch, values),) = read_spectra(path, kind="embedding")
    assert epoch == 1 and values.tolist() == [7.0, 0.0]

    with pytest.raises(ValueError, match="kind must be one of"):
        read_spectra(path, kind="weights")
    torch.save({"callbacks": {}}, tmp_path / "none.ckpt")
    with pytest.raises(ValueError, match="no ProjectorRank"):
        read_spectra(tmp_path / "none.ckpt")
    with pytest.raises(FileNotFoundError, match=r"missing\.ckpt"):
        read_spectra(tmp_path / "missing.ckpt")


def _checkpoint(model: SimCLR, path: Path, class_path: str | None) -> Path:
    hparams = dict(model.hparams)
    if class_path is not None:  # what LightningCLI adds to hyper_parameters
        hparams["_class_path"] = class_path
        hparams["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": hparams,
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return path


def test_load_method_rebuilds_the_recorded_class_with_its_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SimCLR(
        temperature=0.3,
        backbone="hssl_mnist_translation",
        in_channels=1,
        projector_hidden_dims=[],
        projector_out_dim=8,
        optimizer="adam",
    )
    path = _checkpoint(model, tmp_path / "cli.ckpt", "ssl_geom.methods.SimCLR")

    loaded = load_method(path)

    assert type(loaded) is SimCLR and not loaded.training
    assert loaded.hparams.temperature == 0.3
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)

    plain = _checkpoint(model, tmp_path / "plain.ckpt", None)
    with pytest.raises(ValueError, match="pass method="):
        load_method(plain)
    assert type(load_method(plain, method=SimCLR)) is SimCLR
    with pytest.raises(ValueError, match="outside ssl_geom"):
        load_method(_checkpoint(model, tmp_path / "other.ckpt", "os.system"))
    with pytest.raises(ValueError, match="SSLMethod subclass"):
        load_method(plain, method=dict)  # type: ignore[arg-type]


def test_run_checkpoint_prefers_last_and_explains_a_missing_one(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "epoch=0-step=4.ckpt").write_bytes(b"")
    assert run_checkpoint(tmp_path).name == "epoch=0-step=4.ckpt"
    (folder / "last.ckpt").write_bytes(b"")
    assert run_checkpoint(tmp_path).name == "last.ckpt"
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        run_checkpoint(tmp_path / "elsewhere")


class _CreatesFile:
    """Pickles as ``open(path, "w")``: unpickling it without weights_only creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "created_by_unpickling"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"callbacks": {}, "hyper_parameters": {"x": _CreatesFile(marker)}}, crafted)
    control = tmp_path / "control.ckpt"
    torch.save({"payload": _CreatesFile(tmp_path / "control_marker")}, control)
    # Control: the payload works when unpickled unsafely, so its absence below means something.
    torch.load(control, weights_only=False)
    assert (tmp_path / "control_marker").exists()

    for read in (read_spectra, load_method):
        with pytest.raises(CheckpointFileError, match=r"refusing to load .*crafted\.ckpt.*open"):
            read(crafted)
    assert not marker.exists()


def test_a_missing_checkpoint_is_named_with_where_lightning_writes_one(tmp_path: Path) -> None:
    missing = tmp_path / "last.ckpt"
    for read in (read_spectra, load_method):
        with pytest.raises(
            FileNotFoundError, match=f"{missing} does not exist.*<log_dir>/checkpoints/"
        ):
            read(missing)


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3: loss 1.2\n")
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    listing = tmp_path / "list.ckpt"
    torch.save([1, 2], listing)
    for path in (text, empty, listing, tmp_path):
        with pytest.raises(CheckpointFileError, match=f"not a checkpoint file: {path}"):
            load_method(path)


def test_a_checkpoint_of_another_version_is_named_with_what_does_not_fit(tmp_path: Path) -> None:
    """Issue 24 item 6: raw TypeError / RuntimeError / AttributeError that named neither the
    file nor a version mismatch."""
    model = SimCLR(backbone="hssl_mnist_translation", in_channels=1, projector_out_dim=8)
    good = _checkpoint(model, tmp_path / "good.ckpt", "ssl_geom.methods.SimCLR")
    saved = torch.load(good, weights_only=True)

    def variant(name: str, **changes) -> Path:
        path = tmp_path / f"{name}.ckpt"
        torch.save({**saved, **changes}, path)
        return path

    newer = variant("newer", hyper_parameters={**saved["hyper_parameters"], "new_option": 1})
    renamed = variant(
        "renamed",
        state_dict={k.replace("projector.", "head."): v for k, v in saved["state_dict"].items()},
    )
    resized = variant(
        "resized", state_dict={**saved["state_dict"], "projector.layers.0.weight": torch.zeros(3)}
    )
    gone = variant(
        "gone",
        hyper_parameters={**saved["hyper_parameters"], "_class_path": "ssl_geom.methods.Gone"},
    )
    expected = {
        newer: rf"{newer} records hyper-parameters that SimCLR .* does not take: \['new_option'\]",
        renamed: rf"{renamed} does not fit SimCLR .*Missing key\(s\).*projector\.",
        resized: rf"{resized} does not fit SimCLR .*size mismatch for projector\.layers\.0\.weight",
        gone: rf"{gone} was written by a version of ssl_geom with a class 'ssl_geom\.methods\.Gone'",
    }
    for path, message in expected.items():
        with pytest.raises(CheckpointMismatchError, match=message) as info:
            load_method(path)
        assert "Load it with the version that wrote it" in str(info.value)
