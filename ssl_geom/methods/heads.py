"""Projection heads built from lightly's ``ProjectionHead`` blocks.

One builder covers the heads the three papers use: SimCLR's MLP (hidden layers with
BatchNorm + ReLU), H-SSL's 3-layer head with BN, and the geometry paper's single linear
projector ``g(h) = Wᵀh`` (``hidden_dims=[]``, ``bias=False``), whose ``weight`` the
geometry callbacks read as ``Wᵀ``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from lightly.models.modules.heads import ProjectionHead
from torch import nn


def build_projector(
    input_dim: int,
    hidden_dims: Sequence[int],
    output_dim: int,
    batch_norm: bool = True,
    final_batch_norm: bool = False,
    bias: bool | None = None,
) -> ProjectionHead:
    """MLP ``input_dim -> hidden_dims... -> output_dim`` (a single linear layer when empty).

    Hidden layers are ``Linear -> [BatchNorm1d] -> ReLU``; the last layer is ``Linear``
    followed by ``BatchNorm1d`` when ``final_batch_norm``. ``bias`` sets the bias of
    every linear layer; ``None`` keeps lightly's rule (a bias only where no BatchNorm
    follows, since BN's shift makes it redundant).
    """
    for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
        if value < 1:
            raise ValueError(f"projector {name} must be >= 1, got {value}")
    if any(h < 1 for h in hidden_dims):
        raise ValueError(f"projector hidden_dims must all be >= 1, got {list(hidden_dims)}")
    blocks: list[tuple] = []
    dims = [input_dim, *hidden_dims]
    for d_in, d_out in itertools.pairwise(dims):
        norm = nn.BatchNorm1d(d_out) if batch_norm else None
        blocks.append(_block(d_in, d_out, norm, nn.ReLU(), bias))
    final_norm = nn.BatchNorm1d(output_dim) if final_batch_norm else None
    blocks.append(_block(dims[-1], output_dim, final_norm, None, bias))
    return ProjectionHead(blocks)


def _block(
    d_in: int, d_out: int, norm: nn.Module | None, act: nn.Module | None, bias: bool | None
) -> tuple:
    return (d_in, d_out, norm, act) if bias is None else (d_in, d_out, norm, act, bias)
