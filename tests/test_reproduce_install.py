"""The reproduce package and the demo find the experiment configs without a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ssl_geom.reproduce.configs import CHECKOUT_EXPERIMENTS, ENV_VAR, experiments_dir

REPO = Path(__file__).resolve().parents[1]


def test_lookup_order_and_the_error_naming_every_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert experiments_dir() == CHECKOUT_EXPERIMENTS
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.yaml").write_text("seed_everything: 0\n")
    monkeypatch.setenv(ENV_VAR, str(mine))
    assert experiments_dir() == mine
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        experiments_dir(empty)
    message = str(error.value)
    assert f"  - {empty}" in message and "--experiments DIR" in message


def test_demo_names_the_missing_config(tmp_path: Path) -> None:
    from ssl_geom.demo import demo_config

    (tmp_path / "other.yaml").write_text("seed_everything: 0\n")
    with pytest.raises(FileNotFoundError, match=r"care_fashion\.yaml does not exist"):
        demo_config(tmp_path)
    assert demo_config().name == "care_fashion.yaml"


@pytest.mark.slow
def test_non_editable_install_plans_a_table_outside_the_checkout(tmp_path: Path) -> None:
    """``pip install .`` (no deps, no build isolation: nothing downloaded) into a fresh venv
    that sees the shared venv's packages through a .pth file, then a dry run from /tmp."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "ssl_geom", source / "ssl_geom", ignore=shutil.ignore_patterns("__py*"))
    shutil.copytree(REPO / "experiments", source / "experiments")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The shared environment's packages (torch, lightning, pip, setuptools) without its
    # editable ssl_geom: a directory named in a .pth file has its own .pth files ignored.
    Path(site, "_shared_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", ENV_VAR)}
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-index", "--ignore-installed", str(source)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    shutil.rmtree(source)  # nothing of the checkout is left to fall back on

    def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
        """A dry run of the rank table by the installed package, from ``tmp_path``."""
        command = [python, "-m", "ssl_geom.reproduce", "rank", "--dry-run", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)

    listing = dry_run("--out", "results")
    assert listing.returncode == 0, listing.stderr[-2000:]
    installed = venv / "share" / "ssl_geom" / "experiments"
    assert "rank/local: 9 runs" in listing.stdout
    assert f"{installed}/geometry_fashion_small.yaml" in listing.stdout

    refused = dry_run("--experiments", "nowhere")
    assert refused.returncode != 0
    assert "Looked at:\n  - nowhere" in refused.stderr
