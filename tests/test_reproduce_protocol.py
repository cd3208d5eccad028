"""The generated tables print every setting in which a profile differs from the paper's."""

from __future__ import annotations

from pathlib import Path

from ssl_geom.reproduce.protocol import configured, differences, protocol_lines
from ssl_geom.reproduce.schema import Profile, Row, TableSpec
from tests.reproduce_testing import simclr_table

PAPER_CONFIG = """\
trainer:
  max_epochs: 100
  precision: bf16-mixed
model:
  class_path: ssl_geom.methods.SimCLR
  init_args:
    backbone: resnet18
    lr: 0.3
data:
  class_path: ssl_geom.data.MNISTDataModule
  init_args:
    batch_size: 512
"""
LINEAR = """\
trainer:
  max_epochs: 100
model:
  class_path: ssl_geom.evaluation.LinearEval
  init_args:
    readout: global_pool
"""


def _table(folder: Path, local: Profile, **kwargs: object) -> TableSpec:
    (folder / "simclr_mnist.yaml").write_text(PAPER_CONFIG)
    (folder / "linear_fashion.yaml").write_text(LINEAR)
    paper = Profile(name="paper", seeds=(0, 1, 2, 3, 4), overrides=(), description="")
    return simclr_table(
        folder,
        title="Tiny",
        rows=(Row("MNIST", "none", "CNN", "mnist"),),
        citation="none",
        profiles={"local": local, "paper": paper},
        **kwargs,
    )


def test_overrides_land_where_the_cli_puts_them(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(PAPER_CONFIG)
    config = configured(path, ("--trainer.max_epochs=3", '--model.backbone_kwargs={"w": [8]}'))
    assert config["trainer"]["max_epochs"] == 3
    assert config["model"]["init_args"]["backbone_kwargs"] == {"w": [8]}
    assert config["model"]["init_args"]["lr"] == 0.3  # untouched


def test_each_changed_setting_is_listed_with_both_values(tmp_path: Path) -> None:
    # By hand: the local profile changes the dataset variant (MNIST -> Fashion-MNIST), epochs
    # (100 -> 3), precision and the seeds (3 vs the paper profile's 5); it keeps lr, batch
    # and backbone, which must not be listed. The Fashion-MNIST linear protocol exists only on
    # the local side (the paper's MNIST has none), so no linear setting is compared.
    local = Profile(
        name="local",
        seeds=(0, 1, 2),
        overrides=("--trainer.max_epochs=3", "--trainer.precision=32-true"),
        description="",
        substitutes={"mnist": ("Fashion-MNIST (stand-in)", ("--data.variant=fashion",))},
    )
    table = _table(tmp_path, local, linear_eval="beside")
    rows = differences(table, local, tmp_path)
    assert rows == [
        ("dataset", "Fashion-MNIST", "MNIST"),
        ("epochs", "3", "100"),
        ("precision", "32-true", "bf16-mixed"),
        ("seeds per cell", "3", "5"),
    ]
    text = "\n".join(protocol_lines(table, local, tmp_path))
    assert "## Protocol differences from the paper" in text
    assert "| epochs | 3 | 100 |" in text


def test_the_paper_profile_and_an_unchanged_profile_print_nothing(tmp_path: Path) -> None:
    same = Profile(name="local", seeds=(0, 1, 2, 3, 4), overrides=(), description="")
    table = _table(tmp_path, same)
    assert protocol_lines(table, same, tmp_path) == []
    assert protocol_lines(table, table.profiles["paper"], tmp_path) == []


def test_a_table_without_a_paper_profile_says_so(tmp_path: Path) -> None:
    local = Profile(name="local", seeds=(0,), overrides=(), description="")
    table = _table(tmp_path, local)
    table.profiles.pop("paper")
    assert "has no `paper` profile" in "\n".join(protocol_lines(table, local, tmp_path))
