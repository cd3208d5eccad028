"""Every notebook in notebooks/ runs end to end on tiny fake data, so none can rot.

Each notebook's first code cell is tagged ``parameters``; the test replaces it with a tiny
budget (fake Fashion-MNIST in the real IDX format, a few batches, one or two epochs), runs
the notebook with nbclient in a ``python3`` kernel (jupyter_client starts it with this
interpreter, i.e. the project's virtualenv), and appends one cell that prints the
notebook's ``RESULTS`` as JSON. The assertions check what the notebook computed against
bounds that follow from the definitions (stated next to each), and that it drew figures.
The committed notebooks store the outputs of a real run (``make notebooks``); nbclient
clears a cell's stored outputs before it runs it, so the tiny runs never count them.
A check on the committed files says they are executed, without errors and small to diff.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from notebooks.runner import count_figures
from ssl_geom.data.fake import write_fake_dataset

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MARKER = "__NOTEBOOK_RESULTS__"
TIMEOUT_S = 240  # per cell; the three notebooks take about 15 s each on 2 CPU cores


def tiny_parameters(data_root: Path, log_dir: Path) -> dict[str, str]:
    """The replacement ``parameters`` cell of each notebook."""
    common = (
        "import torch\ntorch.set_num_threads(1)\n"
        f"DATA_ROOT = {str(data_root)!r}\nLOG_DIR = {str(log_dir)!r}\nNUM_WORKERS = 0\nSEED = 0\n"
    )
    return {
        "quickstart": common
        + "MAX_EPOCHS = 2\nMAX_TRAIN_SAMPLES = 256\nMAX_EVAL_SAMPLES = 128\nBATCH_SIZE = 32\n"
        "N_SPLIT = 4\nPROBE_SIZE = 128\nN_AUGMENTATIONS = 3\n",  # ProjectorRank: >= d_enc = 128
        "equivariance": common
        + "CHECKPOINTS = {}\nMAX_EPOCHS = 1\nMAX_TRAIN_SAMPLES = 128\nLIMIT_TRAIN_BATCHES = 4\n"
        "BATCH_SIZE = 32\nN_SAMPLES = 48\nN_DRAWS = 2\n",
        "projector_geometry": common
        + "RUNS = {}\nSTRENGTHS = ['large', 'small']\nMAX_EPOCHS = 2\nMAX_TRAIN_SAMPLES = 128\n"
        "MAX_EVAL_SAMPLES = 64\nLIMIT_TRAIN_BATCHES = 4\nBATCH_SIZE = 32\n",
    }


def all_notebooks() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


# Figures each notebook draws (the tiny runs below demand the same of themselves).
FIGURES = {"quickstart": 1, "equivariance": 2, "projector_geometry": 3}
MAX_PNG_BASE64 = 200_000  # characters of one stored figure (72 dpi: tens of KB)
MAX_NOTEBOOK_BYTES = 1_500_000


def test_every_notebook_has_tiny_parameters(tmp_path: Path) -> None:
    names = all_notebooks()
    assert len(names) >= 3, names
    assert set(names) == set(tiny_parameters(tmp_path, tmp_path)), "add tiny parameters"
    assert set(names) == set(FIGURES), "say how many figures the notebook draws"
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_committed_notebook_is_executed_with_small_figures(name: str) -> None:
    """Committed as ``make notebooks`` leaves them: run top to bottom, no error, small PNGs."""
    path = NOTEBOOKS / f"{name}.ipynb"
    rerun = "run `make notebooks` and commit the notebooks"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path} is too large to diff; lower --dpi"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path}: execution counts {counts}; {rerun}"
    outputs = [o for c in code for o in c.outputs]
    errors = [o.get("ename") for o in outputs if o.output_type == "error"]
    assert not errors, f"{path} stores errors {errors}; {rerun}"
    assert count_figures(nb) >= FIGURES[name], f"{path} stores {count_figures(nb)} figures; {rerun}"
    sizes = [len(o["data"]["image/png"]) for o in outputs if "image/png" in o.get("data", {})]
    assert max(sizes) < MAX_PNG_BASE64, f"{path}: a figure of {max(sizes)} base64 characters"
    # Run-specific metadata would make every regeneration a diff: timing (nbclient's and
    # JupyterLab's "execution", the ExecuteTime extension's) and widget state.
    assert all("execution" not in c.metadata and "ExecuteTime" not in c.metadata for c in code)
    assert "widgets" not in nb.metadata


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_dataset("fashion", tmp_path_factory.mktemp("data"), n_train=256, n_test=96)


def execute(name: str, data_root: Path, work: Path) -> tuple[nbformat.NotebookNode, Any]:
    """Run notebook ``name`` with tiny parameters in ``work``; return it and its RESULTS."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = tiny_parameters(data_root, work / "runs")[name]
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import json, sys\n"
            f"print({MARKER!r} + json.dumps({{'prefix': sys.prefix, 'results': RESULTS}}))"
        )
    )
    client = NotebookClient(
        nb, kernel_name="python3", timeout=TIMEOUT_S, resources={"metadata": {"path": str(work)}}
    )
    # An inherited MPLBACKEND (agg in CI) would replace the inline backend: no figures.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    client.execute(env={**env, "OMP_NUM_THREADS": "1"})
    nbformat.write(nb, work / f"{name}.executed.ipynb")  # to inspect a failure
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    payload = json.loads(text.split(MARKER, 1)[1])
    # The kernel runs in the environment running the tests (the virtualenv: sys.prefix is the
    # venv folder, while a system python's is /usr), so it imports this checkout's ssl_geom.
    assert payload["prefix"] == sys.prefix
    return nb, payload["results"]


def test_quickstart_trains_care_and_plots_its_logged_geometry(fake_root: Path, tmp_path: Path):
    nb, results = execute("quickstart", fake_root, tmp_path)
    assert count_figures(nb) >= 1
    assert all(math.isfinite(v) for v in results.values())
    for acc in ("probe/acc", "knn/acc"):
        assert 0.0 <= results[acc] <= 1.0
    # First projector layer is Linear(128 -> 128); the encoder embedding is 128-d.
    assert 1 <= results["geometry/projector_rank"] <= 128
    assert 1 <= results["geometry/embedding_rank"] <= 128
    # Unit-norm rows: ||R F - F_a|| <= ||F|| + ||F_a|| = 2 sqrt(n), n = PROBE_SIZE = 64.
    assert 0.0 <= results["geometry/wahba_mean"] <= results["geometry/wahba_max"] <= 16.0
    assert results["geometry/gamma_f"] >= 0.0
    assert list((tmp_path / "runs" / "quickstart").rglob("events.out.tfevents.*"))


def test_equivariance_notebook_measures_every_augmentation(fake_root: Path, tmp_path: Path):
    nb, results = execute("equivariance", fake_root, tmp_path)
    assert count_figures(nb) >= 2  # bar chart (Fig. 2c) and histograms (Fig. 6)
    assert set(results) == {"SimCLR", "CARE"}
    expected = {"none", "crop", "flip", "colour jitter", "blur", "rotation", "simclr (all)"}
    n = 48  # N_SAMPLES
    for rows in results.values():
        assert set(rows) == expected  # grayscale is skipped on 1-channel images
        for r in rows.values():
            assert 0.0 <= r["wahba_mean"] <= r["wahba_max"] <= 2 * math.sqrt(n) + 1e-6
            assert -1.0 - 1e-6 <= r["cos_mean"] <= 1.0 + 1e-6 and r["gamma_f"] >= 0.0
        # Identity control: R = I solves Wahba exactly, every cosine is 1, gamma_f's pairs are 0/0.
        assert rows["none"]["wahba_max"] < 1e-3
        assert rows["none"]["cos_mean"] == pytest.approx(1.0, abs=1e-5)
        assert rows["none"]["gamma_f"] == 0.0
        # A real augmentation moves the embeddings.
        assert rows["crop"]["cos_mean"] < 1.0 - 1e-4


def test_projector_geometry_notebook_reads_rank_fvu_and_label_match(
    fake_root: Path, tmp_path: Path
):
    nb, results = execute("projector_geometry", fake_root, tmp_path)
    assert count_figures(nb) >= 3  # Fig. 1 (rank, accuracy, spectra), Fig. 6, Fig. 7
    assert set(results) == {"large", "small"}
    for r in results.values():
        spectrum = r["final_spectrum"]
        # Linear projector W^T: 64 x 128, so 64 singular values, non-negative and sorted.
        assert len(spectrum) == 64 and min(spectrum) >= 0.0
        assert spectrum == sorted(spectrum, reverse=True)
        # The logged rank is Eq. 2 on that same spectrum with ProjectorRank's tau = 1e-2.
        assert r["projector_rank"] == sum(s >= 1e-2 for s in spectrum)
        assert 0.0 <= r["fvu"] <= 1.0 and 0.0 <= r["label_match"] <= 1.0
        assert 0.0 <= r["probe_acc"] <= 1.0
        assert r["epochs"] == [0, 1]  # one measurement per epoch, read back from the logs
