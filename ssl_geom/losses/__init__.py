"""Self-supervised losses: pure tensor functions, batch-first, no Lightning.

- :func:`info_nce`: NT-Xent / InfoNCE over ``2B`` anchors (SimCLR; CARE Sec. 3), a thin
  wrapper of lightly's ``NTXentLoss`` (which gathers negatives across processes with
  gradients under DDP).
- :func:`orthogonal_equivariance_loss`: CARE's ``L_equi`` (CARE Sec. 3, Algorithm 1).
- :func:`uniformity_loss`, :func:`invariance_loss`: the two InfoNCE terms of CARE Sec. 3
  (Wang & Isola 2020), used by the Fig. 7 ablations.
- :mod:`ssl_geom.losses.fibers`: the positive pairs of H-SSL, F-SSL and A-SSL, fiber bundles
  of the backbone's map (H-SSL Eqs. 5-7), which their InfoNCE then contrasts.
"""

from ssl_geom.losses.care import invariance_loss, orthogonal_equivariance_loss, uniformity_loss
from ssl_geom.losses.info_nce import info_nce

__all__ = ["info_nce", "invariance_loss", "orthogonal_equivariance_loss", "uniformity_loss"]
