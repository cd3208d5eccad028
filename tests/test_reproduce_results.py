"""Committed results regenerate: each ``results/<profile>/<table>/`` folder's table equals,
byte for byte, what ``--report-only`` renders from its records and provenance.json.

Every committed folder is checked, and always one more written here from synthetic records
(``tests.reproduce_testing``) the way a sweep writes it, so the mechanism is tested even
before any results are committed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ssl_geom.reproduce import results, sweep
from ssl_geom.reproduce.__main__ import main as reproduce_main
from ssl_geom.reproduce.records import write_record
from ssl_geom.reproduce.results import PROVENANCE_FILE, read_provenance
from ssl_geom.reproduce.tables import TABLES
from tests.reproduce_testing import planning_profile, synthetic_records

RESULTS = Path(__file__).resolve().parents[1] / "results"
COMMITTED = sorted(path.parent for path in RESULTS.glob(f"*/*/{PROVENANCE_FILE}"))


def _synthetic_folder(
    root: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None = None
) -> Path:
    """``root/local/table1`` as a sweep writes it, from synthetic records (some of commit
    "def"): the sweep itself writes table and provenance, its runs without records reported
    busy (nothing trains) and its data taken as present; ``limit`` is the sweep's."""
    out = root / "local" / "table1"
    table = TABLES["table1"]
    specs = sweep.plan_runs(table, planning_profile(table, "local"))
    for record in synthetic_records(table, specs):
        write_record(out / "records", record)
    with monkeypatch.context() as patched:
        patched.setattr(sweep, "check_data", lambda spec: None)
        patched.setattr(
            sweep, "_launch", lambda todo, *args: {spec.run_id: "busy" for spec in todo}
        )
        patched.setattr(results, "git_commit", lambda: "abc")
        sweep.sweep("table1", "local", out, limit=limit)
    return out


def _regenerates(folder: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--report-only from a copy of ``folder`` (with its sibling tables, where a selecting
    table's choice is read) rewrites its table with the same bytes, whatever the checkout's
    commit is now."""
    provenance = json.loads((folder / PROVENANCE_FILE).read_text())
    table, profile = provenance["table"], provenance["profile"]
    copy = scratch / folder.parent.name / folder.name
    shutil.copytree(folder.parent, copy.parent)
    monkeypatch.setattr(results, "git_commit", lambda: "another-commit")
    reproduce_main([table, "--profile", profile, "--out", str(copy), "--report-only"])
    assert (copy / f"{table}.md").read_bytes() == (folder / f"{table}.md").read_bytes(), (
        f"{folder / (table + '.md')} does not regenerate from its records; run the "
        f"sweep again (python -m ssl_geom.reproduce {table} --profile {profile} --out "
        f"{folder}) and commit the folder"
    )


@pytest.mark.parametrize("folder", COMMITTED, ids=map(str, COMMITTED))
def test_a_committed_results_folder_regenerates_its_table_byte_for_byte(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _regenerates(folder, tmp_path, monkeypatch)


@pytest.mark.parametrize("limit", [None, 5])
def test_a_swept_folder_regenerates_its_table_byte_for_byte(
    limit: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also after ``--limit 5``: the folder holds records of every planned run, so a report
    of the whole plan would differ from the sweep's table of the first 5."""
    folder = _synthetic_folder(tmp_path / "swept", monkeypatch, limit)
    _regenerates(folder, tmp_path / "copy", monkeypatch)


def test_the_table_names_the_provenance_commit_and_marks_records_of_other_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (_synthetic_folder(tmp_path, monkeypatch) / "table1.md").read_text()
    assert "abc" in text and "def" in text and "†" in text


def test_report_only_refuses_a_folder_without_provenance_or_of_another_table(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match=r"python -m ssl_geom\.reproduce table1"):
        read_provenance(tmp_path, "table1", "local")
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps({"table": "rank", "profile": "gpu"}))
    with pytest.raises(ValueError, match="written by rank --profile gpu, not table1"):
        read_provenance(tmp_path, "table1", "local")
