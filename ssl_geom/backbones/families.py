"""Layer families: each architecture is written once and built in several symmetry flavours.

An architecture (``hssl.py``) only calls ``family.lift``, ``family.conv`` and
``family.pointwise``; the family decides what a "convolution" is and which
group acts on the group axis ``G`` of the ``(B, C, G, H, W)`` maps it produces.
As in the paper (H-SSL App. A: "All models presented in this paper are built
using the convolutional layers from the SESN library"), the three structured
flavours share one layer type, a convolution steered by SESN's Hermite-Gaussian
basis (``sesn.py``), and differ only in the copies of the basis they use:

- ``TranslationFamily`` (translation only, ``G = 1``): the basis at the single scale 1.0.
- ``RotationFamily`` (C4, ``G = 4``): the same basis and its quarter turns,
  see ``rotation.py``.
- ``ScaleFamily`` (SESN scales, ``G = S``): the basis rescaled to each scale.
- ``StreamFamily`` (``G`` independent streams, ``group = Symmetry.TRANSLATION``): every
  SESN kernel replaced by an unconstrained ``kernel_size`` kernel per scale,
  keeping the ``G``-times larger map — the "CNN (6 x CHW)" baseline of H-SSL
  Table 2. Nothing ties the streams together, so the axis carries no symmetry
  and the family only *emulates* a group axis.

``BatchNorm3d(C)`` applied to a ``(B, C, G, H, W)`` map shares its statistics and
affine parameters across ``G``, which is what a regular representation needs
(the group only permutes ``G``), so architectures use it for every family.

Written here by hand: the fiber-wise/stream-wise wrappers (a few lines each);
the steered convolutions are in ``sesn.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from ssl_geom.symmetry import Symmetry

from .sesn import BasisGroupConv, BasisLift, steerable_basis_a


def _conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int,
    padding: int,
    groups: int = 1,
) -> nn.Conv2d:
    """``nn.Conv2d`` without bias, He-initialised for the ReLU that follows (as torchvision)."""
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=padding,
        groups=groups,
        bias=False,
    )
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class LiftConv2d(nn.Module):
    """``(B, C, H, W) -> (B, C', G, H', W')``: a 2D conv with ``C' * G`` outputs, split into ``G``.

    Output channel ``c * G + g`` becomes ``(c, g)``.
    """

    def __init__(self, conv: nn.Conv2d, group_size: int) -> None:
        super().__init__()
        if conv.out_channels % group_size:
            raise ValueError(
                f"conv has {conv.out_channels} output channels, not a multiple of G={group_size}"
            )
        self.conv = conv
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y.view(y.shape[0], -1, self.group_size, *y.shape[-2:])


class FiberwiseConv2d(nn.Module):
    """Apply one 2D conv to every fiber of ``(B, C, G, H, W)`` (``G`` folded into the batch).

    Sharing the weights over ``G`` commutes with any permutation of ``G``, so a
    fiber-wise conv whose kernel is itself symmetric (1x1) is equivariant for
    every regular representation — this is SESN's ``SESConv_H_H_1x1`` shortcut.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, g, h, w = x.shape
        y = self.conv(x.transpose(1, 2).reshape(b * g, c, h, w))
        return y.view(b, g, *y.shape[1:]).transpose(1, 2)


class StreamwiseConv2d(nn.Module):
    """A separate 2D conv for every index along ``G`` (one grouped conv, ``groups=G``)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, g, h, w = x.shape
        if g != self.conv.groups:
            raise ValueError(f"expected a group axis of size {self.conv.groups}, got {g}")
        y = self.conv(x.transpose(1, 2).reshape(b, g * c, h, w))
        return y.view(b, g, -1, *y.shape[-2:]).transpose(1, 2)


class LayerFamily(ABC):
    """Builds the layers of one symmetry flavour; see the module docstring."""

    group: Symmetry
    group_size: int
    emulated_group_size: int | None = None

    @abstractmethod
    def lift(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        effective_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> nn.Module:
        """Lifting layer ``(B, C, H, W) -> (B, C', G, H', W')``."""

    @abstractmethod
    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        effective_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> nn.Module:
        """Group convolution ``(B, C, G, H, W) -> (B, C', G, H', W')``."""

    def pointwise(self, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
        """1x1 convolution shared by every fiber (residual shortcuts)."""
        return FiberwiseConv2d(_conv2d(in_channels, out_channels, 1, stride, 0))


class SteeredFamily(LayerFamily):
    """Layers steered by a fixed basis (``sesn.BasisLift`` / ``BasisGroupConv``).

    A subclass only says which copies of the SESN basis span its group axis.
    """

    @abstractmethod
    def basis(self, kernel_size: int, effective_size: int) -> torch.Tensor:
        """``(F, G, k, k)``: basis function ``f`` as seen by group element ``g``."""

    def lift(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        basis = self.basis(kernel_size, effective_size)
        return BasisLift(in_channels, out_channels, basis, stride, padding)

    def conv(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        basis = self.basis(kernel_size, effective_size)
        return BasisGroupConv(in_channels, out_channels, basis, stride, padding)


class TranslationFamily(SteeredFamily):
    """Translation only (``G = 1``): the SESN basis at the single scale 1.0 (H-SSL App. A)."""

    group: Symmetry = Symmetry.TRANSLATION
    group_size = 1

    def basis(self, kernel_size: int, effective_size: int) -> torch.Tensor:
        return steerable_basis_a(kernel_size, [1.0], effective_size)


class StreamFamily(LayerFamily):
    """``G`` independent unconstrained streams ("CNN (6 x CHW)", H-SSL Table 2); no symmetry."""

    group: Symmetry = Symmetry.TRANSLATION

    def __init__(self, group_size: int = 6) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be a positive int, got {group_size}")
        self.group_size = group_size
        self.emulated_group_size = group_size

    def lift(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        conv = _conv2d(in_channels, out_channels * self.group_size, kernel_size, stride, padding)
        return LiftConv2d(conv, self.group_size)

    def conv(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        g = self.group_size
        return StreamwiseConv2d(
            _conv2d(in_channels * g, out_channels * g, kernel_size, stride, padding, groups=g)
        )

    def pointwise(self, in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
        g = self.group_size
        return StreamwiseConv2d(_conv2d(in_channels * g, out_channels * g, 1, stride, 0, groups=g))


DEFAULT_SCALES: tuple[float, ...] = (1.0, 1.25, 1.33, 1.5, 1.66, 1.75)
"""The six SESN scales of H-SSL Sec. 4.4 / App. A."""


class ScaleFamily(SteeredFamily):
    """SESN scale-equivariant layers (``sesn.py``); ``G = len(scales)``."""

    group: Symmetry = Symmetry.SCALE

    def __init__(self, scales: Sequence[float] = DEFAULT_SCALES) -> None:
        scales = tuple(float(s) for s in scales)
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(
                f"scales must be a non-empty sequence of positive floats, got {scales}"
            )
        self.scales = scales
        self.group_size = len(scales)

    def basis(self, kernel_size: int, effective_size: int) -> torch.Tensor:
        return steerable_basis_a(kernel_size, self.scales, effective_size)
