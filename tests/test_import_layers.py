"""Layers point downward: importing a layer loads none of the layers above or beside it.

Each check runs in a FRESH interpreter (a subprocess), since this test process has long
imported everything, and lists the ``ssl_geom`` modules the import left in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def loaded_by(module: str) -> list[str]:
    """The ``ssl_geom`` modules a fresh interpreter has loaded after ``import module``."""
    code = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'ssl_geom')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def under(modules: list[str], package: str) -> list[str]:
    return [m for m in modules if m == package or m.startswith(f"{package}.")]


def test_the_callbacks_load_no_datamodule_and_no_method() -> None:
    loaded = loaded_by("ssl_geom.callbacks")
    assert "ssl_geom.callbacks.wahba" in loaded  # the import really ran
    assert under(loaded, "ssl_geom.data") == []
    assert under(loaded, "ssl_geom.methods") == []


def test_the_methods_load_no_datamodule() -> None:
    loaded = loaded_by("ssl_geom.methods")
    assert "ssl_geom.methods.care" in loaded
    assert under(loaded, "ssl_geom.data") == []


def test_augment_sits_below_data_methods_and_callbacks() -> None:
    loaded = loaded_by("ssl_geom.augment")
    assert [m for m in loaded if not m.startswith("ssl_geom.augment")] == [
        "ssl_geom",
        "ssl_geom.rank_draws",
        "ssl_geom.symmetry",
    ]


@pytest.mark.parametrize(
    "module", ["ssl_geom.protocols", "ssl_geom.global_batch", "ssl_geom.rank_draws"]
)
def test_dependency_free_modules_import_nothing_from_ssl_geom(module: str) -> None:
    assert loaded_by(module) == ["ssl_geom", module]
