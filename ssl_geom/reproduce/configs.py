"""Where the experiment configs (``experiments/*.yaml``) are, in a checkout or an installed copy.

The configs live at the top of the repository, beside the package, so ``lightning fit --config
experiments/X.yaml`` works from a checkout. A non-editable ``pip install`` has no checkout: the
wheel ships the same files as data files under ``<prefix>/share/ssl_geom/experiments`` (see
``[tool.setuptools.data-files]`` in pyproject.toml), which ``sysconfig`` locates for the
interpreter in use. An explicit folder always wins.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

CHECKOUT_EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
ENV_VAR = "SSL_GEOM_EXPERIMENTS"


def installed_experiments() -> list[Path]:
    """The data-file folders an installed wheel may have put the configs in (most likely first)."""
    places = [Path(sysconfig.get_path("data")) / "share" / "ssl_geom" / "experiments"]
    user = sysconfig.get_path("data", f"{os.name}_user") if os.name == "posix" else None
    if user:
        places.append(Path(user) / "share" / "ssl_geom" / "experiments")
    return places


def candidate_dirs(explicit: Path | str | None = None) -> list[Path]:
    """Every folder looked at, in order: ``explicit``, ``$SSL_GEOM_EXPERIMENTS``, checkout, install."""
    if explicit is not None:
        return [Path(explicit)]
    places = [Path(os.environ[ENV_VAR])] if os.environ.get(ENV_VAR) else []
    return [*places, CHECKOUT_EXPERIMENTS, *installed_experiments()]


def experiments_dir(explicit: Path | str | None = None) -> Path:
    """The first folder of :func:`candidate_dirs` that holds ``*.yaml`` configs.

    Raises ``FileNotFoundError`` naming every folder looked at and how to fix it, so a sweep
    or the demo stops before training anything.
    """
    places = candidate_dirs(explicit)
    for place in places:
        if place.is_dir() and any(place.glob("*.yaml")):
            return place
    looked = "\n".join(f"  - {place}" for place in places)
    raise FileNotFoundError(
        "no experiment configs (*.yaml) found. Looked at:\n"
        f"{looked}\n"
        "Pass --experiments DIR (a folder holding the repository's experiments/*.yaml), set "
        f"${ENV_VAR}, or reinstall ssl_geom with 'pip install .' so its configs are installed."
    )
