"""Records, planning and reporting of the table-reproduction machinery (no training here)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from pathlib import Path

import pytest

from ssl_geom.reproduce.plan import plan_cells, plan_runs
from ssl_geom.reproduce.records import (
    FailureRecord,
    RunRecord,
    UnreadableRecordError,
    load_failures,
    load_records,
    scan_failures,
    scan_records,
    write_failure,
    write_record,
)
from ssl_geom.reproduce.report import aggregate, render_markdown, render_plot, select_records
from ssl_geom.reproduce.tables import TABLES, get_table
from ssl_geom.reproduce.tables.care import CARE_TABLE
from ssl_geom.reproduce.tables.hssl import TABLE1, TABLE2
from tests.reproduce_testing import planning_profile, run_record


@pytest.fixture
def fast_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in for the LightningCLI parse (seconds per config on 2 busy cores): the file's
    text and the overrides, which change exactly when the real resolved config can.

    The real parse is exercised in test_reproduce_sweep.py.
    """
    import ssl_geom.reproduce.plan as plan

    def resolve(config: str, overrides: tuple[str, ...]) -> dict:
        return {"text": Path(config).read_text(), "overrides": list(overrides), "data": {}}

    monkeypatch.setattr(plan, "resolve_config", resolve)


def _record(run_id: str, key: str, method: str, seed: int, acc: float) -> RunRecord:
    row = {"dataset": "MNIST", "transformation": "Rotation", "backbone": "Rot-Eq.", "key": key}
    return run_record(run_id, row, method, seed, acc)


def test_record_round_trips_and_is_never_overwritten(tmp_path: Path) -> None:
    record = _record("r1", "mnist_rotation", "H-SSL", 0, 70.0)
    path = write_record(tmp_path, record)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_record(tmp_path, _record("r1", "mnist_rotation", "H-SSL", 0, 10.0))
    assert path.read_bytes() == before
    assert load_records(tmp_path) == [record]
    # No temp files are left behind by a successful write.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r1.json"]


def test_concurrent_writers_leave_exactly_one_intact_record(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def write(acc: float) -> None:
        try:
            write_record(tmp_path, _record("same", "k", "H-SSL", 0, acc))
        except FileExistsError as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(float(i),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 7  # every writer but one was refused
    (record,) = load_records(tmp_path)
    assert json.loads((tmp_path / "same.json").read_text())["accuracy"] == record.accuracy


def test_load_ignores_half_written_temp_files(tmp_path: Path) -> None:
    write_record(tmp_path, _record("r1", "k", "H-SSL", 0, 1.0))
    (tmp_path / ".r2.abc.tmp").write_text("{ half")
    assert [r.run_id for r in load_records(tmp_path)] == ["r1"]


def test_plan_covers_the_grid_and_ids_change_with_settings(fast_resolve: None) -> None:
    local = plan_runs(TABLE1, TABLE1.profiles["local"])
    # 8 rows x 4 methods, as in the paper's Table 1 layout; every row runs the profile's seeds.
    seeds = TABLE1.profiles["local"].seeds
    assert len(local) == 8 * 4 * len(seeds)
    assert all({s.seed for s in local if s.row.key == row.key} == set(seeds) for row in TABLE1.rows)
    assert len({s.run_id for s in local}) == len(local)
    paper = plan_runs(TABLE1, TABLE1.profiles["paper"])
    assert len(paper) == 8 * 4 * 3
    # The same cell under another budget is another run, never a reused record.
    assert not {s.run_id for s in local} & {s.run_id for s in paper}
    mnist = [s for s in local if s.row.key == "mnist_rotation"]
    assert {s.row_label for s in mnist} == {"Fashion-MNIST (stand-in for MNIST)"}
    assert all("--data.variant=fashion" in s.overrides for s in mnist)
    assert all(
        s.config.endswith(f"{TABLE1.method_prefix[s.method]}_mnist_rotation.yaml") for s in mnist
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"row_overrides": {"nope": ("--x=1",)}}, r"row_overrides for rows \['nope'\]"),
        ({"seeds": ()}, r"profile 'local' of table 'table1' has no seeds"),
    ],
)
def test_per_row_settings_for_unplanned_rows_or_no_seeds_are_refused(
    change: dict, message: str
) -> None:
    profile = dataclasses.replace(TABLE1.profiles["local"], **change)
    with pytest.raises(ValueError, match=message):
        plan_cells(TABLE1, profile)


def test_every_planned_config_exists_in_experiments() -> None:
    for table in TABLES.values():
        for profile in table.profiles.values():
            for cell in plan_cells(table, profile):
                assert Path(cell.config).is_file(), f"{table.name}/{profile.name}: {cell.config}"


def test_aggregate_mean_and_sample_std(fast_resolve: None) -> None:
    specs = [
        s
        for s in plan_runs(TABLE1, TABLE1.profiles["paper"])
        if s.row.key == "mnist_rotation" and s.method == "H-SSL"
    ]
    records = [
        _record(s.run_id, "mnist_rotation", "H-SSL", s.seed, acc)
        for s, acc in zip(specs, (70.0, 72.0, 74.0), strict=True)
    ]
    records.append(_record("not-planned", "mnist_rotation", "H-SSL", 9, 0.0))
    cell = aggregate(records, specs)[("mnist_rotation", "H-SSL")]
    # mean of 70, 72, 74 = 72; sample std = sqrt(((-2)^2 + 0 + 2^2) / (3 - 1)) = 2.
    assert cell.mean == pytest.approx(72.0)
    assert cell.std == pytest.approx(2.0)
    assert cell.text() == "72.0 ± 2.0 (n=3)"


def test_markdown_shows_ours_paper_and_missing_data(tmp_path: Path, fast_resolve: None) -> None:
    profile = TABLE2.profiles["local"]
    specs = plan_runs(TABLE2, profile)
    mlp = [s for s in specs if s.row.key == "mnist_mlp" and s.method == "A-SSL" and s.seed < 2]
    records = [_record(s.run_id, "mnist_mlp", "A-SSL", s.seed, 80.0 + s.seed) for s in mlp]
    cells = aggregate(records, specs)
    text = render_markdown(
        TABLE2, profile, specs, cells, missing={"cifar10_cnn6x": "/data/cifar-10-batches-py"}
    )
    line = next(ln for ln in text.splitlines() if ln.startswith("| Fashion-MNIST") and "MLP" in ln)
    # Seeds 0 and 1 give 80 and 81: mean 80.5, sample std 0.7; paper A-SSL MLP is 87.6 ± 0.2.
    assert "80.5 ± 0.7 (n=2) / *87.6 ± 0.2*" in line
    assert "not run yet / *58.2 ± 0.5*" in line
    cifar = next(ln for ln in text.splitlines() if ln.startswith("| CIFAR10"))
    assert cifar.count("data not found at /data/cifar-10-batches-py") == 4
    assert profile.description in text and TABLE2.citation in text
    render_plot(TABLE2, specs, cells, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_unknown_table_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="care, care_lambda, rank, table1, table2"):
        get_table("table9")


def test_missing_data_note_lists_every_place_looked_at_even_relative_ones() -> None:
    from ssl_geom.data.errors import DatasetNotFoundError
    from ssl_geom.reproduce.sweep import _path_from_error

    error = DatasetNotFoundError(
        "CIFAR-10",
        ["data/cifar-10-batches-py", "/srv/data/cifar-10-batches-py"],
        ["data_batch_1"],
        "pass download=True",
    )
    assert _path_from_error(str(error)) == (
        "data/cifar-10-batches-py or /srv/data/cifar-10-batches-py"
    )
    assert _path_from_error("no such folder: x\nmore") == "no such folder: x"


def test_failures_keep_every_attempt_and_report_the_latest(tmp_path: Path) -> None:
    def failure(created: float, message: str) -> FailureRecord:
        return FailureRecord(
            run_id="r1",
            cell="k__hssl__seed0",
            table="table2",
            method="H-SSL",
            seed=0,
            row_key="k",
            error_type="DivergedError",
            message=message,
            git_commit="abc",
            wall_time_s=1.0,
            created=created,
        )

    write_failure(tmp_path, failure(1.0, "loss is nan at step 3"))
    write_failure(tmp_path, failure(2.0, "loss is inf at step 9"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r1.attempt1.json",
        "r1.attempt2.json",
    ]
    assert load_failures(tmp_path)["r1"].message == "loss is inf at step 9"


def test_report_leaves_out_older_settings_flags_other_commits_and_lists_failures(
    fast_resolve: None,
) -> None:
    profile = TABLE2.profiles["local"]
    specs = plan_runs(TABLE2, profile)
    mlp = [s for s in specs if s.row.key == "mnist_mlp" and s.method == "A-SSL"]
    current = _record(mlp[0].run_id, "mnist_mlp", "A-SSL", 0, 80.0)
    current.git_commit = "old0001"
    # Same cell and seed as a planned run, other settings hash: an edited config's record.
    outdated = _record(f"{mlp[0].cell}__0123456789", "mnist_mlp", "A-SSL", 0, 10.0)
    outdated.cell = mlp[0].cell
    elsewhere = _record("mnist_mlp__assl__seed0__aaaa", "mnist_mlp", "A-SSL", 0, 20.0)
    elsewhere.profile = "paper"
    records = [current, outdated, elsewhere]
    selection = select_records(records, specs)
    assert (selection.current, selection.outdated, selection.other) == (
        [current],
        [outdated],
        [elsewhere],
    )
    failure = FailureRecord(
        run_id=mlp[1].run_id,
        cell=mlp[1].cell,
        table="table2",
        method="A-SSL",
        seed=1,
        row_key="mnist_mlp",
        error_type="DivergedError",
        message="non-finite loss nan at step 12",
        git_commit="new0002",
        wall_time_s=3.0,
        created=1.0,
    )
    text = render_markdown(
        TABLE2,
        profile,
        specs,
        aggregate(records, specs),
        missing={},
        records=records,
        failures={failure.run_id: failure},
        current_commit="new0002",
    )
    line = next(ln for ln in text.splitlines() if ln.startswith("| Fashion-MNIST") and "MLP" in ln)
    # Only the current record counts (80.0, not the outdated 10.0), from another commit (†),
    # and the failed seed is named in the cell.
    assert "80.0 (n=1), 1 failed † / *87.6 ± 0.2*" in line
    assert "1 records left out: their cell's configuration changed" in text
    assert "1 records left out: they belong to cells or profiles" in text
    assert "produced by commit(s) `old0001`; current commit `new0002`" in text
    assert f"- `{mlp[1].run_id}`: DivergedError: non-finite loss nan at step 12" in text
    assert "## Claims" in text and "without equivariant structure" in text


def test_care_table_shows_test_set_geometry_beside_accuracy(fast_resolve: None) -> None:
    profile = planning_profile(CARE_TABLE, "local")
    specs = plan_runs(CARE_TABLE, profile)
    simclr = [s for s in specs if s.method == "SimCLR"]
    records = []
    for spec, wahba in zip(simclr[:2], (11.0, 13.0), strict=True):
        record = _record(spec.run_id, "fashion", "SimCLR", spec.seed, 70.0)
        record.metrics = {"geometry/wahba_error_test": wahba, "geometry/gamma_f_test": 0.5}
        records.append(record)
    text = render_markdown(CARE_TABLE, profile, specs, aggregate(records, specs), {}, records)
    wahba = text.split("## Wahba error of the final encoder on the test set")[1]
    line = next(ln for ln in wahba.splitlines() if ln.startswith("| Fashion-MNIST"))
    # SimCLR: mean of 11 and 13 = 12, sample std sqrt(2) = 1.4; the others logged nothing.
    assert line == "| Fashion-MNIST | SimCLR augmentations | 12 ± 1.4 (n=2) | — | — | — |"
    assert "## Relative equivariance γ_f of the final encoder on the test set" in text


def test_care_lambda_sweep_plans_one_column_per_lambda(fast_resolve: None) -> None:
    from ssl_geom.reproduce.tables.care import CARE_LAMBDA_TABLE, CARE_LAMBDAS

    specs = plan_runs(CARE_LAMBDA_TABLE, CARE_LAMBDA_TABLE.profiles["local"])
    by_method: dict[str, list] = {}
    for spec in specs:
        by_method.setdefault(spec.method, []).append(spec)
    assert list(by_method) == ["SimCLR", *(f"CARE λ={lam:g}" for lam in CARE_LAMBDAS)]
    for method, runs in by_method.items():
        assert [s.seed for s in runs] == [0, 1, 2]
        weights = [o for o in runs[0].overrides if o.startswith("--model.equivariance_weight=")]
        if method == "SimCLR":
            assert weights == [] and runs[0].config.endswith("simclr_fashion.yaml")
        else:
            # The column's own lambda, and nothing else sets it (the CARE table's 0.1 is absent).
            assert weights == [f"--model.equivariance_weight={method.split('=')[1]}"]
            assert runs[0].config.endswith("care_simclr_fashion.yaml")
    ids = [s.run_id for s in specs]
    assert len(set(ids)) == len(ids)
    # File-safe ids: "CARE λ=0.01" becomes "care0.01".
    assert all(re.fullmatch(r"[a-z0-9_.]+", i) for i in ids), ids
    assert any(i.startswith("fashion__care0.01__seed0__") for i in ids)


def test_hand_edited_records_are_named_and_left_out_not_raised_as_type_errors(
    tmp_path: Path,
) -> None:
    """Issue 24 item 8: an extra key or ``"accuracy": "n/a"`` gave a bare TypeError (from
    ``RunRecord(**data)``, or from the mean over a string). Now each bad file is reported with
    its path and why, and the good records are still read."""
    good = _record("r1", "k", "H-SSL", 0, 70.0)
    write_record(tmp_path, good)
    fields = json.loads(good.to_json())
    edits = {
        "extra": {**fields, "run_id": "extra", "note": "rerun later"},
        "na": {**fields, "run_id": "na", "accuracy": "n/a"},
        "flag": {**fields, "run_id": "flag", "seed": True},  # JSON true is no seed number
        "copy": fields,  # r1's record under another name would count twice
    }
    for name, data in edits.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    failures = tmp_path / "failures"
    failures.mkdir()
    (failures / "r2.attempt1.json").write_text("{")

    with pytest.raises(UnreadableRecordError, match=rf"{tmp_path}/copy.json: .*move it out"):
        load_records(tmp_path)
    scan = scan_records(tmp_path)
    assert scan.records == [good]
    reasons = {file.path.name: file.reason for file in scan.unreadable}
    assert reasons == {
        "copy.json": "it holds run 'r1' under another name (a record is <run_id>.json; a copy "
        "or renamed file would be counted twice)",
        "extra.json": "unknown field(s) ['note'] of a RunRecord (hand-edited, or written by "
        "another version of ssl_geom)",
        "flag.json": "field 'seed' is True, expected int",
        "na.json": "field 'accuracy' is 'n/a', expected float",
    }
    latest, unreadable = scan_failures(failures)
    assert latest == {} and [f.path.name for f in unreadable] == ["r2.attempt1.json"]
    with pytest.raises(UnreadableRecordError, match=r"r2\.attempt1\.json: not readable as JSON"):
        load_failures(failures)
