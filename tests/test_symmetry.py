"""One vocabulary for the symmetry: ``ssl_geom.symmetry`` and where backbones, methods, data
and the CLI use it.

Expected names are the H-SSL paper's table rows (Keller, Suau, Zappella, arXiv:2211.08282,
Table 1: Rotation, Translation, Scale), lower-cased as configs spell them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

import pytest
import torch
import yaml

from ssl_geom.augment import GROUP_VIEWS, PAIR_KINDS, PairKind, group_ops
from ssl_geom.backbones import StructuredBackbone, build_backbone, register_backbone
from ssl_geom.cli import main, parse_config
from ssl_geom.data import MNISTDataModule
from ssl_geom.data.base import TRAIN_VIEWS, TrainViews
from ssl_geom.methods.assl import ASSL
from ssl_geom.methods.hssl import HSSL
from ssl_geom.symmetry import SYMMETRIES, Symmetry, SymmetryName, parse_symmetry
from tests import (
    hssl_testing,  # noqa: F401  (registers test_c4 / test_scales)
    methods_testing,  # noqa: F401  (registers tiny_cnn)
)

HSSL_FASHION = Path(__file__).resolve().parents[1] / "experiments" / "hssl_fashion.yaml"


def test_the_names_are_the_paper_rows_and_compare_as_strings() -> None:
    assert SYMMETRIES == get_args(SymmetryName) == ("translation", "rotation", "scale")
    assert Symmetry.ROTATION == "rotation" and f"{Symmetry.SCALE}" == "scale"
    assert parse_symmetry("scale", "x") is Symmetry.SCALE
    assert parse_symmetry(Symmetry.ROTATION, "x") is Symmetry.ROTATION


@pytest.mark.parametrize("bad", ["trivial", "plain", "Rotation", None])
def test_an_unknown_name_is_refused_listing_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match=r"unknown group .*; valid choices: translation, rotation"):
        parse_symmetry(bad, "group")


def test_data_lists_come_from_symmetry() -> None:
    assert GROUP_VIEWS == SYMMETRIES
    # The Literals jsonargparse reads are the tuples the DataModule checks against.
    assert get_args(TrainViews) == TRAIN_VIEWS and get_args(PairKind) == PAIR_KINDS
    assert set(SYMMETRIES) <= set(PAIR_KINDS) and set(SYMMETRIES) <= set(TRAIN_VIEWS)
    assert len(group_ops(Symmetry.ROTATION)) == len(group_ops("rotation")) == 1
    with pytest.raises(ValueError, match="unknown group view 'shear'; valid choices"):
        group_ops("shear")
    with pytest.raises(ValueError, match="unknown train_views 'trivial'"):
        MNISTDataModule(train_views="trivial")


def test_backbone_groups_are_symmetry_members() -> None:
    # A plain CNN, an MLP and the emulated streams: no group beyond translation.
    for name in ("hssl_mnist_translation", "hssl_mnist_mlp", "tiny_cnn"):
        kwargs = {"in_channels": 3} if name == "tiny_cnn" else {}
        assert build_backbone(name, **kwargs).group is Symmetry.TRANSLATION, name
    assert build_backbone("test_c4").group is Symmetry.ROTATION  # declared as "rotation"


class _OldVocabulary(StructuredBackbone):
    group = "trivial"  # type: ignore[assignment]


def test_a_registered_backbone_with_an_unknown_group_is_refused_at_build() -> None:
    register_backbone("test_old_vocabulary", overwrite=True)(_OldVocabulary)
    with pytest.raises(ValueError, match="backbone 'test_old_vocabulary' group 'trivial'"):
        build_backbone("test_old_vocabulary")


@pytest.mark.parametrize("method", [HSSL, ASSL])
def test_transformation_is_saved_as_plain_text_for_weights_only_checkpoints(method) -> None:
    model = method(backbone="test_scales", transformation=Symmetry.SCALE)
    assert type(model.hparams["transformation"]) is str
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": dict(model.hparams)}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # refuses an enum member
    assert loaded["hyper_parameters"]["transformation"] == "scale"


def test_configs_spell_a_symmetry_by_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    override = "--model.init_args.transformation=scale"
    parsed = parse_config(["--config", str(HSSL_FASHION), override])
    assert parsed.model.init_args.transformation is Symmetry.SCALE
    with pytest.raises(SystemExit):
        parse_config(["--config", str(HSSL_FASHION), "--model.init_args.transformation=trivial"])
    assert "valid choices: translation, rotation, scale" in capsys.readouterr().err
    # The default (HSSL's Symmetry.ROTATION) is printed as its value, not as "ROTATION".
    config = yaml.safe_load(HSSL_FASHION.read_text())
    del config["model"]["init_args"]["transformation"]
    path = tmp_path / "hssl.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(path), "--print_config"])
    assert info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["transformation"] == "rotation"
