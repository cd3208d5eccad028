"""95 % Student-t intervals of a difference, the arithmetic behind the claims' verdicts.

An :class:`Interval` is d ± t·SE, kept as the difference and the sample spreads it came from,
so the same spread can be asked what it would give with more seeds (:meth:`Interval.with_seeds`):

    paired      SE = s_d/√n of the n per-seed differences     df = n − 1
    one-sample  SE = s/√n (a quantity against a constant)     df = n − 1
    Welch       SE = √(v_a + v_b), v = s²/n on each side      df (Welch–Satterthwaite) =
                          (v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1))
    point       one published number on each side, no std: the interval is d itself

(s: sample std, ddof = 1.) The quantile is ``scipy.stats.t.ppf(0.975, df)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from scipy.stats import t as student_t

CONFIDENCE = 0.95
IntervalKind = Literal["paired", "one-sample", "Welch", "point"]


@dataclass(frozen=True)
class Interval:
    """The 95 % t-interval of a difference ``d`` from sample spreads and counts.

    ``spreads`` / ``counts``: one (std, n) for ``paired`` (of the per-seed differences) and
    ``one-sample``, two for ``Welch`` (side a, side b), none for ``point``.
    """

    kind: IntervalKind
    d: float
    spreads: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        expected = {"paired": 1, "one-sample": 1, "Welch": 2, "point": 0}[self.kind]
        if len(self.spreads) != expected or len(self.counts) != expected:
            raise ValueError(
                f"a {self.kind} interval takes {expected} spread(s) and count(s), got "
                f"{self.spreads} and {self.counts}"
            )
        if any(n < 2 for n in self.counts):
            raise ValueError(f"a t-interval needs at least 2 values per side, got {self.counts}")

    @property
    def se(self) -> float:
        return math.sqrt(sum(s * s / n for s, n in zip(self.spreads, self.counts, strict=True)))

    @property
    def df(self) -> float | None:
        """Degrees of freedom of the t quantile; ``None`` for a point or a spread of 0."""
        if self.kind == "point" or self.se == 0:
            return None
        if self.kind != "Welch":
            return float(self.counts[0] - 1)
        variances = [s * s / n for s, n in zip(self.spreads, self.counts, strict=True)]
        tails = sum(v * v / (n - 1) for v, n in zip(variances, self.counts, strict=True))
        return sum(variances) ** 2 / tails

    @property
    def quantile(self) -> float:
        """t at (1 + CONFIDENCE) / 2 with :attr:`df` degrees of freedom (0 without spread)."""
        df = self.df
        return 0.0 if df is None else float(student_t.ppf((1 + CONFIDENCE) / 2, df))

    @property
    def half_width(self) -> float:
        return self.quantile * self.se

    @property
    def low(self) -> float:
        return self.d - self.half_width

    @property
    def high(self) -> float:
        return self.d + self.half_width

    def with_seeds(self, n: int) -> Interval:
        """The same difference and spreads with ``n`` values on each side."""
        return replace(self, counts=(n,) * len(self.counts))

    def describe(self) -> str:
        """How the interval was made, e.g. ``"paired, t(2) = 4.30"``."""
        if self.kind == "point":
            return "point difference (no std published)"
        df = self.df
        if df is None:
            return f"{self.kind}, no spread"
        return f"{self.kind}, t({df:.3g}) = {self.quantile:.3g}"
