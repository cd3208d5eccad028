"""The reproduce tables use the linear evaluation where the paper does (CARE: as the cells;
H-SSL: a labelled table beside the online classifier), on a tiny fake Fashion-MNIST run."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from ssl_geom.data.fake import write_fake_dataset
from ssl_geom.reproduce import runner
from ssl_geom.reproduce.configs import experiments_dir
from ssl_geom.reproduce.plan import RunSpec, plan_runs
from ssl_geom.reproduce.report import aggregate, render_markdown
from ssl_geom.reproduce.schema import TableSpec
from ssl_geom.reproduce.tables.care import CARE_TABLE
from ssl_geom.reproduce.tables.hssl import TABLE1, TABLE2
from tests.reproduce_testing import planning_profile, simclr_table, tiny_simclr


def _table(tmp_path: Path, mode: str) -> TableSpec:
    root = write_fake_dataset("fashion", tmp_path / "data", n_train=64, n_test=32)
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    (experiments / "simclr_tiny.yaml").write_text(tiny_simclr(root, max_epochs=1))
    shutil.copy(experiments_dir() / "linear_fashion.yaml", experiments)
    shutil.copy(experiments_dir() / "linear_fashion_hssl.yaml", experiments)
    return simclr_table(experiments, linear_eval=mode)


def test_paper_tables_evaluate_where_the_papers_do() -> None:
    assert CARE_TABLE.linear_eval == "headline"
    assert TABLE1.linear_eval == "beside"
    specs = plan_runs(CARE_TABLE, planning_profile(CARE_TABLE, "local"))
    assert {s.linear_eval for s in specs} == {"headline"}
    # One linear protocol for Fashion-MNIST in every table (fixed before any verdict): the
    # global pool of linear_fashion.yaml.
    fashion = {
        table.name: dict(plan_runs(table, planning_profile(table, "local"))[0].linear_configs)
        for table in (TABLE1, TABLE2, CARE_TABLE)
    }
    assert fashion["table1"]["Fashion-MNIST"] == fashion["table2"]["Fashion-MNIST"]
    assert fashion["table2"]["Fashion-MNIST"] == fashion["care"]["Fashion-MNIST"]
    assert fashion["care"]["Fashion-MNIST"] == "linear_fashion.yaml"


def test_a_table_evaluates_with_its_own_protocol(tmp_path: Path) -> None:
    """A table naming linear_fashion_hssl.yaml for Fashion-MNIST records that protocol (the
    grid readout); editing it reruns that table's runs and leaves a table of the default
    protocol as it was."""
    default = _table(tmp_path, "beside")
    hssl = dataclasses.replace(
        default, linear_configs={"Fashion-MNIST": "linear_fashion_hssl.yaml"}
    )
    profile = default.profiles["local"]
    (spec,) = plan_runs(hssl, profile)
    spec = RunSpec.from_dict(spec.to_dict())  # as the sweep hands it to a worker
    record = runner.run_one(spec, tmp_path / "out")
    linear = record.settings["linear_eval"]
    assert linear["config"] == str(default.experiments_dir / "linear_fashion_hssl.yaml")
    assert linear["protocol"]["model"]["init_args"]["readout"] == "grid_pool"
    text = render_markdown(hssl, profile, [spec], aggregate([record], [spec]), {}, [record])
    assert "protocols: Fashion-MNIST: experiments/linear_fashion_hssl.yaml)" in text

    (untouched,) = plan_runs(default, profile)
    protocol = default.experiments_dir / "linear_fashion_hssl.yaml"
    protocol.write_text(protocol.read_text().replace("grid_size: 3", "grid_size: 2"))
    assert plan_runs(hssl, profile)[0].run_id != spec.run_id
    assert plan_runs(default, profile)[0].run_id == untouched.run_id


@pytest.mark.parametrize("mode", ["headline", "beside"])
def test_run_records_its_linear_evaluation(tmp_path: Path, mode: str) -> None:
    table = _table(tmp_path, mode)
    profile = table.profiles["local"]
    (spec,) = plan_runs(table, profile)
    record = runner.run_one(spec, tmp_path / "out")

    linear = record.settings["linear_eval"]
    # The protocol beside the run's own config, recorded as it was read.
    assert linear["config"] == str(table.experiments_dir / "linear_fashion.yaml")
    assert linear["protocol"]["model"]["init_args"]["standardize"] is True
    metrics = linear["metrics"]
    assert set(metrics) >= {"linear/test_acc", "linear/test_acc_std", "knn/test_acc"}
    mean = sum(metrics[f"linear/test_acc_{i}"] for i in range(3)) / 3
    assert metrics["linear/test_acc"] == pytest.approx(mean)
    assert record.linear_accuracy == pytest.approx(100 * mean)

    history_probe = record.history[-1]["probe/acc"]  # the online probe, logged while training
    text = render_markdown(table, profile, [spec], aggregate([record], [spec]), {}, [record])
    if mode == "headline":
        assert record.accuracy == pytest.approx(100 * mean)
        assert "linear evaluation of the frozen pretrained backbone" in text
        assert "beside the paper's online classifier" not in text
    else:
        assert 0.0 <= history_probe <= 1.0
        assert "detached linear classifier" in text
        section = text.split("## Linear evaluation (beside the paper's online classifier above)")
        assert len(section) == 2
        assert f"{100 * mean:.1f} (n=1)" in section[1]


def test_editing_a_linear_protocol_reruns_the_runs_it_evaluates(tmp_path: Path) -> None:
    """The linear config is part of a linearly evaluated run's identity: an edit gives new run
    ids (the old records are then left out as an older configuration), and a run planned
    before the edit refuses to train under the edited protocol."""
    table = _table(tmp_path, "headline")
    profile = table.profiles["local"]
    (before,) = plan_runs(table, profile)
    protocol = table.experiments_dir / "linear_fashion.yaml"
    protocol.write_text(protocol.read_text().replace("max_epochs: 100", "max_epochs: 50"))
    (after,) = plan_runs(table, profile)
    assert after.run_id != before.run_id and after.cell == before.cell
    with pytest.raises(runner.SettingsChanged, match="no longer resolves"):
        runner.run_one(before, tmp_path / "out")
    # Without a linear evaluation the protocol is no part of a run: the edit changes nothing.
    unevaluated = dataclasses.replace(table, linear_eval="none")
    (plain,) = plan_runs(unevaluated, profile)
    protocol.write_text(protocol.read_text().replace("max_epochs: 50", "max_epochs: 20"))
    assert plan_runs(unevaluated, profile)[0].run_id == plain.run_id


def test_a_missing_linear_protocol_is_named(tmp_path: Path) -> None:
    table = _table(tmp_path, "headline")
    (table.experiments_dir / "linear_fashion.yaml").unlink()
    (spec,) = plan_runs(table, table.profiles["local"])
    with pytest.raises(FileNotFoundError, match=r"linear_fashion\.yaml, which does not exist"):
        runner.run_one(spec, tmp_path / "out")
    assert runner.latest_checkpoint(runner.run_dir(tmp_path / "out", spec)) is None  # untrained
