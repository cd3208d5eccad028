"""Classifier readouts: how a structured map ``(B, C, G, H, W)`` becomes a classifier's input.

The H-SSL paper (Keller et al., "Homomorphic Self-Supervised Learning", arXiv:2211.08282,
App. A) does not classify ``backbone.embed`` directly; it describes a readout per
architecture, and both the online (detached) classifier and the linear evaluation use
it, so the two numbers measure the same function of the representation:

- CIFAR-10 / Tiny ImageNet ResNet20: "the vector z was first max-pooled along the
  scale/rotation group-axis (S x R), followed by a BatchNorm, a ReLU, and average
  pooling over the remaining 7 x 7 spatial dimensions. Finally, we apply BatchNorm to
  this 512-dimensional vector" — :class:`ResNetGroupReadout`.
- MNIST CNN: "an additional SESN convolutional layer was placed on top with kernel
  size 7, effective size 3, stride 2, and no padding, thereby reducing the spatial
  dimensions to 1, and the total dimensionality of the input to the final linear
  classifier to 128" — :class:`ConvGroupReadout`. The paper says nothing about the
  group axis after that layer; reducing it by a max (as the ResNet readout does) is
  what makes 128 the classifier's input size, so we do that.
- :class:`GridPoolReadout`: the parameter-free coarse spatial layout of the map, for a
  cached (fast) linear evaluation that keeps what the MNIST readout's conv sees.
- Everything else (torchvision ResNets, the Table 2 MLP, users' backbones): the
  parameter-free global pooling of :func:`~ssl_geom.backbones.structured_to_vector`
  (max over ``G``, mean over space) — for a ``G = 1`` ResNet this is the usual global
  average pool of SimCLR / CARE linear evaluation (CARE App. E.3).

A backbone chooses its readout by overriding
:meth:`~ssl_geom.backbones.StructuredBackbone.build_readout`, which is what callers use
(this module knows no backbone, so it imports none). A readout may hold trainable parameters (BatchNorm, the
MNIST conv): they belong to the classifier — they are trained with it, on detached
features, never with the SSL loss. ``readout.out_features`` is the classifier's input
size and ``readout.has_parameters`` tells feature caches whether the readout's output
can be cached (no parameters) or only its input can.

Written here: the small modules below (no library offers the paper's readout).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_structured(z: torch.Tensor, channels: int) -> None:
    if z.ndim != 5 or z.shape[1] != channels:
        raise ValueError(
            f"readout expects a structured map (B, {channels}, G, H, W), got shape {tuple(z.shape)}"
        )


class Readout(nn.Module):
    """``(B, C, G, H, W) -> (B, out_features)``; see the module docstring."""

    def __init__(self, in_channels: int, out_features: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_features = out_features

    @property
    def has_parameters(self) -> bool:
        """Whether the readout trains (then only its *input* may be cached)."""
        return any(True for _ in self.parameters())


class GlobalPoolReadout(Readout):
    """Max over the group axis, mean over space; no parameters (global average pool for ``G = 1``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, in_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_structured(z, self.in_channels)
        return z.amax(dim=2).mean(dim=(-2, -1))


class GridPoolReadout(Readout):
    """Max over the group axis, average pooling to a ``grid x grid`` layout, flattened; no parameters.

    A parameter-free stand-in for the H-SSL MNIST readout (:class:`ConvGroupReadout`), whose
    k 7 conv of "effective size 3" reads the whole 7x7 map through smooth spatial basis
    functions: a linear map of the map's coarse (about 3x3) spatial layout. Global pooling
    throws that layout away, and a linear classifier on it then depends on which few
    channels a seed happened to draw. Average-pooling the conv feature maps to a small grid
    before a linear classifier is also the linear-probe protocol of Goyal et al., "Scaling
    and Benchmarking Self-Supervised Visual Representation Learning", arXiv:1905.01235.
    Output: ``in_channels * grid * grid`` values, channel-major.
    """

    def __init__(self, in_channels: int, grid: int) -> None:
        if grid < 1:
            raise ValueError(f"grid must be >= 1, got {grid}")
        super().__init__(in_channels, in_channels * grid * grid)
        self.grid = grid

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_structured(z, self.in_channels)
        height, width = z.shape[-2:]
        if height < self.grid or width < self.grid:
            raise ValueError(
                f"a {self.grid}x{self.grid} grid readout needs maps of at least that size, got "
                f"{height}x{width}; use a smaller grid or the global pool for this backbone"
            )
        pooled = F.adaptive_avg_pool2d(z.amax(dim=2), self.grid)
        return pooled.flatten(1)


class ResNetGroupReadout(Readout):
    """H-SSL App. A CIFAR-10/TIN readout: max over ``G``, BatchNorm, ReLU, mean over space, BatchNorm."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, in_channels)
        self.map_norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.vector_norm = nn.BatchNorm1d(in_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_structured(z, self.in_channels)
        pooled = self.relu(self.map_norm(z.amax(dim=2))).mean(dim=(-2, -1))
        return self.vector_norm(pooled)


class ConvGroupReadout(Readout):
    """H-SSL App. A MNIST readout: one more group conv (built by the backbone's family), then max over ``G``.

    ``conv`` maps ``(B, C, G, H, W) -> (B, C', G, 1, 1)`` for the backbone's natural input
    size (k 7, no padding, on the 7x7 map); any spatial remainder is averaged.
    """

    def __init__(self, conv: nn.Module, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.conv = conv

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_structured(z, self.in_channels)
        return self.conv(z).amax(dim=2).mean(dim=(-2, -1))
