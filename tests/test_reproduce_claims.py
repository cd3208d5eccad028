"""Claim verdicts from records: synthetic seeds whose 95 % t-interval is known by hand.

Quantiles used below (two-sided 95 %, scipy.stats.t.ppf(0.975, df); the same as a printed
t table): t(2) = 4.3027, t(3) = 3.1824, t(4) = 2.7764.

Unpaired (no seeds given, or different seeds): Welch. Samples like (10, 11, 12) have mean 11
and sample std 1, so two of them give SE = √(1/3 + 1/3) = 0.8165 and Welch df
= (2/3)² / (2 · (1/3)² / 2) = 4: half-width 2.7764 · 0.8165 = 2.267. Paired (the same seeds on
both sides): SE = s_d/√n of the per-seed differences, t(n − 1).
"""

from __future__ import annotations

import dataclasses

import pytest

from ssl_geom.reproduce.claims import (
    AnyOf,
    Claim,
    Comparison,
    Constant,
    Judgement,
    Paper,
    Published,
    Quantity,
    Stats,
    TableRow,
    any_of,
    combine,
    compare,
    evaluate,
    evaluate_published,
    metric_value,
    seeds_needed,
)
from ssl_geom.reproduce.claims_section import RULE, paper_result, paper_verdict, render_claims
from ssl_geom.reproduce.intervals import Interval
from ssl_geom.reproduce.records import RunRecord
from ssl_geom.reproduce.schema import TableSpec
from ssl_geom.reproduce.tables import TABLES
from ssl_geom.reproduce.tables.care import CARE_LAMBDA_TABLE, CARE_TABLE
from ssl_geom.reproduce.tables.geometry_paper import RANK_TABLE
from ssl_geom.reproduce.tables.hssl import TABLE1, TABLE2
from tests.reproduce_testing import run_record

GREATER = Comparison("greater", Quantity("A"), Quantity("B"))
WITHIN_3 = Comparison("comparable", Quantity("A"), Quantity("B"), tolerance=3.0)
DIFFERS = Comparison("differs", Quantity("A"), Quantity("B"), tolerance=3.0)
PAPER = Paper("A", "T", "0000.00000")
SEEDS3 = (0, 1, 2)


def _stats(*values: float) -> Stats:
    return Stats(tuple(values))


def _interval(judgement: Judgement) -> Interval:
    assert judgement.interval is not None, judgement.note
    return judgement.interval


def _paired(diffs: tuple[float, ...]) -> tuple[Stats, Stats]:
    """a and b on seeds 0..n-1 with a_i − b_i = diffs[i] (b = 50 + i, so a and b vary)."""
    seeds = tuple(range(len(diffs)))
    b = tuple(50.0 + i for i in seeds)
    return Stats(tuple(x + d for x, d in zip(b, diffs, strict=True)), seeds), Stats(b, seeds)


def test_three_paired_seeds_that_a_2_se_rule_called_supported_are_undecided() -> None:
    """Differences 1.0, 1.5, 0.2: d = 0.9, s_d = √(0.86/2) = 0.6557, SE = 0.3786.
    ±2·SE would give [0.14, 1.66], "supported"; t(2) = 4.3027 gives ±1.629: [-0.73, 2.53]."""
    judgement = compare(GREATER, *_paired((1.0, 1.5, 0.2)))
    assert judgement.verdict == "undecided"
    interval = _interval(judgement)
    assert interval.kind == "paired" and interval.df == 2
    assert interval.quantile == pytest.approx(4.3027, abs=1e-4)
    assert interval.half_width == pytest.approx(1.629, abs=1e-3)
    assert (round(interval.low, 2), round(interval.high, 2)) == (-0.73, 2.53)


def test_five_paired_seeds_of_one_plus_or_minus_a_twentieth_are_supported() -> None:
    """Differences 0.95, 0.95, 1.0, 1.05, 1.05: d = 1.0, s_d = √(4 · 0.0025 / 4) = 0.05,
    SE = 0.05/√5 = 0.02236, t(4) = 2.7764: [0.938, 1.062], above 0."""
    judgement = compare(GREATER, *_paired((0.95, 0.95, 1.0, 1.05, 1.05)))
    assert judgement.verdict == "supported"
    assert _interval(judgement).low == pytest.approx(0.938, abs=1e-3)
    assert _interval(judgement).high == pytest.approx(1.062, abs=1e-3)


def test_welch_interval_by_hand() -> None:
    """a = (10, 12, 14): mean 12, s² = 4; b = (5, 6, 7, 8, 9): mean 7, s² = 2.5.
    v_a = 4/3 = 1.3333, v_b = 2.5/5 = 0.5; SE = √1.8333 = 1.3540;
    df = 1.8333² / (1.3333²/2 + 0.5²/4) = 3.3611 / 0.9514 = 3.5328;
    t.ppf(0.975, 3.5328) = 2.9274 (scipy); half-width 2.9274 · 1.3540 = 3.964:
    d = 5, interval [1.036, 8.964]."""
    judgement = compare(GREATER, _stats(10, 12, 14), _stats(5, 6, 7, 8, 9))
    interval = _interval(judgement)
    assert interval.kind == "Welch"
    assert interval.se == pytest.approx(1.3540, abs=1e-4)
    assert interval.df == pytest.approx(3.5328, abs=1e-4)
    assert interval.quantile == pytest.approx(2.9274, abs=1e-4)
    assert (interval.low, interval.high) == pytest.approx((1.036, 8.964), abs=1e-3)
    assert judgement.verdict == "supported"
    # One side without spread: df = (v_b)² / (v_b²/(n_b − 1)) = n_b − 1 = 4.
    assert _interval(compare(GREATER, _stats(9, 9, 9), _stats(5, 6, 7, 8, 9))).df == 4


def test_seeds_estimate_by_hand() -> None:
    """The 3-seed case above (d = 0.9, s_d = 0.6557) decides once t(n−1)·s_d/√n < 0.9:
    n = 4 gives 3.1824 · 0.6557 / 2 = 1.043 (not yet), n = 5 gives 2.7764 · 0.6557 / √5 =
    0.814: 5 seeds."""
    judgement = compare(GREATER, *_paired((1.0, 1.5, 0.2)))
    assert seeds_needed(GREATER, _interval(judgement)) == 5
    assert "estimate: about 5 seeds per side" in judgement.note
    # A difference exactly at the threshold never decides, whatever the seeds.
    at_zero = Interval("paired", 0.0, (1.0,), (3,))
    assert seeds_needed(GREATER, at_zero) is None
    at_zero_note = compare(GREATER, *_paired((1.0, -1.0, 0.0))).note
    assert "no number of seeds up to 100" in at_zero_note


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        # d = 5, interval [2.73, 7.27]: wholly above 0.
        ((10, 11, 12), (5, 6, 7), "supported"),
        # d = -5, interval [-7.27, -2.73]: wholly at or below 0.
        ((5, 6, 7), (10, 11, 12), "not supported"),
        # d = -0.5, interval [-2.77, 1.77]: straddles 0.
        ((10, 11, 12), (10.5, 11.5, 12.5), "undecided"),
    ],
)
def test_greater_verdicts(a: tuple, b: tuple, verdict: str) -> None:
    assert compare(GREATER, _stats(*a), _stats(*b)).verdict == verdict


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ((70, 71, 72), (70.5, 71.5, 72.5), "supported"),  # [-2.77, 1.77] inside ±3
        ((80, 81, 82), (70, 71, 72), "not supported"),  # [7.73, 12.27] above 3
        ((73, 74, 75), (70, 71, 72), "undecided"),  # [0.73, 5.27] crosses 3
    ],
)
def test_comparable_verdicts(a: tuple, b: tuple, verdict: str) -> None:
    assert compare(WITHIN_3, _stats(*a), _stats(*b)).verdict == verdict


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ((60, 61, 62), (70, 71, 72), "supported"),  # [-12.27, -7.73] excludes 0 (below)
        ((80, 81, 82), (70, 71, 72), "supported"),  # [7.73, 12.27] excludes 0 (above)
        ((70, 71, 72), (70.5, 71.5, 72.5), "not supported"),  # [-2.77, 1.77]: 0 in, inside ±3
        ((71, 72, 73), (70, 71, 72), "undecided"),  # [-1.27, 3.27]: 0 in, beyond 3
    ],
)
def test_differs_verdicts(a: tuple, b: tuple, verdict: str) -> None:
    assert compare(DIFFERS, _stats(*a), _stats(*b)).verdict == verdict


def test_margins_no_spread_and_no_data() -> None:
    # "At least, within 0.5": d = -0.2, SE = 0.0816, t(4) -> [-0.43, 0.03], above -0.5.
    at_least = Comparison("greater", Quantity("A"), Quantity("B"), margin=-0.5)
    assert compare(at_least, _stats(69.9, 70.0, 70.1), _stats(70.1, 70.2, 70.3)).verdict == (
        "supported"
    )
    # "By more than 1 point": d = 0.6 with zero spread is not above 1.
    clearly = Comparison("greater", Quantity("A"), Quantity("B"), margin=1.0)
    assert compare(clearly, _stats(80.6, 80.6), _stats(80.0, 80.0)).verdict == "not supported"
    one_seed = compare(GREATER, _stats(10.0), _stats(5.0, 6.0))
    assert (one_seed.verdict, one_seed.interval) == ("undecided", None)
    assert one_seed.note == "fewer than 2 seeds: no spread to judge the difference by"
    assert compare(GREATER, _stats(), _stats(5.0, 6.0)).note == "no data"
    # A projector rank pinned at 64 in every seed of both rows: nothing moved.
    pinned = compare(GREATER, _stats(64, 64, 64), _stats(64, 64, 64))
    assert pinned.verdict == "undecided" and "nothing moved" in pinned.note


def test_same_seeds_are_compared_pair_by_pair() -> None:
    a, b = (10.0, 11.0, 12.0), (9.5, 10.5, 11.5)
    # Unpaired: d = 0.5, SE = 0.816, t(4) -> [-1.77, 2.77] straddles 0.
    assert compare(GREATER, _stats(*a), _stats(*b)).verdict == "undecided"
    # Paired on seeds 0, 1, 2: every d_i = 0.5, so s_d = 0 and the interval is [0.5, 0.5].
    judgement = compare(GREATER, Stats(a, SEEDS3), Stats(b, SEEDS3))
    assert judgement.verdict == "supported" and _interval(judgement).kind == "paired"
    # Pairs follow the seed, not the order: b listed as seeds 2, 1, 0 pairs 10 with 11.5,
    # 11 with 10.5 and 12 with 9.5: d_i = (-1.5, 0.5, 2.5), mean 0.5, s_d = 2,
    # SE = 2/√3 = 1.155, t(2) = 4.3027 -> [-4.47, 5.47]: undecided.
    judgement = compare(GREATER, Stats(a, SEEDS3), Stats(b, (2, 1, 0)))
    assert judgement.verdict == "undecided"
    assert (_interval(judgement).low, _interval(judgement).high) == pytest.approx(
        (-4.468, 5.468), abs=1e-3
    )
    # Different seed sets cannot be paired: back to Welch.
    judgement = compare(GREATER, Stats(a, SEEDS3), Stats(b, (3, 4, 5)))
    assert _interval(judgement).kind == "Welch"
    # A seed named twice on one side (same seed set, one more value) pairs ambiguously: Welch.
    judgement = compare(GREATER, Stats(a, SEEDS3), Stats((*b, 11.5), (0, 1, 2, 2)))
    assert _interval(judgement).kind == "Welch"


def test_a_quantity_against_a_constant() -> None:
    """Rank fractions 0.97, 0.98, 0.99 against 0.95: one-sample, d = 0.03, s = 0.01,
    SE = 0.01/√3 = 0.005774, t(2) = 4.3027: [0.0052, 0.0548], above 0 -> supported."""
    full_rank = Comparison("greater", Quantity("A"), Constant(0.95))
    judgement = compare(full_rank, _stats(0.97, 0.98, 0.99), Constant(0.95))
    assert judgement.verdict == "supported" and _interval(judgement).kind == "one-sample"
    assert _interval(judgement).low == pytest.approx(0.0052, abs=1e-4)
    # 0.94, 0.95, 0.96: d = 0, interval [-0.0248, 0.0248] -> undecided.
    assert compare(full_rank, _stats(0.94, 0.95, 0.96), Constant(0.95)).verdict == "undecided"
    # At its maximum in every seed: a constant a is no reason for "nothing moved" here.
    assert compare(full_rank, _stats(1.0, 1.0, 1.0), Constant(0.95)).verdict == "supported"
    assert compare(full_rank, _stats(1.0), Constant(0.95)).verdict == "undecided"
    # Checked on every row, since the constant names no row.
    records = [
        _record(row, "A", s, 0.0, history=[{"geometry/f": value + s / 100}])
        for row, value in (("r1", 0.97), ("r2", 0.5))
        for s in SEEDS3
    ]
    claim = Claim(
        PAPER,
        "Fig. 9",
        "q",
        (Comparison("greater", Quantity("A", "final:geometry/f"), Constant(0.95)),),
    )
    result = evaluate(claim, records, [TableRow(f"f_{r}", r, r) for r in ("r1", "r2")])
    assert [(c.row, c.verdict) for c in result.checks] == [
        ("r1", "supported"),
        ("r2", "not supported"),
    ]


def test_point_difference_is_for_the_papers_numbers_only() -> None:
    """CARE Table 1 publishes one number per cell, no std: the point difference decides."""
    care, base = Published(91.92, None, 1), Published(90.98, None, 1)
    judgement = compare(GREATER, care, base)
    assert judgement.verdict == "supported" and _interval(judgement).half_width == 0
    assert _interval(judgement).d == pytest.approx(0.94)
    assert compare(GREATER, base, care).verdict == "not supported"
    assert compare(WITHIN_3, care, base).verdict == "supported"  # |0.94| <= 3
    # A measured single value is never judged as a point: it has no spread.
    assert compare(GREATER, _stats(91.92), _stats(90.98)).verdict == "undecided"
    # Published with a std: Welch on mean ± std over n runs, as measured sides.
    welch = compare(GREATER, Published(12, 2, 3), Published(7, 2.5**0.5, 5))
    assert _interval(welch).df == pytest.approx(3.5328, abs=1e-4)


def test_combine_and_any_of() -> None:
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "undecided"]) == "undecided"
    assert combine(["undecided", "not supported", "supported"]) == "not supported"
    assert combine([]) == "undecided"
    assert any_of(["not supported", "supported"]) == "supported"
    assert any_of(["not supported", "undecided"]) == "undecided"
    assert any_of(["not supported", "not supported"]) == "not supported"
    assert any_of([]) == "undecided"


def test_any_of_groups_inside_a_claim() -> None:
    """λ columns (paired, 3 seeds, every difference constant so s_d = 0): in-range 0.01 at
    70 + s and 0.1 at 72 + s; out of range 0.001 at 71 + s and 1 at 75 + s.
    Against 0.001: 0.1 beats it (+1), 0.01 does not (−1): the group is supported.
    Against 1: neither beats it (−5, −3): not supported, so the claim is not supported."""
    inside, outside = ("in1", "in2"), ("out1", "out2")
    claim = Claim(
        PAPER,
        "Fig. 8",
        "q",
        tuple(
            AnyOf(tuple(Comparison("greater", Quantity(i), Quantity(o)) for i in inside))
            for o in outside
        ),
    )
    base = {"in1": 70.0, "in2": 72.0, "out1": 71.0, "out2": 75.0}
    records = [_record("r", m, s, value + s) for m, value in base.items() for s in SEEDS3]
    result = evaluate(claim, records, [TableRow("f_r", "r", "r")])
    assert [g.verdict for g in result.groups] == ["supported", "not supported"]
    assert [c.verdict for c in result.groups[0].checks] == ["not supported", "supported"]
    assert result.verdict == "not supported"
    # With 1 as good as 0.1 (72 + s and a jitter): the second group is undecided instead.
    jitter = (0.0, 2.0, -2.0)
    records = [r for r in records if r.method != "out2"]
    records += [_record("r", "out2", s, 72.0 + s + jitter[s]) for s in SEEDS3]
    assert evaluate(claim, records, [TableRow("f_r", "r", "r")]).verdict == "undecided"


def _linear(accuracy: float) -> dict:
    """``settings`` of a run whose linear evaluation gave ``accuracy`` (%)."""
    return {"linear_eval": {"metrics": {"linear/test_acc": accuracy / 100}}}


def _record(
    transformation: str, method: str, seed: int, acc: float, key: str = "", **extra
) -> RunRecord:
    row = {"dataset": "F", "transformation": transformation, "backbone": "b"}
    row["key"] = key or f"f_{transformation}"
    return run_record(f"{key}{transformation}-{method}-{seed}", row, method, seed, acc, **extra)


def test_table1_claims_on_records_built_for_each_verdict() -> None:
    """Per row and seed s: A-SSL 70+s, H-SSL 70.5+s, Frozen 60+s, Supervised 80+s.

    These are the runs' linear evaluations, which the H-SSL claims judge; every online
    accuracy (the table's cell) is 50, so a claim that read the cells would be undecided
    throughout ("nothing moved"). The same seeds on every side, so checks are paired:
    H-SSL − A-SSL = 0.5 in every seed (interval [0.5, 0.5]) inside ±3: claim 1 is supported.
    Claim 2 (each SSL method differs from each baseline): on Rotation every difference is
    constant and non-zero: supported. On Translation Frozen is 70+s+j, j = (0.5, -0.5, 0):
    A-SSL − Frozen = (-0.5, 0.5, 0), mean 0, s_d = 0.5, t(2) -> [-1.24, 1.24]: 0 inside and
    within ±3, not supported. On Scale Frozen is 69.5+s+j, j = (0, 2, -2): A-SSL − Frozen =
    (0.5, -1.5, 2.5), mean 0.5, s_d = 2, t(2) -> [-4.47, 5.47]: undecided.
    """
    offsets = {"A-SSL": 70.0, "H-SSL": 70.5, "Frozen": 60.0, "Supervised": 80.0}
    frozen = {"Translation": (10.5, 9.5, 10.0), "Scale": (9.5, 11.5, 7.5)}

    def linear(row: str, method: str, seed: int) -> float:
        shift = frozen[row][seed] if method == "Frozen" and row in frozen else 0.0
        return offsets[method] + seed + shift

    records = [
        _record(row, method, seed, 50.0, settings=_linear(linear(row, method, seed)))
        for row in ("Rotation", "Translation", "Scale")
        for method in offsets
        for seed in SEEDS3
    ]
    # A CIFAR10 Scale row shares its transformation with the Fashion-MNIST one but is its own
    # row (never pooled: every check has n = 3); only A-SSL / H-SSL ran there (30+s, 30.5+s).
    # A Tiny ImageNet row without any record is left out of every claim.
    records += [
        _record("Scale", method, seed, 50.0, key="cifar10_scale", settings=_linear(base + seed))
        for method, base in (("A-SSL", 30.0), ("H-SSL", 30.5))
        for seed in SEEDS3
    ]
    rows = [TableRow(f"f_{t}", t, t) for t in ("Rotation", "Translation", "Scale")]
    rows += [TableRow("cifar10_scale", "Scale", "C"), TableRow("tin_scale", "Scale", "T")]
    equivalent, differs = (evaluate(c, records, rows) for c in TABLE1.claims)
    assert equivalent.verdict == "supported" and len(equivalent.checks) == 4
    assert all(c.a.n == 3 and c.b.n == 3 for c in equivalent.checks)
    assert differs.verdict == "not supported"
    by_row = {(c.row, c.comparison.a.method, c.comparison.b.label()): c for c in differs.checks}
    frozen_label = "Frozen linear-evaluation accuracy"
    assert {r for r, _, _ in by_row} == {"Rotation", "Translation", "Scale", "C"}  # not T
    assert all(by_row[("Rotation", m, b)].verdict == "supported" for _, m, b in by_row)
    assert by_row[("Translation", "A-SSL", frozen_label)].verdict == "not supported"
    assert by_row[("Scale", "A-SSL", frozen_label)].verdict == "undecided"
    assert by_row[("C", "A-SSL", frozen_label)].judgement.note == "no data"  # Frozen not run


def test_metric_sources_and_fixed_rows() -> None:
    record = _record(
        "small augmentations",
        "SimCLR",
        0,
        50.0,
        metrics={"geometry/wahba_error_test": 3.5},
        history=[
            {"epoch": 0.0, "geometry/projector_rank": 60.0},
            {"epoch": 1.0, "geometry/projector_rank": 40.0},
        ],
    )
    assert metric_value(record, "accuracy") == 50.0
    # No linear evaluation (a dataset without a linear protocol): the table's accuracy.
    assert metric_value(record, "linear") == 50.0
    evaluated = _record("small augmentations", "SimCLR", 0, 50.0, settings=_linear(61.5))
    assert metric_value(evaluated, "linear") == pytest.approx(61.5)
    assert metric_value(evaluated, "accuracy") == 50.0
    assert metric_value(record, "test:geometry/wahba_error_test") == 3.5
    assert metric_value(record, "final:geometry/projector_rank") == 40.0  # the last epoch's
    assert metric_value(record, "test:absent") is None
    with pytest.raises(ValueError, match="unknown metric 'rank'"):
        metric_value(record, "rank")

    # Quantities naming their rows are compared once, across rows: ranks 40/41/42 (small)
    # against 20/21/22 (large) -> d = 20, supported.
    rank = "final:geometry/projector_rank"
    claim = Claim(
        PAPER,
        "Fig. 1",
        "quote",
        (
            Comparison(
                "greater",
                Quantity("SimCLR", rank, "small augmentations"),
                Quantity("SimCLR", rank, "large augmentations"),
            ),
        ),
    )
    records = [
        _record(row, "SimCLR", s, 0.0, history=[{"geometry/projector_rank": base + s}])
        for row, base in (("small augmentations", 40.0), ("large augmentations", 20.0))
        for s in SEEDS3
    ]
    rows = [TableRow(f"f_{t}", t, t) for t in ("large augmentations", "small augmentations")]
    result = evaluate(claim, records, rows)
    assert [c.row for c in result.checks] == ["—"]
    assert result.verdict == "supported"


def _paper_verdicts(table: TableSpec) -> list[str]:
    return [paper_verdict(paper_result(table, claim)) for claim in table.claims]


def test_no_claim_is_contradicted_by_its_own_papers_table() -> None:
    for table in TABLES.values():
        for claim, verdict in zip(table.claims, _paper_verdicts(table), strict=True):
            assert verdict != "contradicted", (table.name, claim.where)


def test_the_papers_own_verdicts() -> None:
    """What the published numbers say of each encoding (the rule on mean ± std over 3 runs for
    H-SSL, point differences for CARE); claims without published numbers say so."""
    assert _paper_verdicts(TABLE1) == ["undecided", "undecided"]
    assert _paper_verdicts(TABLE2) == ["supported", "undecided"]
    assert _paper_verdicts(CARE_TABLE) == [
        "supported",
        "no numbers published",
        "no numbers published",
    ]
    assert _paper_verdicts(CARE_LAMBDA_TABLE) == ["no numbers published"]
    assert _paper_verdicts(RANK_TABLE) == ["no numbers published"] * 2
    # By hand, H-SSL Table 1's CIFAR10 translation row: H-SSL 36.3 ± 1.1 vs A-SSL 39.2 ± 0.5
    # (n = 3 each): d = -2.9, v = 1.21/3 = 0.4033 and 0.25/3 = 0.0833, SE = √0.4867 = 0.6976,
    # df = 0.4867² / (0.4033²/2 + 0.0833²/2) = 0.2368 / 0.0848 = 2.79, t = 3.32 (scipy):
    # [-5.22, -0.58]: crosses -3, so "equivalent within ±3" is undecided there.
    equivalent = paper_result(TABLE1, TABLE1.claims[0])
    (check,) = [c for c in equivalent.checks if c.row == "CIFAR10 / Translation"]
    assert check.a == Published(36.3, 1.1, 3) and check.b == Published(39.2, 0.5, 3)
    interval = _interval(check.judgement)
    assert interval.df == pytest.approx(2.79, abs=0.01)
    assert (interval.low, interval.high) == pytest.approx((-5.22, -0.58), abs=0.01)
    assert check.verdict == "undecided"
    # CARE Table 1 has no MoCo-v2 number on STL10: that check is left out (4 + 3 checks).
    care = paper_result(CARE_TABLE, CARE_TABLE.claims[0])
    assert len(care.checks) == 7 and all(
        _interval(c.judgement).kind == "point" for c in care.checks
    )


def test_the_claims_section_states_the_rule_and_both_verdicts() -> None:
    """One claim on the 3-seed case (undecided, ±1.63, estimate 5 seeds), with a paper table
    that supports it by a point difference."""
    claim = Claim(PAPER, "Sec. 1", "A full sentence.", (GREATER,), encoding="one line")
    diffs = (1.0, 1.5, 0.2)
    records = [_record("r", "A", s, 50.0 + s + d) for s, d in enumerate(diffs)]
    records += [_record("r", "B", s, 50.0 + s) for s in SEEDS3]
    rows = [TableRow("f_r", "r", "F / r")]
    measured = evaluate(claim, records, rows)
    paper = evaluate_published(
        claim, {("f_r", "A"): Published(2.0, None, 1), ("f_r", "B"): Published(1.0, None, 1)}, rows
    )
    lines = render_claims([measured], [paper])
    text = "\n".join(lines)
    assert RULE in lines and "95 % Student-t" in RULE and "Welch–Satterthwaite" in RULE
    assert "**undecided** · paper's own table: **supported**" in text
    assert "> A full sentence." in text and "Encoding: one line" in text
    (row,) = [line for line in lines if line.startswith("| A accuracy > B accuracy")]
    assert "+0.9 [-0.729, 2.53] | 1.63 | undecided | paired, t(2) = 4.3" in row
    assert "estimate: about 5 seeds per side" in row
    assert "Paper's own table (1 check on its rows): 1 supported." in text
    # No numbers published: said so, in the heading and below the checks.
    unpublished = render_claims([measured], [evaluate_published(claim, {}, rows)])
    assert "paper's own table: **no numbers published**" in "\n".join(unpublished)


def test_every_table_has_cited_claims_without_local_paths() -> None:
    for table in TABLES.values():
        assert table.claims, table.name
        assert "shared/" not in table.citation and "arXiv:" in table.citation
        for claim in table.claims:
            assert claim.quote and claim.where
            assert claim.quote[0].isupper() and claim.quote.endswith("."), claim.quote
            assert claim.paper.arxiv.count(".") == 1


def test_bad_input_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"at least 2 values per side, got \(1,\)"):
        Interval("paired", 1.0, (0.5,), (1,))
    with pytest.raises(ValueError, match="a Welch interval takes 2 spread"):
        Interval("Welch", 1.0, (0.5,), (3,))
    # A published std without the number of runs it is over cannot be judged.
    with pytest.raises(ValueError, match=r"publishes a std .* but no reference_runs"):
        dataclasses.replace(TABLE1, reference_runs=None).published()


def test_runs_without_the_metric_give_no_data_and_rows_not_run_are_left_out() -> None:
    """CARE's Wahba claim on records that logged the mean Wahba error but not its worst case
    (records made before the worst case was measured): the mean check decides (paired,
    SimCLR − CARE = 1 in every seed), the worst-case check is "no data", so the claim stays
    undecided instead of resting on the mean alone."""
    wahba = {"SimCLR": 4.0, "CARE-SimCLR": 3.0}
    records = [
        _record("aug", m, s, 70.0, metrics={"geometry/wahba_error_test": v + s})
        for m, v in wahba.items()
        for s in SEEDS3
    ]
    rows = [TableRow("f_aug", "aug", "F"), TableRow("not_run", "aug", "N")]
    result = evaluate(CARE_TABLE.claims[1], records, rows)
    assert [(c.row, c.verdict, c.judgement.note) for c in result.checks] == [
        ("F", "supported", ""),
        ("F", "undecided", "no data"),
    ]
    assert result.verdict == "undecided"
    # The encoder-rank claim compares with a constant: a row without records is left out too.
    rank = [
        _record("aug", "SimCLR", s, 70.0, history=[{"geometry/embedding_rank_fraction": 1.0}])
        for s in SEEDS3
    ]
    full_rank = evaluate(RANK_TABLE.claims[1], rank, rows)
    assert [(c.row, c.verdict) for c in full_rank.checks] == [("F", "supported")]
