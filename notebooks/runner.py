"""``make notebooks``: execute the notebooks in place, so they are committed with their figures.

A reader on GitHub sees only what a notebook stores, so ``notebooks/*.ipynb`` are committed
executed on their own default parameters (real Fashion-MNIST, the budgets of their
``parameters`` cells). ``python notebooks/runner.py notebooks/*.ipynb`` re-runs them the
same way every time:

- the kernel is ``python3``, which jupyter_client starts with this interpreter (so it imports the
  same ``ssl_geom``), in the directory the command is started from: for ``make notebooks`` the
  checkout root, so the notebooks' relative ``LOG_DIR`` and ``./data`` resolve as they do for
  ``make demo`` (``runs/`` is git-ignored) and the training logs stay for TensorBoard;
- figures are PNGs at a modest dpi (the inline backend's ``figure.dpi``, set on the kernel's
  command line, so no extra cell is run or saved), which keeps a regenerated notebook small
  enough to diff;
- stream outputs are merged and progress bars' carriage returns collapsed to their last state;
  execution timing and widget state are not stored (they change on every run and tell a reader
  nothing); the notebook-level metadata stays the notebook's own; execution counts are kept;
- a cell that raises, or runs past the per-cell timeout, stops the run with an error naming the
  notebook and the cell, and the file is left as it was: the executed notebook replaces the
  original only once every cell has run, in one atomic step that keeps the file's permissions
  (:func:`ssl_geom.io.write_atomic`).

It lives beside the notebooks, not in the installed package, because it needs the dev-only
``nbclient`` and ``nbformat``. ``tests/test_notebooks.py`` executes the same notebooks on tiny
fake data instead.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from ssl_geom.io import write_atomic

DEFAULT_DPI = 72
# Per cell. The longest cell (projector_geometry's three training runs) takes about 13 minutes
# on 2 idle CPU cores; the margin covers a machine busy with other jobs.
DEFAULT_TIMEOUT_S = 3600
# Cell metadata that records when a cell ran: nbclient's "execution" (also JupyterLab's, when
# its timing option is on) and the ExecuteTime extension's.
TIMING_METADATA = ("execution", "ExecuteTime")


class NotebookExecutionError(RuntimeError):
    """A notebook's cell failed (raised, timed out or killed its kernel); the file is unchanged."""


def _describe_cell(nb: nbformat.NotebookNode, index: int) -> str:
    """``cell 5 of 12 ('def train(...')``: where a reader finds the cell in the notebook."""
    first_line = nb.cells[index].source.strip().splitlines()[0]
    return f"cell {index + 1} of {len(nb.cells)} ({first_line!r})"


def execute_notebook(
    path: Path,
    *,
    dpi: int = DEFAULT_DPI,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` in a fresh kernel and return it with its outputs.

    The kernel runs in this process's working directory. The file is not written. Raises :class:`NotebookExecutionError` naming the notebook and the failed cell.
    """
    nb = nbformat.read(path, as_version=4)
    own_metadata = copy.deepcopy(nb.metadata)
    running: list[int] = []  # index of the cell being executed, for the error message

    def on_cell_execute(cell: nbformat.NotebookNode, cell_index: int) -> None:
        running[:] = [cell_index]

    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout_s,
        resources={"metadata": {"path": str(Path.cwd())}},
        record_timing=False,
        store_widget_state=False,
        coalesce_streams=True,
        extra_arguments=[f"--InlineBackend.rc={{'figure.dpi': {dpi}}}"],
        on_cell_execute=on_cell_execute,
    )
    # An inherited MPLBACKEND (agg in CI) would replace the inline backend: no figures.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        if isinstance(error, CellTimeoutError):
            fix = f"raise --timeout (now {timeout_s} s per cell) and run again"
        elif isinstance(error, DeadKernelError):
            fix = "the kernel died (out of memory?): lower the notebook's budget and run again"
        else:
            fix = "fix the cell or the notebook's parameters and run again"
        raise NotebookExecutionError(
            f"{path}: {_describe_cell(nb, running[0])} failed, so the notebook was left "
            f"unchanged; {fix}. The error:\n{error}"
        ) from error
    nb.metadata = own_metadata
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in TIMING_METADATA:
            cell.metadata.pop(key, None)
    return nb


def run_in_place(
    path: Path, *, dpi: int = DEFAULT_DPI, timeout_s: int = DEFAULT_TIMEOUT_S
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` and replace the file with the executed notebook."""
    nb = execute_notebook(path, dpi=dpi, timeout_s=timeout_s)
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    write_atomic(path, text if text.endswith("\n") else text + "\n", overwrite=True)
    return nb


def count_figures(nb: nbformat.NotebookNode) -> int:
    """The PNG images a notebook's outputs hold (the figures a reader sees)."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python notebooks/runner.py",
        description="Execute notebooks in place on their own parameters and store the outputs.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files, in order")
    parser.add_argument(
        "--dpi", type=_positive_int, default=DEFAULT_DPI, help="figure dpi (default %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        default=DEFAULT_TIMEOUT_S,
        help="seconds allowed per cell (default %(default)s)",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no notebook at {', '.join(missing)}; give paths to .ipynb files")
    for path in args.notebooks:
        start = time.perf_counter()
        try:
            nb = run_in_place(path, dpi=args.dpi, timeout_s=args.timeout)
        except NotebookExecutionError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(
            f"{path}: executed in {time.perf_counter() - start:.0f} s; "
            f"{count_figures(nb)} figures, {path.stat().st_size / 1024:.0f} KiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
