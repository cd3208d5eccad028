"""Every table's planned runs and rendered text, pinned against fixtures in tests/data/.

A run's id hashes its resolved settings (plan.settings_hash), so an id that changes makes
every sweep retrain that run and leave its old record out of the table. A refactor of the
tables must therefore keep every id; a change that means to change them (a new override, an
edited config, a new default of a model or DataModule) updates the fixture deliberately:
``python -m tests.reproduce_testing`` rewrites it, and its diff shows which runs move.
"""

from __future__ import annotations

import json

import pytest

from ssl_geom.reproduce import plan
from ssl_geom.reproduce.tables import TABLES
from tests.reproduce_testing import (
    PLANNED_RUN_IDS,
    RENDERED_TABLES,
    config_free_resolve,
    planned_run_ids,
    render_synthetic,
)

_CHANGED = (
    "the planned run ids of {} differ from tests/data/planned_run_ids.json: every sweep would "
    "retrain these runs and leave their records out. If the change is intended, rewrite the "
    "fixture with `python -m tests.reproduce_testing` and commit its diff"
)


def _pinned(profiles: tuple[str, ...] | None) -> dict[str, list[str]]:
    pinned = json.loads(PLANNED_RUN_IDS.read_text())
    return {
        key: ids for key, ids in pinned.items() if profiles is None or key.split("/")[1] in profiles
    }


def _assert_same_ids(planned: dict[str, list[str]], pinned: dict[str, list[str]]) -> None:
    assert sorted(planned) == sorted(pinned), _CHANGED.format("the table x profile list")
    for key, ids in planned.items():
        assert ids == pinned[key], _CHANGED.format(key)


def test_local_profiles_plan_the_pinned_run_ids() -> None:
    _assert_same_ids(planned_run_ids(("local",)), _pinned(("local",)))


@pytest.mark.slow
def test_every_profile_plans_the_pinned_run_ids() -> None:
    _assert_same_ids(planned_run_ids(), _pinned(None))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_render_the_pinned_text(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same records give the same table, byte for byte: rows, published numbers, claims,
    profile description and captions (records drawn by tests.reproduce_testing)."""
    monkeypatch.setattr(plan, "resolve_config", config_free_resolve)
    expected = (RENDERED_TABLES / f"{name}.local.md").read_text()
    assert render_synthetic(TABLES[name], "local") == expected, (
        f"{name}'s rendered table differs from tests/data/rendered_tables/{name}.local.md; if "
        "the change is intended, rewrite it with `python -m tests.reproduce_testing`"
    )
