"""Projector rank, its singular-value spectrum and the embedding-covariance rank.

Each rank is also logged as an effective rank (``*_effective_rank``: exp of the spectrum's
entropy, :func:`ssl_geom.metrics.effective_rank`), which needs no threshold, and every rank
as a fraction of its maximum (``*_rank_fraction``: W's rank over
``min(W.shape)``, the embedding's over its dimension), the scale on which an encoder and a
projector of different widths can be compared.

Geometry paper (Cosentino et al., arXiv:2205.06926) Eq. 2, ``Rank_τ(W) = #{σ_j ≥ τ}``, on the
projector's linear layer (Fig. 1) and on the covariance of the encoder embeddings of the
reference set (Figs. 4, 10). The paper gives no value of τ; the thresholds here are
*relative* by default (``σ_j ≥ tau·σ_1``; ``λ_j ≥ embedding_tau·λ_1``), so the rank does not
follow the weights' scale, and the figures of ``make reproduce-rank`` use them.
``relative=False`` applies both as absolute thresholds, as Eq. 2 is written.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._protocol import linear_layer
from ssl_geom.callbacks.base import GeometryCallback, Values
from ssl_geom.callbacks.figures import log_spectra
from ssl_geom.metrics import covariance_spectrum, effective_rank, singular_values
from ssl_geom.metrics._checks import check_threshold
from ssl_geom.metrics.rank import count_above


class ProjectorRank(GeometryCallback):
    """Log ``geometry/projector_rank``, ``geometry/embedding_rank`` and their effective ranks.

    Args:
        tau: threshold on the singular values of the projector layer's weight (relative
            to the largest one unless ``relative=False``).
        embedding_tau: threshold on the eigenvalues of the reference embeddings' covariance;
            the eigenvalues are squared singular values, so the default 1e-4 is the same
            relative cut as ``tau = 1e-2``.
        relative: thresholds relative to the largest value (default) or absolute (Eq. 2).
        layer: attribute path of the ``nn.Linear`` to analyse; default the first
            ``nn.Linear`` of the projector.
        log_figures: also draw the spectra over training to TensorBoard.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.

    The spectra of every evaluation are kept in ``projector_spectra`` and
    ``embedding_spectra`` as ``(epoch, tensor)`` pairs (also in the callback's checkpoint
    state) so they can be plotted after training.
    """

    def __init__(
        self,
        tau: float = 1e-2,
        embedding_tau: float = 1e-4,
        relative: bool = True,
        layer: str | None = None,
        log_figures: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tau = check_threshold("tau", tau)
        self.embedding_tau = check_threshold("embedding_tau", embedding_tau)
        self.relative = relative
        self.layer = layer
        self.log_figures = log_figures
        self.projector_spectra: list[tuple[int, Tensor]] = []
        self.embedding_spectra: list[tuple[int, Tensor]] = []

    def check_setup(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().check_setup(trainer, pl_module)
        linear_layer(pl_module, self.layer, self.projector)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        h, _ = self.reference_features(trainer, pl_module, project=False)
        weight = linear_layer(pl_module, self.layer, self.projector).weight
        epoch = trainer.current_epoch
        # Both spectra in one transfer; everything below reads them on the host.
        w_spectrum, h_spectrum = (
            torch.cat([singular_values(weight), covariance_spectrum(h)])
            .cpu()
            .split([min(weight.shape), h.shape[1]])
        )
        self.projector_spectra.append((epoch, w_spectrum))
        self.embedding_spectra.append((epoch, h_spectrum))
        if self.log_figures:
            log_spectra(trainer, "geometry/projector_spectrum", self.projector_spectra, "σ(W)")
            log_spectra(trainer, "geometry/embedding_spectrum", self.embedding_spectra, "λ(Cov h)")
        # projector_rank(weight) and covariance_rank(h), counted on the spectra already here
        w_rank = count_above(w_spectrum, self.tau, self.relative)
        h_rank = count_above(h_spectrum, self.embedding_tau, self.relative)
        # The embedding's singular values are the square roots of its covariance eigenvalues
        # (up to one scale, which the effective rank ignores), on W's footing.
        w_effective = effective_rank(w_spectrum)
        h_effective = effective_rank(h_spectrum.clamp_min(0).sqrt())
        # Fractions of the largest possible rank, so an encoder of d_enc dimensions and a
        # projector of min(d_proj, d_enc) singular values can be compared (Figs. 1 vs 4).
        return {
            "geometry/projector_rank": w_rank,
            "geometry/embedding_rank": h_rank,
            "geometry/projector_rank_fraction": w_rank / min(weight.shape),
            "geometry/embedding_rank_fraction": h_rank / h.shape[1],
            "geometry/projector_effective_rank": w_effective,
            "geometry/embedding_effective_rank": h_effective,
            "geometry/projector_effective_rank_fraction": w_effective / min(weight.shape),
            "geometry/embedding_effective_rank_fraction": h_effective / h.shape[1],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "projector_spectra": self.projector_spectra,
            "embedding_spectra": self.embedding_spectra,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.projector_spectra = list(state_dict.get("projector_spectra", []))
        self.embedding_spectra = list(state_dict.get("embedding_spectra", []))
