"""Projector rank and encoder-embedding rank, with their singular-value spectra.

Each rank is also logged as an effective rank (``*_effective_rank``: exp of the spectrum's
entropy, :func:`ssl_geom.metrics.effective_rank`), which needs no threshold, and every rank
as a fraction of its maximum (``*_rank_fraction``: W's rank over
``min(W.shape)``, the embedding's over its dimension), the scale on which an encoder and a
projector of different widths can be compared.

Geometry paper (Cosentino et al., "Toward a Geometrical Understanding of Self-supervised
Contrastive Learning", arXiv:2205.06926) Eq. 2, ``Rank_τ(W) = #{σ_j ≥ τ}``, on the projector's
linear layer (Fig. 1) and on the matrix of encoder embeddings of the reference set itself,
``Rank_τ[h(x_1), …, h(x_N)]`` (Figs. 4 and 9, which read it as "full rank" = ``d_enc``). The
matrix is not centred: the paper applies Eq. 2 to the embeddings, and a centred matrix (a
covariance) of N samples has rank at most ``N − 1``, so an encoder could never read full rank
on ``N = d_enc`` samples. A full-rank estimate of ``d_enc`` needs ``N ≥ d_enc`` reference
samples: fewer is refused at fit start, and a smaller reference split found later is logged
with a warning (its rank fraction is capped at ``N / d_enc``).

The paper gives no value of τ; the thresholds here are *relative* by default
(``σ_j ≥ tau·σ_1``, for W and H alike), so the rank does not follow the weights' scale, and
the figures of ``make reproduce-rank`` use them. ``relative=False`` applies both as absolute
thresholds, as Eq. 2 is written.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from ssl_geom.callbacks._protocol import Samples, linear_layer
from ssl_geom.callbacks.base import GeometryCallback, Values
from ssl_geom.callbacks.figures import log_spectra
from ssl_geom.metrics import effective_rank, singular_values
from ssl_geom.metrics._checks import check_threshold
from ssl_geom.metrics.rank import count_above


class ProjectorRank(GeometryCallback):
    """Log ``geometry/projector_rank``, ``geometry/embedding_rank`` and their effective ranks.

    Args:
        tau: threshold on the singular values of the projector layer's weight (relative
            to the largest one unless ``relative=False``).
        embedding_tau: threshold on the singular values of the reference embedding matrix
            ``H`` (``N × d_enc``), relative to the largest one unless ``relative=False``.
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
        embedding_tau: float = 1e-2,
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

    def check_samples(self, trainer: Trainer, pl_module: LightningModule, samples: Samples) -> None:
        """Refuse a reference set too small for the embedding rank to reach ``d_enc``."""
        h, _ = self.features(trainer, pl_module, samples.x, project=False)
        d_enc = h.shape[1]
        if self.reference.size < d_enc:
            raise ValueError(
                f"ProjectorRank: reference_size={self.reference.size} is below the encoder's "
                f"embedding dimension {d_enc}, so the embedding rank could never reach full "
                f"rank (Eq. 2 on an N x d matrix is at most N); pass reference_size >= {d_enc} "
                f"(2 x {d_enc} = {2 * d_enc} keeps a full-rank encoder's smallest singular "
                "values clear of the relative threshold)"
            )

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        h, _ = self.reference_features(trainer, pl_module, project=False)
        n, d_enc = h.shape
        if n < d_enc:
            rank_zero_warn(
                f"ProjectorRank: the reference split holds {n} samples, fewer than the "
                f"embedding dimension {d_enc}: geometry/embedding_rank is at most {n} "
                "this run; use a larger validation split or reference_source='train'"
            )
        weight = linear_layer(pl_module, self.layer, self.projector).weight
        epoch = trainer.current_epoch
        # H's spectrum is padded with the d_enc - N zeros it lacks when N < d_enc, so spectra
        # line up for plotting. Both spectra in one transfer; the rest reads them on the host.
        h_values = singular_values(h)
        w_spectrum, h_spectrum = (
            torch.cat(
                [singular_values(weight), h_values, h_values.new_zeros(d_enc - len(h_values))]
            )
            .cpu()
            .split([min(weight.shape), d_enc])
        )
        self.projector_spectra.append((epoch, w_spectrum))
        self.embedding_spectra.append((epoch, h_spectrum))
        if self.log_figures:
            log_spectra(trainer, "geometry/projector_spectrum", self.projector_spectra, "σ(W)")
            log_spectra(trainer, "geometry/embedding_spectrum", self.embedding_spectra, "σ(H)")
        # projector_rank(weight) and projector_rank(h), counted on the spectra already here
        w_rank = count_above(w_spectrum, self.tau, self.relative)
        h_rank = count_above(h_spectrum, self.embedding_tau, self.relative)
        w_effective = effective_rank(w_spectrum)
        h_effective = effective_rank(h_spectrum)
        # Fractions of the largest possible rank, so an encoder of d_enc dimensions and a
        # projector of min(d_proj, d_enc) singular values can be compared (Figs. 1 vs 4).
        return {
            "geometry/projector_rank": w_rank,
            "geometry/embedding_rank": h_rank,
            "geometry/projector_rank_fraction": w_rank / min(weight.shape),
            "geometry/embedding_rank_fraction": h_rank / d_enc,
            "geometry/projector_effective_rank": w_effective,
            "geometry/embedding_effective_rank": h_effective,
            "geometry/projector_effective_rank_fraction": w_effective / min(weight.shape),
            "geometry/embedding_effective_rank_fraction": h_effective / d_enc,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "projector_spectra": self.projector_spectra,
            "embedding_spectra": self.embedding_spectra,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.projector_spectra = list(state_dict.get("projector_spectra", []))
        self.embedding_spectra = list(state_dict.get("embedding_spectra", []))
