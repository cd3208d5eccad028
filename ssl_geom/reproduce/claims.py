"""The papers' claims as data, and the rule that turns run records into a verdict on each.

A :class:`Claim` quotes its paper and lists :class:`Comparison` s between measured
quantities (a method's accuracy, a test-time metric, or the last validation value of a
metric, in one row or in every row of the table). Each comparison gets one of three
verdicts from the seeds' spread:

    paired (a and b measured on the same seeds, at least 2):
        d_i = a_i - b_i per seed;  d = mean(d_i);  se = s_d / sqrt(n)
    otherwise (unpaired):
        d  = mean(a) - mean(b);  se = sqrt(s_a^2 / n_a + s_b^2 / n_b)
    (s: sample std over seeds, ddof = 1)
    interval = [d - k*se, d + k*se]           (k = 2 by default: about a 95 % normal interval)

Pairing by seed: the two runs of one seed share what that seed fixes (the training subset,
the data order, much of the initialisation), so most of the seed-to-seed spread cancels in
a_i - b_i. The paired interval is valid whatever the runs share, because seeds are
independent of each other; it is only narrower when they share a lot.

* ``greater`` (a > b + margin): supported if the whole interval is above ``margin``; not
  supported if none of it is (upper end <= margin); otherwise undecided.
* ``comparable`` (|a - b| <= tolerance): supported if the interval lies inside
  [-tolerance, tolerance]; not supported if it lies wholly outside; otherwise undecided.

One exception: when a and b are the same constant in every seed (e.g. a projector rank
pinned at its maximum), ``greater`` is undecided, not refuted: the metric never moved.

This is the difference against its standard error (a z-style rule, not a t-test: with 3
seeds a t-quantile would be about 4.3 paired or 2.8 unpaired instead of 2). Fewer than 2 seeds on
either side gives no spread, hence "undecided". A claim is supported when all its
comparisons are, not supported when any is not, and undecided otherwise; a comparison with
no data on one side is undecided; a row with no records on either side (not run by this
profile, e.g. its dataset is absent) is left out of the claim. Everything here is a pure
function of records.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .records import RunRecord

Verdict = Literal["supported", "not supported", "undecided"]
Kind = Literal["greater", "comparable"]


@dataclass(frozen=True)
class Paper:
    authors: str
    title: str
    arxiv: str

    def cite(self) -> str:
        return f'{self.authors}, "{self.title}", arXiv:{self.arxiv}'


@dataclass(frozen=True)
class Quantity:
    """A measured number per seed.

    ``metric``: ``"accuracy"`` (the table's cell), ``"linear"`` (the run's linear evaluation,
    %; the table's accuracy for a dataset without a linear protocol, such as MNIST digits or
    Tiny ImageNet: whether a run has one depends on its dataset only, so both sides of a
    comparison in one row always use the same measure), ``"test:NAME"`` (a scalar logged at test time) or ``"final:NAME"`` (the last validation
    value of NAME). ``row``: the row's
    printed transformation (e.g. ``"Scale"``); ``None`` means the row being checked.
    """

    method: str
    metric: str = "accuracy"
    row: str | None = None

    def label(self) -> str:
        where = f" [{self.row}]" if self.row else ""
        names = {"accuracy": "accuracy", "linear": "linear-evaluation accuracy"}
        name = names.get(self.metric) or self.metric.split(":", 1)[1]
        return f"{self.method} {name}{where}"


@dataclass(frozen=True)
class Comparison:
    kind: Kind
    a: Quantity
    b: Quantity
    margin: float = 0.0  # greater: a - b must exceed it (negative: "at least, within -margin")
    tolerance: float = 0.0  # comparable: |a - b| at most this

    def describe(self) -> str:
        if self.kind == "comparable":
            return f"{self.a.label()} ≈ {self.b.label()} (within ±{self.tolerance:g})"
        if self.margin < 0:
            return f"{self.a.label()} ≥ {self.b.label()} (within {-self.margin:g})"
        extra = f" by more than {self.margin:g}" if self.margin else ""
        return f"{self.a.label()} > {self.b.label()}{extra}"


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, checked on every row whose transformation is in ``rows``.

    ``rows`` ``None``: every row of the table (comparisons whose quantities name their own
    rows are checked once).
    """

    paper: Paper
    where: str  # section / table / figure
    quote: str
    comparisons: tuple[Comparison, ...]
    rows: tuple[str, ...] | None = None
    k: float = 2.0


@dataclass(frozen=True)
class TableRow:
    """A row as claims see it: its key, printed transformation and label."""

    key: str
    transformation: str
    label: str


@dataclass(frozen=True)
class Stats:
    values: tuple[float, ...]
    seeds: tuple[int, ...] = ()  # the seed of each value, when known (pairs a with b)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n > 1 else None

    def text(self, digits: int = 2) -> str:
        if not self.values:
            return "no data"
        spread = f" ± {self.std:.{digits}f}" if self.std is not None else ""
        return f"{self.mean:.{digits}f}{spread} (n={self.n})"


@dataclass(frozen=True)
class Check:
    """One comparison on one row: the numbers and the verdict."""

    comparison: Comparison
    row: str  # the row's label ("—" for a comparison across named rows)
    a: Stats
    b: Stats
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return combine(check.verdict for check in self.checks)


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """All supported: supported; any not supported: not supported; else (or none) undecided."""
    verdicts = list(verdicts)
    if not verdicts:
        return "undecided"
    if "not supported" in verdicts:
        return "not supported"
    if all(v == "supported" for v in verdicts):
        return "supported"
    return "undecided"


def compare(comparison: Comparison, a: Stats, b: Stats, k: float = 2.0) -> tuple[Verdict, str]:
    """The verdict of ``comparison`` on samples ``a`` and ``b`` (module docstring's rule)."""
    if a.n == 0 or b.n == 0:
        return "undecided", "no data"
    if a.n < 2 or b.n < 2:
        return "undecided", "fewer than 2 seeds: no spread to judge the difference by"
    d, se, how = _difference(a, b)
    low, high = d - k * se, d + k * se
    reason = f"{how} difference {d:+.3g}, interval [{low:.3g}, {high:.3g}] (±{k:g}·SE)"
    if comparison.kind == "greater":
        if se == 0 and set(a.values) == set(b.values) and len(set(a.values)) == 1:
            # e.g. a projector rank pinned at its maximum in every run: the metric never moved.
            return "undecided", f"identical value {a.mean:.3g} in every seed: nothing moved"
        if low > comparison.margin:
            return "supported", reason
        if high <= comparison.margin:
            return "not supported", reason
        return "undecided", reason
    tol = comparison.tolerance
    if -tol <= low and high <= tol:
        return "supported", reason
    if low > tol or high < -tol:
        return "not supported", reason
    return "undecided", reason


def _difference(a: Stats, b: Stats) -> tuple[float, float, str]:
    """``(d, se, "paired"|"unpaired")`` of a − b; paired when both name the same >= 2 seeds."""
    # Each seed once on each side: a seed named twice on one side would pair ambiguously.
    same_seeds = set(a.seeds) == set(b.seeds)
    paired = same_seeds and a.n == b.n == len(a.seeds) == len(b.seeds) == len(set(a.seeds))
    if paired:
        b_of = dict(zip(b.seeds, b.values, strict=True))
        diffs = [value - b_of[seed] for seed, value in zip(a.seeds, a.values, strict=True)]
        return statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs)), "paired"
    se = math.sqrt((a.std or 0.0) ** 2 / a.n + (b.std or 0.0) ** 2 / b.n)
    return a.mean - b.mean, se, "unpaired"


def quantity_values(records: Sequence[RunRecord], quantity: Quantity, row: TableRow) -> Stats:
    """The per-seed values of ``quantity`` among ``records`` of ``row``.

    A quantity naming its row (``Quantity.row``) matches records by transformation; otherwise
    the records of ``row`` itself (by row key: two datasets may share a transformation).
    """
    values: list[float] = []
    seeds: list[int] = []
    for record in records:
        if record.method != quantity.method:
            continue
        if quantity.row is not None:
            if record.row.get("transformation") != quantity.row:
                continue
        elif record.row.get("key") != row.key:
            continue
        value = metric_value(record, quantity.metric)
        if value is not None:
            values.append(value)
            seeds.append(record.seed)
    return Stats(tuple(values), tuple(seeds))


def metric_value(record: RunRecord, metric: str) -> float | None:
    """``accuracy``, ``linear``, ``test:NAME`` or ``final:NAME`` of one record; ``None`` if absent."""
    if metric == "accuracy":
        return record.accuracy
    if metric == "linear":
        linear = record.linear_accuracy
        return record.accuracy if linear is None else linear
    source, _, name = metric.partition(":")
    if source == "test":
        return record.metrics.get(name)
    if source == "final":
        values = [point[name] for point in record.history if name in point]
        return values[-1] if values else None
    raise ValueError(
        f"unknown metric {metric!r}; expected 'accuracy', 'linear', 'test:NAME' or 'final:NAME'"
    )


def evaluate(claim: Claim, records: Sequence[RunRecord], rows: Sequence[TableRow]) -> ClaimResult:
    """Check ``claim`` on ``records`` (already restricted to the table's current runs).

    ``rows``: the table's rows, in order.
    """
    checked_rows = [r for r in rows if claim.rows is None or r.transformation in claim.rows]
    checks = []
    for comparison in claim.comparisons:
        fixed = comparison.a.row is not None and comparison.b.row is not None
        for row in [TableRow("", "", "—")] if fixed else checked_rows:
            a = quantity_values(records, comparison.a, row)
            b = quantity_values(records, comparison.b, row)
            if not fixed and a.n == 0 and b.n == 0:
                continue  # a row this profile did not run (e.g. its data is absent)
            verdict, reason = compare(comparison, a, b, claim.k)
            checks.append(Check(comparison, row.label, a, b, verdict, reason))
    return ClaimResult(claim, tuple(checks))


def render_claims(results: Sequence[ClaimResult]) -> list[str]:
    """The "Claims" section of a table (markdown lines)."""
    if not results:
        return []
    lines = [
        "",
        "## Claims",
        "",
        "Verdict rule: for a − b, the interval difference ± 2·SE over seeds: paired by seed "
        "when a and b share their seeds (SE = s_d/√n of the per-seed differences), else "
        "SE = √(s_a²/n_a + s_b²/n_b); *supported* if the interval is wholly on the claim's side, "
        "*not supported* "
        "if wholly on the other, *undecided* if it straddles the threshold, fewer than 2 seeds "
        "or no data. A claim is supported when all its checks are; rows without records are "
        "left out.",
    ]
    for i, result in enumerate(results, 1):
        claim = result.claim
        lines += [
            "",
            f"### {i}. {claim.where}: **{result.verdict}**",
            "",
            f"> {claim.quote}",
            f"> — {claim.paper.cite()}",
            "",
            "| check | row | a | b | verdict | why |",
            "|---|---|---|---|---|---|",
        ]
        for check in result.checks:
            lines.append(
                f"| {check.comparison.describe()} | {check.row} | {check.a.text()} | "
                f"{check.b.text()} | {check.verdict} | {check.reason} |"
            )
    return lines
