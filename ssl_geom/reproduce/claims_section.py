"""The "Claims" section of a table: the rule, then each claim with its measured checks and the
verdict of the paper's own table beside the measured one (the rule: ``claims.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from .claims import (
    AnyOf,
    Check,
    Claim,
    ClaimResult,
    TableRow,
    Verdict,
    evaluate,
    evaluate_published,
)
from .records import RunRecord
from .schema import TableSpec

RULE = (
    "Verdict rule: each check is a difference d = a − b with its 95 % Student-t interval "
    "d ± t·SE. Paired when a and b ran the same seeds, each once: d and SE = s_d/√n from the "
    "n per-seed differences, t with n − 1 degrees of freedom. Otherwise unpaired (Welch): "
    "SE = √(s_a²/n_a + s_b²/n_b), t with the Welch–Satterthwaite degrees of freedom. Against "
    "a constant: SE = s_a/√n_a, t with n_a − 1 degrees of freedom (s: sample std over seeds). "
    "*greater* (a > b + margin): supported if the interval lies above the margin, not "
    "supported if at or below it. *comparable* (|a − b| ≤ tolerance): supported if the "
    "interval lies within ±tolerance, not supported if wholly outside. *differs*: supported if "
    "the interval excludes 0, not supported if it includes 0 and lies within ±tolerance. "
    "Otherwise undecided; also undecided: a side with no data or fewer than 2 seeds, and a "
    "*greater* between two quantities that are the same constant in every seed. An *any of* "
    "group is supported if any of its checks is, not supported if all are not. A claim is "
    "supported when all its checks and groups are, not supported when any is not, undecided "
    "otherwise; rows without records are left out. '±' is the interval's half-width; an "
    "undecided check gives an *estimate* of how many seeds per side would decide it: the "
    "fewest whose interval, with the same spreads and the same d but the t quantile at the "
    "new n, decides. *Paper's own table*: the same rule on the published numbers (mean ± std "
    "over the paper's runs, Welch); where the paper publishes no std, the point difference "
    "(supported if d lies on the claim's side of the threshold); contradicted = not supported."
)

_PAPER_VERDICT = {
    "supported": "supported",
    "undecided": "undecided",
    "not supported": "contradicted",
}


def paper_verdict(result: ClaimResult) -> str:
    """``supported`` / ``undecided`` / ``contradicted``, or that no numbers are published."""
    if not result.groups:
        return "no numbers published"
    return _PAPER_VERDICT[result.verdict]


def claims_section(
    table: TableSpec, records: Sequence[RunRecord], rows: Sequence[TableRow]
) -> list[str]:
    """``table``'s Claims section: its claims on ``records`` (the table's current runs) over
    ``rows`` (as printed), and on the paper's own numbers over the paper's rows."""
    if not table.claims:
        return []
    return render_claims(
        [evaluate(claim, records, rows) for claim in table.claims],
        [paper_result(table, claim) for claim in table.claims],
    )


def paper_result(table: TableSpec, claim: Claim) -> ClaimResult:
    """``claim`` on ``table``'s published numbers, over the paper's own rows."""
    paper_rows = [
        TableRow(row.key, row.transformation, f"{row.dataset} / {row.transformation}")
        for row in table.rows
    ]
    return evaluate_published(claim, table.published(), paper_rows)


def render_claims(measured: Sequence[ClaimResult], paper: Sequence[ClaimResult]) -> list[str]:
    """The "Claims" section (markdown lines): ``measured`` and ``paper`` (the paper's own
    table, :func:`~ssl_geom.reproduce.claims.evaluate_published`) hold one result per claim."""
    if not measured:
        return []
    lines = ["", "## Claims", "", RULE]
    for i, (result, own) in enumerate(zip(measured, paper, strict=True), 1):
        claim = result.claim
        lines += [
            "",
            f"### {i}. {claim.where}: **{result.verdict}** · paper's own table: "
            f"**{paper_verdict(own)}**",
            "",
            f"> {claim.quote}",
            f"> — {claim.paper.cite()}",
        ]
        if claim.encoding:
            lines += ["", f"Encoding: {claim.encoding}"]
        lines += ["", *_checks_table(result)]
        lines += ["", *_paper_lines(own)]
    return lines


def _checks_table(result: ClaimResult) -> list[str]:
    lines = [
        "| check | row | a | b | a − b [95 % interval] | ± | verdict | how / note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group in result.groups:
        if isinstance(group.item, AnyOf):
            lines.append(
                f"| **any of** the {len(group.checks)} checks below | {group.row} | | | | | "
                f"**{group.verdict}** | |"
            )
        for check in group.checks:
            lines.append(_check_row(check, "↳ " if isinstance(group.item, AnyOf) else ""))
    return lines


def _check_row(check: Check, prefix: str) -> str:
    judgement = check.judgement
    interval = judgement.interval
    if interval is None:
        difference, half, how = "—", "—", ""
    else:
        difference = f"{interval.d:+.3g} [{interval.low:.3g}, {interval.high:.3g}]"
        half, how = f"{interval.half_width:.3g}", interval.describe()
    note = "; ".join(text for text in (how, judgement.note) if text)
    return (
        f"| {prefix}{check.comparison.describe()} | {check.row} | {check.a.text()} | "
        f"{check.b.text()} | {difference} | "
        f"{half} | {check.verdict} | {note} |"
    )


def _paper_lines(own: ClaimResult) -> list[str]:
    """The paper's own table: how many checks decide which way, and each that does not hold."""
    if not own.groups:
        return ["Paper's own table: no numbers published for this claim."]
    counts: dict[Verdict, int] = {}
    for group in own.groups:
        counts[group.verdict] = counts.get(group.verdict, 0) + 1
    tally = ", ".join(
        f"{counts[v]} {_PAPER_VERDICT[v]}"
        for v in ("supported", "undecided", "not supported")
        if v in counts
    )
    n = len(own.groups)
    lines = [f"Paper's own table ({n} check{'s' if n != 1 else ''} on its rows): {tally}."]
    for group in own.groups:
        if group.verdict == "supported":
            continue
        for check in group.checks:
            interval = check.judgement.interval
            assert interval is not None  # published sides always give one
            lines.append(
                f"- {_PAPER_VERDICT[group.verdict]}: {check.comparison.describe()}, {check.row}: "
                f"{check.a.text()} vs {check.b.text()}, "
                f"d = {interval.d:+.3g} [{interval.low:.3g}, {interval.high:.3g}] "
                f"({interval.describe()})"
            )
    return lines
