"""Geometry metrics: pure tensor functions, batch-first (rows are samples), no Lightning.

- :func:`wahba_error`, :func:`wahba_rotation` — CARE Sec. 4 (Wahba's problem over SO(d));
  :func:`wahba_errors` — the same for K augmentations at once.
- :func:`relative_equivariance` — CARE App. F.2.1, γ_f; :func:`relative_equivariances` — for K
  augmentations at once.
- :func:`singular_values`, :func:`projector_rank`, :func:`covariance_spectrum`,
  :func:`covariance_rank` — projector-geometry paper Eq. 2 (Figs. 1, 4, 10);
  :func:`effective_rank` — its threshold-free companion (Roy & Vetterli 2007, RankMe).
- :func:`fraction_unexplained_variance`, :func:`negative_displacements` — geometry paper
  Eqs. 8-10 (Fig. 7).
- :func:`nearest_negatives`, :func:`label_match_rate` — geometry paper Prop. 3.1 (Fig. 6).

Uniformity and invariance terms are losses and live in :mod:`ssl_geom.losses`.
"""

from ssl_geom.metrics.equivariance import relative_equivariance, relative_equivariances
from ssl_geom.metrics.nearest_negative import label_match_rate, nearest_negatives
from ssl_geom.metrics.rank import (
    covariance_rank,
    covariance_spectrum,
    effective_rank,
    projector_rank,
    singular_values,
)
from ssl_geom.metrics.unexplained_variance import (
    fraction_unexplained_variance,
    negative_displacements,
)
from ssl_geom.metrics.wahba import wahba_error, wahba_errors, wahba_rotation

__all__ = [
    "covariance_rank",
    "covariance_spectrum",
    "effective_rank",
    "fraction_unexplained_variance",
    "label_match_rate",
    "nearest_negatives",
    "negative_displacements",
    "projector_rank",
    "relative_equivariance",
    "relative_equivariances",
    "singular_values",
    "wahba_error",
    "wahba_errors",
    "wahba_rotation",
]
