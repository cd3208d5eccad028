"""The "Use the callbacks in your own project" snippet runs as written and logs every metric.

The snippet lives in docs/callbacks.md and is copied into README.md; every file that has the
section is checked, so the two copies cannot drift into a broken state.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_callbacks import expected_names

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Use the callbacks in your own project"
FILES = [path for path in (ROOT / "README.md", ROOT / "docs" / "callbacks.md") if path.is_file()]


def snippet(path: Path) -> str | None:
    """The first ```python block after HEADING and before the next ``## `` heading."""
    text = path.read_text(encoding="utf-8")
    if HEADING not in text:
        return None
    section = text.split(HEADING, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    if match is None:
        raise AssertionError(f"{path.name}: the section {HEADING!r} has no ```python block")
    return match.group(1)


def test_the_docs_have_the_section() -> None:
    assert snippet(ROOT / "docs" / "callbacks.md") is not None


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_snippet_runs_and_logs_every_metric(path: Path, tmp_path, monkeypatch) -> None:
    code = snippet(path)
    if code is None:
        pytest.skip(f"{path.name} has no section {HEADING!r}")
    monkeypatch.chdir(tmp_path)  # the snippet's logger writes lightning_logs/ here
    namespace: dict = {"__name__": "__snippet__"}
    exec(compile(code, f"{path.name}:snippet", "exec"), namespace)
    logged = namespace["trainer"].callback_metrics
    names = [name for name in expected_names() if name != "geometry/label_match_coarse"]
    for name in names:
        assert name in logged, f"{path.name} snippet did not log {name}"
        assert 0 <= float(logged[name]) < float("inf")
    assert (tmp_path / "lightning_logs").is_dir()
