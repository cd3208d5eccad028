"""A table's markdown from a results folder alone, and where that folder came from.

A sweep writes ``<out>/provenance.json`` beside its table: the commit and machine that wrote
it and the rows whose data was absent there. The table's text is a function of the folder
(its ``records/``, ``failures/``), that file and the plan only, so ``python -m
ssl_geom.reproduce TABLE --out DIR --report-only`` renders it again without training or
checking data, and a committed results folder (``results/<profile>/<table>/``) can be tested
to regenerate its committed table byte for byte (``tests/test_reproduce_results.py``).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from ssl_geom.io import write_atomic

from .plan import RunSpec
from .process import available_cores
from .records import RunRecord, scan_failures, scan_records
from .report import aggregate, render_markdown, select_records
from .runner import git_commit
from .schema import Profile, TableSpec
from .selection import SelectedSetting, SelectionError, select_setting

PROVENANCE_FILE = "provenance.json"


def machine() -> str:
    """The machine, as a reader would name it: CPU model and cores and, where CUDA works, the
    GPU."""
    cores = available_cores()
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
        if line.startswith("model name")
    ]
    text = f"{models[0] if models else platform.machine()}, {cores} CPU cores"
    import torch

    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def write_provenance(
    out_dir: Path, table: str, profile: str, missing: dict[str, str], limit: int | None
) -> dict:
    """Write (and return) ``provenance.json``: commit, machine, table, profile, absent rows
    and the sweep's ``--limit`` (its table shows only the first ``limit`` planned runs)."""
    provenance = {
        "table": table,
        "profile": profile,
        "limit": limit,
        "commit": git_commit(),
        "machine": machine(),
        "missing": dict(sorted(missing.items())),
    }
    text = json.dumps(provenance, indent=2, sort_keys=True) + "\n"
    write_atomic(Path(out_dir) / PROVENANCE_FILE, text, overwrite=True)
    return provenance


def read_provenance(out_dir: Path, table: str, profile: str) -> dict[str, Any]:
    """``out_dir``'s provenance, checked to be ``table`` under ``profile``."""
    path = Path(out_dir) / PROVENANCE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: --report-only renders a folder a sweep wrote (it writes "
            f"that file beside its table). Run `python -m ssl_geom.reproduce {table} --profile "
            f"{profile} --out {out_dir}` first"
        )
    provenance = json.loads(path.read_text())
    if (provenance["table"], provenance["profile"]) != (table, profile):
        raise ValueError(
            f"{path} was written by {provenance['table']} --profile {provenance['profile']}, "
            f"not {table} --profile {profile}; pass that table and profile, or another --out"
        )
    return provenance


def selection_of(
    table: TableSpec, profile: str, records: list[RunRecord], specs: list[RunSpec]
) -> SelectedSetting | str | None:
    """A selecting table's choice from its current records; the reason as text when it
    cannot choose yet; ``None`` for a table that selects nothing."""
    if table.selects is None:
        return None
    try:
        return select_setting(table, profile, select_records(records, specs).current)
    except SelectionError as error:
        return str(error)


def render_records(
    table: TableSpec,
    profile: Profile,
    specs: list[RunSpec],
    out_dir: Path,
    provenance: dict[str, Any],
) -> str:
    """The table's markdown from ``out_dir``'s records and failures, the commit of
    ``provenance`` taken as current (cells from other commits are marked)."""
    scan = scan_records(Path(out_dir) / "records")
    failures, bad_failures = scan_failures(Path(out_dir) / "failures")
    return render_markdown(
        table,
        profile,
        specs,
        aggregate(scan.records, specs),
        dict(provenance["missing"]),
        scan.records,
        failures=failures,
        current_commit=provenance["commit"],
        unreadable=[*scan.unreadable, *bad_failures],
        selected=selection_of(table, profile.name, scan.records, specs),
    )
