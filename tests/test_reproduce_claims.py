"""Claim verdicts from records: synthetic seeds whose verdict is known by construction.

Unpaired (no seeds given, or different seeds): d ± 2·SE with SE = sqrt(s_a²/n_a + s_b²/n_b);
samples like (10, 11, 12) have mean 11 and sample std 1, so two of them give
SE = sqrt(2/3) = 0.816. Paired (the same seeds on both sides): SE = s_d / sqrt(n) of the
per-seed differences d_i = a_i - b_i.
"""

from __future__ import annotations

import pytest

from ssl_geom.reproduce.claims import (
    Claim,
    Comparison,
    Paper,
    Quantity,
    Stats,
    TableRow,
    combine,
    compare,
    evaluate,
    metric_value,
)
from ssl_geom.reproduce.records import RunRecord
from ssl_geom.reproduce.tables import TABLES
from ssl_geom.reproduce.tables.hssl import TABLE1
from tests.reproduce_testing import run_record

GREATER = Comparison("greater", Quantity("A"), Quantity("B"))
WITHIN_3 = Comparison("comparable", Quantity("A"), Quantity("B"), tolerance=3.0)


def _stats(*values: float) -> Stats:
    return Stats(tuple(values))


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        # d = 5, interval [3.37, 6.63]: wholly above 0.
        ((10, 11, 12), (5, 6, 7), "supported"),
        # d = -5, interval [-6.63, -3.37]: wholly at or below 0.
        ((5, 6, 7), (10, 11, 12), "not supported"),
        # d = -0.5, interval [-2.13, 1.13]: straddles 0.
        ((10, 11, 12), (10.5, 11.5, 12.5), "undecided"),
    ],
)
def test_greater_verdicts(a: tuple, b: tuple, verdict: str) -> None:
    assert compare(GREATER, _stats(*a), _stats(*b))[0] == verdict


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ((70, 71, 72), (70.5, 71.5, 72.5), "supported"),  # [-2.13, 1.13] inside ±3
        ((80, 81, 82), (70, 71, 72), "not supported"),  # [8.37, 11.63] above 3
        ((73, 74, 75), (70, 71, 72), "undecided"),  # [1.37, 4.63] crosses 3
    ],
)
def test_comparable_verdicts(a: tuple, b: tuple, verdict: str) -> None:
    assert compare(WITHIN_3, _stats(*a), _stats(*b))[0] == verdict


def test_margins_no_spread_and_no_data() -> None:
    # "At least, within 0.5": d = -0.2 with SE = 0.0816 (std 0.1) -> [-0.36, -0.04] > -0.5.
    at_least = Comparison("greater", Quantity("A"), Quantity("B"), margin=-0.5)
    assert compare(at_least, _stats(69.9, 70.0, 70.1), _stats(70.1, 70.2, 70.3))[0] == "supported"
    # "Clearly above, by 1 point": d = 0.6 with zero spread is not above 1.
    clearly = Comparison("greater", Quantity("A"), Quantity("B"), margin=1.0)
    assert compare(clearly, _stats(80.6, 80.6), _stats(80.0, 80.0))[0] == "not supported"
    assert compare(GREATER, _stats(10.0), _stats(5.0, 6.0)) == (
        "undecided",
        "fewer than 2 seeds: no spread to judge the difference by",
    )
    assert compare(GREATER, _stats(), _stats(5.0, 6.0)) == ("undecided", "no data")
    # A projector rank pinned at 64 in every seed of both rows: nothing moved.
    assert compare(GREATER, _stats(64, 64, 64), _stats(64, 64, 64))[0] == "undecided"


def test_same_seeds_are_compared_pair_by_pair() -> None:
    a, b = (10.0, 11.0, 12.0), (9.5, 10.5, 11.5)
    # Unpaired: d = 0.5, SE = 0.816 -> [-1.13, 2.13] straddles 0.
    assert compare(GREATER, _stats(*a), _stats(*b))[0] == "undecided"
    # Paired on seeds 0, 1, 2: every d_i = 0.5, so s_d = 0 and the interval is [0.5, 0.5].
    verdict, reason = compare(GREATER, Stats(a, (0, 1, 2)), Stats(b, (0, 1, 2)))
    assert (verdict, reason.split()[0]) == ("supported", "paired")
    # Pairs follow the seed, not the order: b listed as seeds 2, 1, 0 pairs 10 with 11.5,
    # 11 with 10.5 and 12 with 9.5: d_i = (-1.5, 0.5, 2.5), mean 0.5, s_d = 2,
    # SE = 2/sqrt(3) = 1.155 -> [-1.81, 2.81]: undecided.
    verdict, reason = compare(GREATER, Stats(a, (0, 1, 2)), Stats(b, (2, 1, 0)))
    assert verdict == "undecided" and "[-1.81, 2.81]" in reason
    # Different seed sets cannot be paired: back to the unpaired rule.
    verdict, reason = compare(GREATER, Stats(a, (0, 1, 2)), Stats(b, (3, 4, 5)))
    assert (verdict, reason.split()[0]) == ("undecided", "unpaired")
    # A seed named twice on one side (same seed set, one more value) pairs ambiguously: unpaired.
    verdict, reason = compare(GREATER, Stats(a, (0, 1, 2)), Stats((*b, 11.5), (0, 1, 2, 2)))
    assert reason.split()[0] == "unpaired"


def test_combine_needs_every_check() -> None:
    assert combine(["supported", "supported"]) == "supported"
    assert combine(["supported", "undecided"]) == "undecided"
    assert combine(["undecided", "not supported", "supported"]) == "not supported"
    assert combine([]) == "undecided"


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
    """Per row and seed s: A-SSL 70+s, H-SSL 70.5+s, Frozen 60+s, Supervised 65+s.

    These are the runs' linear evaluations, which the H-SSL claims judge; every online
    accuracy (the table's cell) is 50, so a claim that read the cells would be undecided
    throughout ("nothing moved"). The same seeds on every side, so checks are paired: H-SSL - A-SSL = 0.5 in every seed
    (interval [0.5, 0.5]) inside ±3: comparable is supported. Supervised is 5 below A-SSL in
    every seed -> "supervised is best" is not supported. SSL-beats-Frozen is supported on
    Translation (d_i = 10) and built undecided on Scale, where Frozen is 69.5+s+j with
    j = (0, 2, -2): A-SSL - Frozen = (0.5, -1.5, 2.5), mean 0.5, s_d = 2, SE = 1.155 ->
    [-1.81, 2.81]; H-SSL - Frozen = (1, -1, 3) -> [-1.31, 3.31]; both straddle 0.
    """
    offsets = {"A-SSL": 70.0, "H-SSL": 70.5, "Frozen": 60.0, "Supervised": 65.0}
    jitter = (0.0, 2.0, -2.0)
    records = [
        _record(
            row,
            method,
            seed,
            50.0,
            settings=_linear(
                base + seed + (9.5 + jitter[seed] if row == "Scale" and method == "Frozen" else 0)
            ),
        )
        for row in ("Rotation", "Translation", "Scale")
        for method, base in offsets.items()
        for seed in range(3)
    ]
    # A CIFAR10 Scale row shares its transformation with the Fashion-MNIST one but is its own
    # row (never pooled: every check has n = 3); only A-SSL / H-SSL ran there (30+s, 30.5+s).
    # A Tiny ImageNet row without any record is left out of every claim.
    records += [
        _record("Scale", method, seed, 50.0, key="cifar10_scale", settings=_linear(base + seed))
        for method, base in (("A-SSL", 30.0), ("H-SSL", 30.5))
        for seed in range(3)
    ]
    rows = [TableRow(f"f_{t}", t, t) for t in ("Rotation", "Translation", "Scale")]
    rows += [TableRow("cifar10_scale", "Scale", "C"), TableRow("tin_scale", "Scale", "T")]
    comparable, supervised, beats_frozen = (evaluate(c, records, rows) for c in TABLE1.claims)
    assert comparable.verdict == "supported" and len(comparable.checks) == 4
    assert all(c.a.n == 3 and c.b.n == 3 for c in comparable.checks)
    assert supervised.verdict == "not supported"
    assert beats_frozen.verdict == "undecided"
    assert {c.row for c in beats_frozen.checks} == {"Translation", "Scale", "C"}  # not Rotation
    by_row = {(c.row, c.comparison.a.method): c.verdict for c in beats_frozen.checks}
    assert by_row[("Translation", "A-SSL")] == "supported"
    assert by_row[("Scale", "H-SSL")] == "undecided"


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
        Paper("A", "T", "0000.00000"),
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
        for s in range(3)
    ]
    rows = [TableRow(f"f_{t}", t, t) for t in ("large augmentations", "small augmentations")]
    result = evaluate(claim, records, rows)
    assert [c.row for c in result.checks] == ["—"]
    assert result.verdict == "supported"


def test_every_table_has_cited_claims_without_local_paths() -> None:
    for table in TABLES.values():
        assert table.claims, table.name
        assert "shared/" not in table.citation and "arXiv:" in table.citation
        for claim in table.claims:
            assert claim.quote and claim.where
            assert claim.paper.arxiv.count(".") == 1
