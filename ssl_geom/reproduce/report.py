"""Turn run records into the table (markdown) and a plot, next to the published numbers.

Mean ± std over seeds uses the sample standard deviation (ddof=1), the usual
convention for "mean ± std over 3 runs"; with a single seed no std is shown.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .evaluation import headline_caption, linear_accuracy
from .plan import RunSpec
from .records import RunRecord
from .tables import Profile, Row, TableSpec


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


def aggregate(records: list[RunRecord], specs: list[RunSpec]) -> dict[tuple[str, str], Cell]:
    """Accuracy cells keyed by (row key, method), over the records of the planned runs only."""
    planned = {spec.run_id for spec in specs}
    grouped: dict[tuple[str, str], list[float]] = {}
    for record in records:
        if record.run_id in planned:
            grouped.setdefault((record.row["key"], record.method), []).append(record.accuracy)
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
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    finals = {metric: final_values(records, specs, metric) for metric in table.curves}
    for row in rows:
        cells = []
        for metric in table.curves:
            cell = finals[metric].get(row.key)
            cells.append(_plain_text(cell) if cell else "—")
        lines.append("| " + " | ".join([labels[row.key], row.transformation, *cells]) + " |")
    return lines


def _linear_section(
    table: TableSpec,
    rows: list[Row],
    labels: dict[str, str],
    records: list[RunRecord],
    specs: list[RunSpec],
    missing: dict[str, str],
) -> list[str]:
    """The same grid, each cell the linear evaluation of the run's frozen backbone."""
    planned = {spec.run_id for spec in specs}
    grouped: dict[tuple[str, str], list[float]] = {}
    for record in records:
        value = linear_accuracy(record)
        if record.run_id in planned and value is not None:
            grouped.setdefault((record.row["key"], record.method), []).append(value)
    header = ["Dataset", "Transformation", "Backbone", *table.methods]
    lines = [
        "",
        "## Linear evaluation (beside the paper's online classifier above)",
        "",
        "Each cell: top-1 % of linear classifiers trained afterwards on the frozen pretrained "
        "backbone (experiments/linear_*.yaml: mean over 3 classifier initialisations), mean ± "
        "std over seeds. The paper reports only the online classifier; under a short budget "
        "that probe is far from converged, this one is not. '—': no linear config for the data.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in rows:
        cells = [
            Cell(tuple(grouped[(row.key, m)])).text() if (row.key, m) in grouped else "—"
            for m in table.methods
        ]
        if row.key in missing:
            cells = ["—"] * len(table.methods)
        lines.append(
            "| " + " | ".join([labels[row.key], row.transformation, row.backbone, *cells]) + " |"
        )
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
) -> str:
    """The table: our mean ± std per cell, the paper's number beside it, notes for absent data."""
    rows: list[Row] = []
    labels: dict[str, str] = {}
    for spec in specs:
        if spec.row not in rows:
            rows.append(spec.row)
            labels[spec.row.key] = spec.row_label
    header = ["Dataset", "Transformation", "Backbone", *table.methods]
    lines = [
        f"# {table.title}",
        "",
        f"Profile **{profile.name}** — {profile.description}",
        "",
        headline_caption(table),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in rows:
        if row.key in missing:
            method_cells = [f"data not found at {missing[row.key]}"] * len(table.methods)
        else:
            method_cells = []
            for method in table.methods:
                cell = cells.get((row.key, method))
                ours = cell.text() if cell else "not run yet"
                method_cells.append(f"{ours} / *{_reference_text(table, row, method)}*")
        lines.append(
            "| " + " | ".join([labels[row.key], row.transformation, row.backbone, *method_cells])
        )
        lines[-1] += " |"
    if table.linear_eval == "beside":
        lines += _linear_section(table, rows, labels, records or [], specs, missing)
    if table.curves:
        lines += _curves_section(table, rows, labels, records or [], specs)
    substituted = [labels[r.key] for r in rows if labels[r.key] != r.dataset]
    lines += ["", f"Reference numbers: {table.citation}"]
    if substituted:
        lines.append(
            "Rows marked 'stand-in' ran on a substitute dataset; their paper numbers are for the "
            "original dataset and are shown for orientation only."
        )
    return "\n".join(lines) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a reader never sees a partial file).

    Only derived files (tables, plots) go through here; run records are never replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
