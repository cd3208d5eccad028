"""The structured-feature contract every backbone satisfies.

H-SSL (homomorphic SSL, H-SSL paper Sec. 3) samples positive pairs as *fibers*
of one representation, so code above the backbone must know where the group
axis is. Every backbone therefore returns a map of shape ``(B, C, G, H, W)``:
channels, a group axis of size ``G`` and two spatial axes, and declares in
``group`` (a :class:`~ssl_geom.symmetry.Symmetry`) which group acts on that axis in
addition to the translations of the spatial axes:

- ``Symmetry.TRANSLATION``: none beyond translation, no structure on ``G`` (a plain
  CNN has ``G == 1``);
- ``Symmetry.ROTATION``: C_N regular representation (``G = N``; C4 for the SESN-basis
  backbones, C8 for ``hssl_mnist_c8``) — rotating the input by 360°/N rotates
  ``H, W`` and rolls the group axis cyclically by one;
- ``Symmetry.SCALE``: SESN scales — downscaling the input shifts the scale axis
  (non-cyclically).

Backbones without structure may still expose an *emulated* group axis
(``emulated_group_size``) so H-SSL's "without structure" baselines (paper
Table 2) can be run on purpose; ``group`` stays ``Symmetry.TRANSLATION`` for them.
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_geom.symmetry import Symmetry

from .readout import GlobalPoolReadout, Readout


class StructuredBackbone(nn.Module):
    """Base class: ``forward(x) -> (B, C, G, H, W)`` plus the metadata H-SSL needs.

    Subclasses set ``out_channels``, ``group_size`` and ``group`` (and may set
    ``emulated_group_size``) in ``__init__`` and implement ``forward``.
    """

    group: Symmetry = Symmetry.TRANSLATION

    def __init__(self) -> None:
        super().__init__()
        self.out_channels: int = 0
        self.group_size: int = 1
        # Size of a group axis the backbone can *pretend* to have (Table 2
        # baselines). ``None`` when the backbone offers none beyond ``group_size``.
        self.emulated_group_size: int | None = None

    @property
    def embed_dim(self) -> int:
        """Length of the vector ``embed`` returns."""
        return self.out_channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Downstream vector ``(B, C)``: max over the group axis, then mean over space.

        This is the readout H-SSL App. A uses for classification: max-pooling
        the group axis makes it invariant to the group action (rotating the
        input only permutes that axis), and spatial averaging removes the
        spatial shift.
        """
        return structured_to_vector(self(x))

    def build_readout(self) -> Readout:
        """A fresh classifier readout for this backbone's maps (see ``readout.py``).

        Default: the parameter-free global pooling of :meth:`embed`. Architectures whose
        paper prescribes another readout (H-SSL App. A) override this.
        """
        return GlobalPoolReadout(self.out_channels)


def structured_to_vector(z: torch.Tensor) -> torch.Tensor:
    """``(B, C, G, H, W) -> (B, C)``: max over ``G``, then mean over ``H, W``."""
    if z.ndim != 5:
        raise ValueError(
            f"expected a structured feature map (B, C, G, H, W), got shape {tuple(z.shape)}"
        )
    return z.amax(dim=2).mean(dim=(-2, -1))
