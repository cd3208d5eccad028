"""The callbacks examples in the docs: the complete one runs, the README's short one stays true.

docs/callbacks.md holds the complete example ("Use the callbacks in your own project"), which
is executed here and must log every metric. README.md shows a few lines of it (a Trainer with
callbacks, on the reader's own model), which cannot run on their own: what is checked is that
they parse, that their imports resolve (so a renamed callback breaks this test), and that the
section points to the complete example.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_callbacks import expected_names

ROOT = Path(__file__).resolve().parents[1]
DOCS_HEADING = "## Use the callbacks in your own project"
README_HEADING = "## Geometry callbacks in your own project"


def section(path: Path, heading: str) -> str:
    """The text after ``heading`` up to the next ``## `` heading."""
    text = path.read_text(encoding="utf-8")
    if heading not in text:
        raise AssertionError(f"{path.name} has no section {heading!r}")
    return re.split(r"^## ", text.split(heading, 1)[1], maxsplit=1, flags=re.MULTILINE)[0]


def python_block(path: Path, heading: str) -> str:
    """The first ```python block of the section ``heading``."""
    match = re.search(r"```python\n(.*?)```", section(path, heading), flags=re.DOTALL)
    if match is None:
        raise AssertionError(f"{path.name}: the section {heading!r} has no ```python block")
    return match.group(1)


def test_the_complete_example_runs_and_logs_every_metric(tmp_path, monkeypatch) -> None:
    code = python_block(ROOT / "docs" / "callbacks.md", DOCS_HEADING)
    monkeypatch.chdir(tmp_path)  # the snippet's logger writes lightning_logs/ here
    namespace: dict = {"__name__": "__snippet__"}
    exec(compile(code, "callbacks.md:snippet", "exec"), namespace)
    logged = namespace["trainer"].callback_metrics
    # The example's batches are (x, y): no coarse labels, so no coarse label match.
    names = [name for name in expected_names() if name != "geometry/label_match_coarse"]
    for name in names:
        assert name in logged, f"callbacks.md snippet did not log {name}"
        assert 0 <= float(logged[name]) < float("inf")
    assert (tmp_path / "lightning_logs").is_dir()


def test_the_readme_snippet_imports_real_callbacks_and_links_the_complete_one() -> None:
    readme = ROOT / "README.md"
    tree = ast.parse(python_block(readme, README_HEADING), filename="README.md:snippet")
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    from_callbacks = [
        alias.name
        for node in imports
        if isinstance(node, ast.ImportFrom) and node.module == "ssl_geom.callbacks"
        for alias in node.names
    ]
    assert from_callbacks, "the README snippet should import from ssl_geom.callbacks"
    namespace: dict = {}
    exec(compile(ast.Module(body=imports, type_ignores=[]), "README.md:imports", "exec"), namespace)
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert set(from_callbacks) <= called, "the snippet imports callbacks it does not attach"
    assert "(docs/callbacks.md)" in section(readme, README_HEADING)
