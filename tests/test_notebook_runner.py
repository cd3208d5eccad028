"""``python notebooks/runner.py`` writes a notebook only once every cell has run.

Each test starts one ``python3`` kernel on a notebook of one or two cells (a few seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from notebooks.runner import NotebookExecutionError, count_figures, main, run_in_place


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# a title")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


def test_a_failing_cell_leaves_the_notebook_byte_identical_and_is_named(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "broken.ipynb", "x = 1\nprint(x)", "y = 2\nraise ValueError('bad parameter')"
    )
    before = path.read_bytes()
    with pytest.raises(NotebookExecutionError) as failure:
        run_in_place(path, timeout_s=60)
    message = str(failure.value)
    assert str(path) in message
    assert "cell 3 of 3 ('y = 2')" in message  # the markdown title is cell 1
    assert "ValueError" in message and "bad parameter" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb"]  # no temporary left
    # The command line says the same on stderr and exits non-zero.
    assert main([str(path), "--timeout", "60"]) == 1
    assert path.read_bytes() == before


def test_an_executed_notebook_is_written_with_its_outputs_and_no_timing(tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "tiny.ipynb",
        "import sys\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(2, 1))\nax.plot([0, 1])\nprint(sys.prefix, fig.dpi)",
    )
    path.chmod(0o640)
    run_in_place(path, dpi=50, timeout_s=60)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    (cell,) = (c for c in nb.cells if c.cell_type == "code")
    assert cell.execution_count == 1
    (stream,) = (o for o in cell.outputs if o.output_type == "stream")
    # The kernel runs this interpreter's environment, and the inline backend the given dpi.
    assert stream.text.split() == [sys.prefix, "50.0"]
    assert count_figures(nb) == 1
    assert "execution" not in cell.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3" and "widgets" not in nb.metadata
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ipynb"]
