"""The papers' claims as data, and the rule that turns run records into a verdict on each.

A :class:`Claim` quotes its paper (complete sentences) and lists :class:`Comparison` s
between measured quantities (a method's accuracy, a test-time metric, or the last validation
value of a metric, in one row or in every row of the table) or between a quantity and a
:class:`Constant`; an :class:`AnyOf` groups comparisons of which one must hold. Each
comparison of a − b gets its 95 % Student-t interval d ± t·SE (``intervals.py``):

    paired (a and b ran the same seeds, each once, at least 2):
        d_i = a_i − b_i per seed;  d = mean(d_i);  SE = s_d/√n;  t with n − 1 df
    unpaired (Welch):
        d = mean(a) − mean(b);  SE = √(s_a²/n_a + s_b²/n_b);  t with Welch–Satterthwaite df
    against a constant c (one-sample):
        d = mean(a) − c;  SE = s_a/√n_a;  t with n_a − 1 df
    (s: sample std over seeds, ddof = 1; t = scipy.stats.t.ppf(0.975, df))

and a verdict from where the interval lies:

* ``greater`` (a > b + margin): supported if the interval lies above ``margin``; not
  supported if it lies at or below it; otherwise undecided.
* ``comparable`` (|a − b| <= tolerance): supported if the interval lies within
  [−tolerance, tolerance]; not supported if it lies wholly outside; otherwise undecided.
* ``differs`` (a ≠ b): supported if the interval excludes 0; not supported if it includes 0
  and lies within [−tolerance, tolerance] (the same as within the equivalence margin);
  otherwise undecided.

A side with no data or fewer than 2 seeds gives no spread: undecided. So does a ``greater``
between two quantities that are the same constant in every seed (e.g. a projector rank pinned
at its maximum): the metric never moved. An undecided check also carries an *estimate* of how
many seeds per side would decide it: the smallest n (up to :data:`MAX_SEEDS_ESTIMATE`) whose
interval, with the same spreads and the same d but the t quantile at n, decides.

Pairing by seed: the two runs of one seed share what that seed fixes (the training subset,
the data order, much of the initialisation), so most of the seed-to-seed spread cancels in
a_i − b_i. The paired interval is valid whatever the runs share, because seeds are
independent of each other; it is only narrower when they share a lot.

An :class:`AnyOf` group is supported if any of its comparisons is, not supported if all are
not, undecided otherwise. A claim is supported when all its checks (comparisons and groups)
are, not supported when any is not, and undecided otherwise; a row with no records on either
side (not run by this profile, e.g. its dataset is absent) is left out of the claim.

The paper's own table checks each encoding (:func:`evaluate_published`): the same rule on the
published numbers, mean ± std over the paper's n runs (unpaired: Welch); where the paper
publishes no std, the point difference (an interval of half-width 0, so always decided). The
point rule is for the paper's numbers only: a measured side always needs 2 seeds. Rows or
methods without a published number are left out. Everything here is a pure function of
records and published numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .intervals import Interval
from .records import RunRecord

Verdict = Literal["supported", "not supported", "undecided"]
Kind = Literal["greater", "comparable", "differs"]
# The largest number of seeds per side an undecided check's estimate looks at.
MAX_SEEDS_ESTIMATE = 100


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
    comparison in one row always use the same measure), ``"test:NAME"`` (a scalar logged at
    test time) or ``"final:NAME"`` (the last validation value of NAME). ``row``: the row's
    printed transformation (e.g. ``"Scale"``); ``None`` means the row being checked. The
    paper's own table publishes accuracies only: ``accuracy`` and ``linear`` read it.
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
class Constant:
    """A fixed number a quantity is compared with (e.g. 95 % of full rank)."""

    value: float

    def label(self) -> str:
        return f"{self.value:g}"

    def text(self) -> str:
        """As a side of a check's numbers: the value itself."""
        return self.label()


@dataclass(frozen=True)
class Comparison:
    kind: Kind
    a: Quantity
    b: Quantity | Constant
    margin: float = 0.0  # greater: a − b must exceed it (negative: "at least, within −margin")
    tolerance: float = 0.0  # comparable: |a − b| at most this; differs: the equivalence margin

    def describe(self) -> str:
        a, b = self.a.label(), self.b.label()
        if self.kind == "comparable":
            return f"{a} ≈ {b} (within ±{self.tolerance:g})"
        if self.kind == "differs":
            return f"{a} ≠ {b} (no difference: within ±{self.tolerance:g})"
        if self.margin < 0:
            return f"{a} ≥ {b} (within {-self.margin:g})"
        extra = f" by more than {self.margin:g}" if self.margin else ""
        return f"{a} > {b}{extra}"

    @property
    def fixed(self) -> bool:
        """Whether both sides name their rows (or a constant): checked once, not per row."""
        return self.a.row is not None and (isinstance(self.b, Constant) or self.b.row is not None)


@dataclass(frozen=True)
class AnyOf:
    """Comparisons of which one must hold (e.g. some in-range λ beats an out-of-range one)."""

    comparisons: tuple[Comparison, ...]

    def describe(self) -> str:
        return "any of: " + "; ".join(c.describe() for c in self.comparisons)


Item = Comparison | AnyOf


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, checked on every row whose transformation is in ``rows``.

    ``quote``: the complete sentence(s) of the paper. ``encoding``: one line on how the claim
    is tested where the paper's prose is vaguer than any test ("" when it is not).
    ``comparisons``: all must hold (an :class:`AnyOf` is one of them). ``rows`` ``None``:
    every row of the table (comparisons whose quantities name their own rows are checked
    once).
    """

    paper: Paper
    where: str  # section / table / figure
    quote: str
    comparisons: tuple[Item, ...]
    rows: tuple[str, ...] | None = None
    encoding: str = ""


@dataclass(frozen=True)
class TableRow:
    """A row as claims see it: its key, printed transformation and label."""

    key: str
    transformation: str
    label: str


@dataclass(frozen=True)
class Stats:
    """A measured quantity: one value per seed."""

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
class Published:
    """A number of the paper's own table: its mean, and its std over ``n`` runs if published."""

    mean: float
    std: float | None
    n: int

    def text(self, digits: int = 2) -> str:
        if self.std is None:
            return f"{self.mean:.{digits}f} (no std)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


Side = Stats | Published | Constant


@dataclass(frozen=True)
class Judgement:
    """A comparison's verdict, its interval (``None``: no interval could be made) and a note
    (why no interval, or the undecided check's seeds estimate)."""

    verdict: Verdict
    interval: Interval | None = None
    note: str = ""


@dataclass(frozen=True)
class Check:
    """One comparison on one row: the numbers and the verdict."""

    comparison: Comparison
    row: str  # the row's label ("—" for a comparison across named rows)
    a: Stats | Published
    b: Side
    judgement: Judgement

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict


@dataclass(frozen=True)
class CheckGroup:
    """One item of a claim on one row: a single check, or the checks of an :class:`AnyOf`."""

    item: Item
    row: str
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> Verdict:
        verdicts = [check.verdict for check in self.checks]
        return any_of(verdicts) if isinstance(self.item, AnyOf) else combine(verdicts)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    groups: tuple[CheckGroup, ...] = ()

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(check for group in self.groups for check in group.checks)

    @property
    def verdict(self) -> Verdict:
        return combine(group.verdict for group in self.groups)


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


def any_of(verdicts: Iterable[Verdict]) -> Verdict:
    """Any supported: supported; all not supported: not supported; else (or none) undecided."""
    verdicts = list(verdicts)
    if "supported" in verdicts:
        return "supported"
    if verdicts and all(v == "not supported" for v in verdicts):
        return "not supported"
    return "undecided"


def decide(comparison: Comparison, low: float, high: float) -> Verdict:
    """The verdict of ``comparison`` on the interval [low, high] of a − b (module docstring)."""
    tol = comparison.tolerance
    if comparison.kind == "greater":
        if low > comparison.margin:
            return "supported"
        if high <= comparison.margin:
            return "not supported"
        return "undecided"
    if comparison.kind == "comparable":
        if -tol <= low and high <= tol:
            return "supported"
        if low > tol or high < -tol:
            return "not supported"
        return "undecided"
    if low > 0 or high < 0:
        return "supported"
    if -tol <= low and high <= tol:
        return "not supported"
    return "undecided"


def compare(comparison: Comparison, a: Stats | Published, b: Side) -> Judgement:
    """The verdict of ``comparison`` on ``a`` and ``b`` (module docstring's rule).

    ``a`` and ``b`` are both measured (:class:`Stats`, ``b`` possibly a :class:`Constant`) or
    both the paper's (:class:`Published`).
    """
    if isinstance(a, Published) or isinstance(b, Published):
        interval = _published_interval(a, b)
    else:
        sides = [a] if isinstance(b, Constant) else [a, b]
        if any(side.n == 0 for side in sides):
            return Judgement("undecided", note="no data")
        if any(side.n < 2 for side in sides):
            return Judgement(
                "undecided", note="fewer than 2 seeds: no spread to judge the difference by"
            )
        moved = isinstance(b, Constant) or len(set(a.values) | set(b.values)) > 1
        if comparison.kind == "greater" and not moved:
            # e.g. a projector rank pinned at its maximum in every run: the metric never moved.
            return Judgement(
                "undecided", note=f"identical value {a.mean:.3g} in every seed: nothing moved"
            )
        interval = _measured_interval(a, b)
    verdict = decide(comparison, interval.low, interval.high)
    note = _seeds_estimate(comparison, interval) if verdict == "undecided" else ""
    return Judgement(verdict, interval, note)


def _measured_interval(a: Stats, b: Stats | Constant) -> Interval:
    """Paired when both name the same >= 2 seeds, each once; one-sample against a constant;
    Welch otherwise."""
    if isinstance(b, Constant):
        return Interval("one-sample", a.mean - b.value, (_std(a),), (a.n,))
    # Each seed once on each side: a seed named twice on one side would pair ambiguously.
    same_seeds = set(a.seeds) == set(b.seeds)
    if same_seeds and a.n == b.n == len(a.seeds) == len(b.seeds) == len(set(a.seeds)):
        b_of = dict(zip(b.seeds, b.values, strict=True))
        diffs = [value - b_of[seed] for seed, value in zip(a.seeds, a.values, strict=True)]
        return Interval("paired", statistics.fmean(diffs), (statistics.stdev(diffs),), (a.n,))
    return Interval("Welch", a.mean - b.mean, (_std(a), _std(b)), (a.n, b.n))


def _published_interval(a: Side, b: Side) -> Interval:
    """Welch on mean ± std over the paper's runs; the point difference where no std is given."""
    if not isinstance(a, Published) or isinstance(b, Stats):
        raise TypeError(
            f"a published number is compared with published numbers or a constant, got {a!r} "
            f"and {b!r}"
        )
    b_mean = b.value if isinstance(b, Constant) else b.mean
    if a.std is None or (isinstance(b, Published) and b.std is None):
        return Interval("point", a.mean - b_mean)
    if isinstance(b, Constant):
        return Interval("one-sample", a.mean - b_mean, (a.std,), (a.n,))
    assert b.std is not None  # checked above; tells mypy
    return Interval("Welch", a.mean - b_mean, (a.std, b.std), (a.n, b.n))


def _std(stats: Stats) -> float:
    std = stats.std
    if std is None:
        raise ValueError(f"a t-interval needs at least 2 values, got {stats.values}")
    return std


def seeds_needed(comparison: Comparison, interval: Interval) -> int | None:
    """The fewest seeds per side (2 to :data:`MAX_SEEDS_ESTIMATE`) at which an interval with
    ``interval``'s d and spreads decides ``comparison``; ``None`` if none does (an estimate:
    more seeds would also move d and the spreads)."""
    if interval.kind == "point":
        return None
    for n in range(2, MAX_SEEDS_ESTIMATE + 1):
        resized = interval.with_seeds(n)
        if decide(comparison, resized.low, resized.high) != "undecided":
            return n
    return None


def _seeds_estimate(comparison: Comparison, interval: Interval) -> str:
    n = seeds_needed(comparison, interval)
    if n is None:
        return (
            f"estimate: no number of seeds up to {MAX_SEEDS_ESTIMATE} per side decides at this "
            "difference and spread"
        )
    return f"estimate: about {n} seeds per side would decide at this difference and spread"


def quantity_values(records: Sequence[RunRecord], quantity: Quantity, row: TableRow) -> Stats:
    """The per-seed values of ``quantity`` among ``records`` of ``row``.

    A quantity naming its row (``Quantity.row``) matches records by transformation; otherwise
    the records of ``row`` itself (by row key: two datasets may share a transformation).
    """
    values: list[float] = []
    seeds: list[int] = []
    for record in _records_of(records, quantity, row):
        value = metric_value(record, quantity.metric)
        if value is not None:
            values.append(value)
            seeds.append(record.seed)
    return Stats(tuple(values), tuple(seeds))


def _records_of(records: Sequence[RunRecord], quantity: Quantity, row: TableRow) -> list[RunRecord]:
    """The records of ``quantity``'s method in its row (see :func:`quantity_values`)."""
    return [
        record
        for record in records
        if record.method == quantity.method
        and (
            record.row.get("transformation") == quantity.row
            if quantity.row is not None
            else record.row.get("key") == row.key
        )
    ]


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


# A side's numbers on a row: measured (Stats, empty when absent) or published.
SideOf = Callable[[Quantity, TableRow], "Stats | Published"]
# Whether a comparison is left out of a row (e.g. a row this profile did not run).
LeftOut = Callable[[Comparison, TableRow], bool]


def _checked_rows(claim: Claim, rows: Sequence[TableRow]) -> list[TableRow]:
    return [r for r in rows if claim.rows is None or r.transformation in claim.rows]


def _evaluate(
    claim: Claim, rows: Sequence[TableRow], side_of: SideOf, left_out: LeftOut
) -> ClaimResult:
    """Every item of ``claim`` on every checked row, with ``side_of`` giving the numbers; an
    item with every comparison ``left_out`` of a row is left out of it."""
    groups = []
    for item in claim.comparisons:
        comparisons = item.comparisons if isinstance(item, AnyOf) else (item,)
        fixed = all(c.fixed for c in comparisons)
        for row in [TableRow("", "", "—")] if fixed else _checked_rows(claim, rows):
            checks = []
            for comparison in comparisons:
                if left_out(comparison, row):
                    continue
                a = side_of(comparison.a, row)
                b = comparison.b
                b_side = b if isinstance(b, Constant) else side_of(b, row)
                judgement = compare(comparison, a, b_side)
                checks.append(Check(comparison, row.label, a, b_side, judgement))
            if checks:
                groups.append(CheckGroup(item, row.label, tuple(checks)))
    return ClaimResult(claim, tuple(groups))


def _quantities(comparison: Comparison) -> list[Quantity]:
    return [q for q in (comparison.a, comparison.b) if isinstance(q, Quantity)]


def evaluate(claim: Claim, records: Sequence[RunRecord], rows: Sequence[TableRow]) -> ClaimResult:
    """Check ``claim`` on ``records`` (already restricted to the table's current runs).

    ``rows``: the table's rows, in order. A comparison is left out of a row where neither of
    its methods has a record (a row this profile did not run, e.g. its data is absent); runs
    that did not log the metric give "no data". A comparison across named rows is never left
    out.
    """

    def left_out(comparison: Comparison, row: TableRow) -> bool:
        ran = any(_records_of(records, q, row) for q in _quantities(comparison))
        return not comparison.fixed and not ran

    return _evaluate(
        claim, rows, lambda quantity, row: quantity_values(records, quantity, row), left_out
    )


def evaluate_published(
    claim: Claim, published: Mapping[tuple[str, str], Published], rows: Sequence[TableRow]
) -> ClaimResult:
    """Check ``claim`` on the paper's own table: ``published`` by (row key, method), ``rows``
    the paper's rows. Only accuracies are published; a result without checks means the paper
    publishes no numbers for the claim."""

    def number(quantity: Quantity, row: TableRow) -> Published | None:
        if quantity.metric not in ("accuracy", "linear"):
            return None
        keys = (
            [r.key for r in rows if r.transformation == quantity.row]
            if quantity.row is not None
            else [row.key]
        )
        found = [
            published[(key, quantity.method)] for key in keys if (key, quantity.method) in published
        ]
        return found[0] if len(found) == 1 else None

    def side_of(quantity: Quantity, row: TableRow) -> Published:
        side = number(quantity, row)
        assert side is not None  # left out otherwise
        return side

    def left_out(comparison: Comparison, row: TableRow) -> bool:
        return any(number(q, row) is None for q in _quantities(comparison))

    return _evaluate(claim, rows, side_of, left_out)
