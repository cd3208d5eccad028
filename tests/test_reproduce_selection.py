"""CARE's local λ is selected on a validation split by the λ sweep, never on the test split.

Records here are synthetic: each candidate's validation and test accuracies are set by hand so
that the two splits would pick different values, which shows which one the selector reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ssl_geom.reproduce.plan import plan_runs
from ssl_geom.reproduce.records import LINEAR_METRIC, RunRecord
from ssl_geom.reproduce.report import render_markdown
from ssl_geom.reproduce.selection import (
    SELECTION_FILE,
    SelectedSetting,
    SelectionError,
    resolve_profile,
    select_setting,
    selection_path,
    write_selection,
)
from ssl_geom.reproduce.sweep import profile_of
from ssl_geom.reproduce.tables import get_table
from tests.reproduce_testing import run_record

SWEEP = get_table("care_lambda")
CARE = get_table("care")
ROW = {"dataset": "Fashion-MNIST", "transformation": "SimCLR augmentations", "key": "fashion"}


def record(column: str, seed: int, val: float, test: float, held_out: int | None = 5000):
    data = {"init_args": {"val_samples": held_out}} if held_out is not None else {}
    linear = {"metrics": {"linear/val_acc": val / 100, LINEAR_METRIC: test / 100}}
    return run_record(
        f"{column}-{seed}",
        ROW,
        column,
        seed,
        test,
        table="care_lambda",
        settings={"linear_eval": linear, "resolved_config": {"data": data}},
    )


def sweep_records(val: dict[float, float], test: dict[float, float], **kw) -> list[RunRecord]:
    """Two seeds per candidate; seed 1 scores one point above seed 0."""
    return [
        record(column, seed, val[lam] + seed, test[lam] + seed, **kw)
        for column, lam in SWEEP.selects.values.items()
        for seed in (0, 1)
    ]


# Validation favours λ = 0.1, the test split λ = 1: the selector must follow validation.
VAL = {0.001: 70.0, 0.01: 71.0, 0.1: 73.0, 1.0: 72.0}
TEST = {0.001: 60.0, 0.01: 61.0, 0.1: 62.0, 1.0: 69.0}


def test_the_candidate_with_the_best_mean_validation_accuracy_is_chosen_whatever_the_test_split_says() -> (
    None
):
    chosen = select_setting(SWEEP, "local", sweep_records(VAL, TEST))
    assert (chosen.chosen, chosen.value) == ("CARE λ=0.1", 0.1)
    # Means over the two seeds, in percent: 73 and 74 average to 73.5.
    assert {c.value: c.mean for c in chosen.candidates} == {
        0.001: 70.5,
        0.01: 71.5,
        0.1: 73.5,
        1.0: 72.5,
    }
    assert chosen.validation_images == 5000 and "test split is never read" in chosen.criterion()


def test_a_run_validated_on_the_test_split_is_refused() -> None:
    """Without held-out images the DataModule validates on the test split (val_samples unset):
    such a run's linear/val_acc is test accuracy, and the selector must not use it."""
    records = sweep_records(VAL, TEST, held_out=None)
    with pytest.raises(SelectionError, match="measured on the test split"):
        select_setting(SWEEP, "local", records)


def test_every_candidate_needs_a_run_and_one_validation_split() -> None:
    records = [r for r in sweep_records(VAL, TEST) if r.method != "CARE λ=1"]
    with pytest.raises(SelectionError, match="no finished run of 'CARE λ=1'"):
        select_setting(SWEEP, "local", records)
    mixed = sweep_records(VAL, TEST)
    mixed[0] = record(mixed[0].method, 0, 70.0, 60.0, held_out=100)
    with pytest.raises(
        SelectionError, match=r"different numbers of held-out images \(\[100, 5000\]\)"
    ):
        select_setting(SWEEP, "local", mixed)


def test_equal_means_go_to_the_first_candidate_in_grid_order() -> None:
    tied = dict.fromkeys(VAL, 70.0)
    assert select_setting(SWEEP, "local", sweep_records(tied, TEST)).value == 0.001


def test_the_care_table_trains_its_care_columns_with_the_selected_value(tmp_path: Path) -> None:
    chosen = select_setting(SWEEP, "local", sweep_records(VAL, TEST))
    write_selection(tmp_path / "care_lambda", chosen)
    profile = profile_of("care", "local", tmp_path / "care")
    assert profile.uses_selection is None
    for method in ("CARE-SimCLR", "CARE-MoCo-v2"):
        assert profile.method_overrides[method][-1] == "--model.equivariance_weight=0.1"
    assert "SimCLR" not in profile.method_overrides  # the base methods have no λ
    assert "CARE's λ = 0.1, selected by table care_lambda" in profile.description
    # The file round-trips exactly.
    path = selection_path(tmp_path / "care", "care_lambda")
    assert SelectedSetting.from_json(path.read_text()) == chosen


def test_the_care_table_cannot_be_planned_before_its_value_is_selected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make reproduce-care-lambda"):
        profile_of("care", "local", tmp_path / "care")
    with pytest.raises(ValueError, match="apply that selection first"):
        plan_runs(CARE, CARE.profiles["local"])


def test_a_selection_of_another_profile_is_refused(tmp_path: Path) -> None:
    chosen = select_setting(SWEEP, "gpu", sweep_records(VAL, TEST))
    write_selection(tmp_path / "care_lambda", chosen)
    with pytest.raises(ValueError, match="care_lambda/gpu, expected care_lambda/local"):
        resolve_profile(CARE.profiles["local"], tmp_path / "care")


def test_the_sweeps_table_shows_what_it_chose_and_how() -> None:
    chosen = select_setting(SWEEP, "local", sweep_records(VAL, TEST))
    profile = SWEEP.profiles["local"]
    text = render_markdown(SWEEP, profile, [], {}, {}, [], selected=chosen)
    assert "## Selection" in text
    assert (
        "CARE's λ = **0.1** (CARE λ=0.1), chosen by highest mean over seeds of linear/val_acc"
        in text
    )
    assert "| CARE λ=0.1 ← chosen | 0.1 | 73.50 | 2 |" in text
    not_yet = render_markdown(SWEEP, profile, [], {}, {}, [], selected="no finished run")
    assert "Not made yet: no finished run" in not_yet


def test_the_sweep_holds_out_validation_images_in_every_profile_that_selects() -> None:
    for name, profile in SWEEP.profiles.items():
        assert "--data.val_samples=5000" in profile.overrides, name
    assert dataclasses.asdict(SWEEP.selects)["values"] == {
        "CARE λ=0.001": 0.001,
        "CARE λ=0.01": 0.01,
        "CARE λ=0.1": 0.1,
        "CARE λ=1": 1.0,
    }
    assert SELECTION_FILE == "selection.json"
