"""The geometry paper's configs attach what its Figs. 1, 6 and 7 need (issue 14 item 4).

Fig. 1: projector rank; Fig. 6: label match; Fig. 7: unexplained variance. Figs. 6-7 are
measured on *training batches* of the paper's batch size, 128 (Cosentino et al.,
arXiv:2205.06926, Sec. 2 and Fig. 3), so LabelMatch and FractionUnexplainedVariance take
their reference set from the training split with 128 samples, and measure every epoch (their
default cadence is every 5 epochs, by cost). ``make reproduce-rank`` draws the curves named in
``RANK_TABLE.curves`` from these logs.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ssl_geom.reproduce.tables.geometry_paper import RANK_TABLE
from tests.test_callbacks import expected_names

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").glob("geometry_*.yaml"))
PAPER_BATCH = {"reference_source": "train", "reference_size": 128, "every_n_epochs": 1}
#: What each callback logs (ssl_geom/callbacks/__init__.py, docs/callbacks.md); ProjectorRank's
#: are the rank names of the list test_callbacks checks the callbacks log.
LOGS = {
    "ProjectorRank": {name for name in expected_names() if "_rank" in name},
    "LabelMatch": {"geometry/label_match", "geometry/label_match_coarse"},
    "FractionUnexplainedVariance": {"geometry/fvu"},
}


def callbacks(path: Path) -> dict[str, dict]:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = config["trainer"].get("callbacks") or []
    return {e["class_path"].rsplit(".", 1)[1]: e.get("init_args") or {} for e in entries}


def test_there_are_geometry_configs_for_cifar100_and_fashion() -> None:
    names = {path.stem for path in CONFIGS}
    for dataset in ("cifar100", "fashion"):
        assert {f"geometry_{dataset}_{s}" for s in ("small", "moderate", "large")} <= names


#: The configs' encoder widths: ResNet-18 (CIFAR-100) and the H-SSL MNIST CNN's 128 channels.
ENCODER_DIM = {"cifar100": 512, "fashion": 128}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_config_attaches_the_three_callbacks_with_the_papers_batch(path: Path) -> None:
    attached = callbacks(path)
    assert set(LOGS) <= set(attached)
    assert attached["LabelMatch"] == PAPER_BATCH
    assert attached["FractionUnexplainedVariance"] == PAPER_BATCH
    # the scale-free default thresholds (only the reference size may be set)
    assert set(attached["ProjectorRank"]) <= {"reference_size"}
    module = importlib.import_module("ssl_geom.callbacks")
    for name, init_args in attached.items():
        built = getattr(module, name)(**init_args)  # the arguments exist and are valid
        if name in ("LabelMatch", "FractionUnexplainedVariance"):
            assert (built.reference.source, built.reference.size) == ("train", 128)
        assert built.every_n_epochs == 1  # a point per epoch on every curve
        if name == "ProjectorRank":
            assert built.relative and built.tau == built.embedding_tau == 1e-2
            # Eq. 2 on the N x d_enc embedding matrix: at least 2 samples per dimension
            assert built.reference.size >= 2 * ENCODER_DIM[path.stem.split("_")[1]]


def test_rank_table_reads_only_names_these_callbacks_log() -> None:
    logged = set().union(*LOGS.values()) | {"probe/acc"}  # probe/acc: the method's own probe
    assert set(RANK_TABLE.curves) <= logged
