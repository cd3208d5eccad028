"""Turn run records into the table (markdown) and a plot, next to the published numbers.

Mean ± std over seeds uses the sample standard deviation (ddof=1), the usual
convention for "mean ± std over 3 runs"; with a single seed no std is shown.
"""

from __future__ import annotations

import io
import statistics
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ssl_geom.io import write_atomic

from .claims import TableRow
from .claims_section import claims_section
from .evaluation import headline_caption
from .plan import RunSpec
from .protocol import protocol_lines
from .records import UNREADABLE_FIX, FailureRecord, RunRecord, UnreadableFile
from .schema import Profile, Row, TableSpec
from .selection import SelectedSetting, selection_lines

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Cell:
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self) -> str:
        if self.std is None:
            return f"{self.mean:.1f} (n=1)"
        return f"{self.mean:.1f} ± {self.std:.1f} (n={len(self.values)})"


@dataclass(frozen=True)
class Selection:
    """The records a table uses, and those it leaves out with the reason."""

    current: list[RunRecord]  # records of the planned runs (same resolved settings)
    outdated: list[RunRecord]  # same cell and seed, older resolved settings
    other: list[RunRecord]  # cells or profiles this table does not plan now


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _markdown_head(header: list[str]) -> list[str]:
    """A Markdown table's header row and its separator."""
    return [_markdown_row(header), "|" + "|".join("---" for _ in header) + "|"]


def select_records(records: list[RunRecord], specs: list[RunSpec]) -> Selection:
    """Split ``records`` into the planned runs' and the left-out ones (kept on disk)."""
    planned = {spec.run_id for spec in specs}
    cells = {(spec.profile, spec.cell) for spec in specs}
    current, outdated, other = [], [], []
    for record in records:
        if record.run_id in planned:
            current.append(record)
        elif (record.profile, record.cell or _cell_of(record)) in cells:
            outdated.append(record)
        else:
            other.append(record)
    return Selection(current, outdated, other)


def _cell_of(record: RunRecord) -> str:
    """Records written before ``cell`` existed: their id starts with row__method__seedN."""
    return "__".join(record.run_id.split("__")[:3])


def aggregate(records: list[RunRecord], specs: list[RunSpec]) -> dict[tuple[str, str], Cell]:
    """Accuracy cells keyed by (row key, method), over the records of the planned runs only."""
    planned = {spec.run_id for spec in specs}
    return _cells([record for record in records if record.run_id in planned], lambda r: r.accuracy)


def _cells(
    records: list[RunRecord], value: Callable[[RunRecord], float | None]
) -> dict[tuple[str, str], Cell]:
    """Per (row key, method), the ``value`` of each record that has one (``None``: skipped)."""
    grouped: dict[tuple[str, str], list[float]] = {}
    for record in records:
        number = value(record)
        if number is not None:
            grouped.setdefault((record.row["key"], record.method), []).append(number)
    return {key: Cell(tuple(values)) for key, values in grouped.items()}


def final_values(records: list[RunRecord], specs: list[RunSpec], metric: str) -> dict[str, Cell]:
    """Per row key, the last validation value of ``metric`` in each planned run's history."""
    planned = {spec.run_id for spec in specs}
    grouped: dict[str, list[float]] = {}
    for record in records:
        values = [h[metric] for h in record.history if metric in h]
        if record.run_id in planned and values:
            grouped.setdefault(record.row["key"], []).append(values[-1])
    return {key: Cell(tuple(values)) for key, values in grouped.items()}


def _curves_section(
    table: TableSpec,
    rows: list[Row],
    labels: dict[str, str],
    records: list[RunRecord],
    specs: list[RunSpec],
) -> list[str]:
    header = ["Dataset", "Transformation", *table.curves]
    lines = [
        "",
        "## At the end of training (last validation epoch; curves in the plot)",
        "",
        *_markdown_head(header),
    ]
    finals = {metric: final_values(records, specs, metric) for metric in table.curves}
    for row in rows:
        cells = []
        for metric in table.curves:
            cell = finals[metric].get(row.key)
            cells.append(_plain_text(cell) if cell else "—")
        lines.append(_markdown_row([labels[row.key], row.transformation, *cells]))
    return lines


def _plain_text(cell: Cell) -> str:
    """Unscaled values (ranks, rates): more digits than accuracies need."""
    if cell.std is None:
        return f"{cell.mean:.3g} (n=1)"
    return f"{cell.mean:.3g} ± {cell.std:.2g} (n={len(cell.values)})"


def _reference_text(table: TableSpec, row: Row, method: str) -> str:
    value = table.reference.get((row.key, method))
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def render_markdown(
    table: TableSpec,
    profile: Profile,
    specs: list[RunSpec],
    cells: dict[tuple[str, str], Cell],
    missing: dict[str, str],
    records: list[RunRecord] | None = None,
    failures: dict[str, FailureRecord] | None = None,
    current_commit: str | None = None,
    unreadable: list[UnreadableFile] | None = None,
    selected: SelectedSetting | str | None = None,
) -> str:
    """The table: our mean ± std per cell, the paper's number beside it, notes for absent data.

    Then: test-time geometry columns, curves, a selecting table's ``selected`` setting (or why
    it could not select yet), how the profile differs from the paper's settings, the claims with their verdicts, failed runs, records left out (older
    settings, ``unreadable`` files) and the code versions the records come from.
    """
    selection = select_records(records or [], specs)
    failures = failures or {}
    rows: list[Row] = []
    labels: dict[str, str] = {}
    for spec in specs:
        if spec.row not in rows:
            rows.append(spec.row)
            labels[spec.row.key] = spec.row_label
    foreign = _foreign_commit_cells(selection.current, current_commit)
    failed_cells = _failed_cells(specs, selection.current, failures)
    header = ["Dataset", "Transformation", "Backbone", *table.methods]
    lines = [
        f"# {table.title}",
        "",
        f"Profile **{profile.name}** — {profile.description}",
        "",
        headline_caption(table),
        "",
        *_markdown_head(header),
    ]
    for row in rows:
        if row.key in missing:
            method_cells = [f"data not found at {missing[row.key]}"] * len(table.methods)
        else:
            method_cells = []
            for method in table.methods:
                cell = cells.get((row.key, method))
                ours = cell.text() if cell else "not run yet"
                if (row.key, method) in failed_cells:
                    ours = f"{ours}, {failed_cells[(row.key, method)]} failed"
                mark = " †" if (row.key, method) in foreign else ""
                method_cells.append(f"{ours}{mark} / *{_reference_text(table, row, method)}*")
        lines.append(
            _markdown_row([labels[row.key], row.transformation, row.backbone, *method_cells])
        )
    if table.linear_eval == "beside":
        lines += _linear_section(table, rows, labels, selection.current, missing)
    for metric, name in table.test_columns:
        lines += _test_metric_section(table, rows, labels, selection.current, metric, name)
    if table.curves:
        lines += _curves_section(table, rows, labels, selection.current, specs)
    if isinstance(selected, SelectedSetting):
        lines += selection_lines(selected)
    elif selected is not None:
        lines += ["", "## Selection", "", f"Not made yet: {selected}"]
    if specs:
        lines += protocol_lines(table, profile, Path(specs[0].config).parent)
    claim_rows = [
        TableRow(row.key, row.transformation, f"{labels[row.key]} / {row.transformation}")
        for row in rows
    ]
    lines += claims_section(table, selection.current, claim_rows)
    lines += _failures_section(specs, selection.current, failures)
    lines += _provenance_section(selection, current_commit, bool(foreign), unreadable or [])
    substituted = [labels[r.key] for r in rows if labels[r.key] != r.dataset]
    lines += ["", f"Reference numbers: {table.citation}"]
    if substituted:
        lines.append(
            "Rows marked 'stand-in' ran on a substitute dataset; their paper numbers are for the "
            "original dataset and are shown for orientation only."
        )
    return "\n".join(lines) + "\n"


def _foreign_commit_cells(
    records: list[RunRecord], current_commit: str | None
) -> set[tuple[str, str]]:
    if current_commit is None:
        return set()
    return {(r.row["key"], r.method) for r in records if r.git_commit != current_commit}


def _failed_cells(
    specs: list[RunSpec], records: list[RunRecord], failures: dict[str, FailureRecord]
) -> dict[tuple[str, str], int]:
    """Per cell, how many planned runs failed and have no record."""
    done = {r.run_id for r in records}
    counts: dict[tuple[str, str], int] = {}
    for spec in specs:
        if spec.run_id in failures and spec.run_id not in done:
            key = (spec.row.key, spec.method)
            counts[key] = counts.get(key, 0) + 1
    return counts


def _linear_section(
    table: TableSpec,
    rows: list[Row],
    labels: dict[str, str],
    records: list[RunRecord],
    missing: dict[str, str],
) -> list[str]:
    """The same grid, each cell the linear evaluation of the run's frozen backbone."""
    cells = _cells(records, lambda record: record.linear_accuracy)
    header = ["Dataset", "Transformation", "Backbone", *table.methods]
    protocols = ", ".join(
        f"{dataset}: experiments/{name}" for dataset, name in sorted(table.linear_configs.items())
    )
    lines = [
        "",
        "## Linear evaluation (beside the paper's online classifier above)",
        "",
        "Each cell: top-1 % of linear classifiers trained afterwards on the frozen pretrained "
        f"backbone (mean over 3 classifier initialisations; protocols: {protocols}), mean ± "
        "std over seeds. The paper reports only the online classifier, trained during "
        "pretraining through the backbone's classifier readout; these classifiers are trained "
        "after it, through the readout their protocol names (see the protocol differences), so "
        "the two tables can differ in both. '—': no linear config for the data.",
        "",
        *_markdown_head(header),
    ]
    for row in rows:
        texts = [
            cells[(row.key, m)].text() if (row.key, m) in cells else "—" for m in table.methods
        ]
        if row.key in missing:
            texts = ["—"] * len(table.methods)
        lines.append(_markdown_row([labels[row.key], row.transformation, row.backbone, *texts]))
    return lines


def _test_metric_section(
    table: TableSpec,
    rows: list[Row],
    labels: dict[str, str],
    records: list[RunRecord],
    metric: str,
    name: str,
) -> list[str]:
    header = ["Dataset", "Transformation", *table.methods]
    lines = [
        "",
        f"## {name} of the final encoder on the test set (mean ± std over seeds)",
        "",
        *_markdown_head(header),
    ]
    cells = _cells(records, lambda r: r.metrics.get(metric))
    for row in rows:
        texts = [
            _plain_text(cells[(row.key, m)]) if (row.key, m) in cells else "—"
            for m in table.methods
        ]
        lines.append(_markdown_row([labels[row.key], row.transformation, *texts]))
    return lines


def _failures_section(
    specs: list[RunSpec], records: list[RunRecord], failures: dict[str, FailureRecord]
) -> list[str]:
    done = {r.run_id for r in records}
    failed = [failures[s.run_id] for s in specs if s.run_id in failures and s.run_id not in done]
    if not failed:
        return []
    lines = ["", "## Failed runs (no result recorded; rerun the sweep to retry)", ""]
    lines += [f"- `{f.run_id}`: {f.error_type}: {f.message}" for f in failed]
    return lines


def _provenance_section(
    selection: Selection,
    current_commit: str | None,
    any_foreign: bool,
    unreadable: list[UnreadableFile],
) -> list[str]:
    lines = ["", "## Records", ""]
    commits = sorted({r.git_commit for r in selection.current})
    lines.append(
        f"{len(selection.current)} records in the table, produced by commit(s) "
        + (", ".join(f"`{c}`" for c in commits) if commits else "—")
        + (f"; current commit `{current_commit}`." if current_commit else ".")
    )
    if any_foreign:
        lines.append("† cell includes records produced by a commit other than the current one.")
    if selection.outdated:
        lines.append(
            f"{len(selection.outdated)} records left out: their cell's configuration changed since "
            "they ran (the resolved config hashes differ); they stay on disk under records/."
        )
    if selection.other:
        lines.append(
            f"{len(selection.other)} records left out: they belong to cells or profiles this "
            "table does not plan now."
        )
    if unreadable:
        lines.append(
            f"{len(unreadable)} files left out: they are not valid records ({UNREADABLE_FIX}):"
        )
        lines += [f"- `{file.path}`: {file.reason}" for file in unreadable]
    return lines


def render_plot(
    table: TableSpec, specs: list[RunSpec], cells: dict[tuple[str, str], Cell], path: Path
) -> None:
    """Grouped bars (ours, with std error bars) and the paper's numbers as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[RunSpec] = []
    for spec in specs:
        if all(spec.row != r.row for r in rows):
            rows.append(spec)
    width = 0.8 / len(table.methods)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows)), 4.0))
    for m, method in enumerate(table.methods):
        xs, means, errs, refs_x, refs = [], [], [], [], []
        for i, spec in enumerate(rows):
            x = i + (m - (len(table.methods) - 1) / 2) * width
            cell = cells.get((spec.row.key, method))
            if cell is not None:
                xs.append(x)
                means.append(cell.mean)
                errs.append(cell.std or 0.0)
            ref = table.reference.get((spec.row.key, method))
            if ref is not None:
                refs_x.append(x)
                refs.append(ref[0])
        bars = ax.bar(xs, means, width, yerr=errs, capsize=2, label=method)
        ax.scatter(
            refs_x,
            refs,
            marker="_",
            s=200,
            color=bars.patches[0].get_facecolor() if bars.patches else "black",
            linewidths=2,
        )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [f"{textwrap.fill(s.row_label, 16)}\n{s.row.transformation}" for s in rows], fontsize=7
    )
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{table.title}\nbars: ours (± std over seeds); dashes: paper", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save_figure(fig, path)


def render_curves(
    table: TableSpec, specs: list[RunSpec], records: list[RunRecord], path: Path
) -> None:
    """One panel per ``table.curves`` metric over training epochs, one line per row.

    Lines are the mean over seeds at each epoch (the geometry paper's Fig. 1 layout).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    planned = {spec.run_id: spec for spec in specs}
    fig, axes = plt.subplots(1, len(table.curves), figsize=(3.6 * len(table.curves), 3.2))
    axes = [axes] if len(table.curves) == 1 else list(axes)
    for ax, metric in zip(axes, table.curves, strict=True):
        by_row: dict[str, dict[float, list[float]]] = {}
        labels: dict[str, str] = {}
        for record in records:
            spec = planned.get(record.run_id)
            if spec is None:
                continue
            labels[spec.row.key] = spec.row.transformation
            for point in record.history:
                if metric in point:
                    by_row.setdefault(spec.row.key, {}).setdefault(point["epoch"], []).append(
                        point[metric]
                    )
        for key, series in by_row.items():
            epochs = sorted(series)
            ax.plot(
                epochs, [statistics.fmean(series[e]) for e in epochs], marker="o", label=labels[key]
            )
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("epoch")
        if by_row:
            ax.legend(fontsize=7)
    fig.suptitle(table.title, fontsize=9)
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig: Figure, path: Path) -> None:
    """Replace ``path`` with ``fig`` as a PNG in one step and close the figure.

    Plots are derived from the records, so rerunning a report replaces them.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, buffer.getvalue(), overwrite=True)
