"""C_N rotation-equivariant layers from e2cnn (Weiler & Cesa, "General E(2)-Equivariant
Steerable CNNs", arXiv:1911.08251), for rotation groups the pixel grid cannot build by itself.

The C4 backbones (``rotation.py``) get their group axis from ``torch.rot90`` copies of
SESN's basis, which only exist for quarter turns. For C_N with N > 4 (45° for C8) a
rotated kernel must be *steered*: e2cnn's ``R2Conv`` between regular fields learns
kernels in a basis of circular harmonics that satisfy the C_N constraint analytically,
so the filters are equivariant as continuous functions and only their sampling on the
grid is approximate. We use e2cnn for that alone (``gspaces.Rot2dOnR2(N)`` and
``nn.R2Conv`` on trivial/regular fields): its D_N, SO(2) and O(2) layers fail to build
with NumPy 2 (they call ``ndarray.tostring``, removed in NumPy 2), C_N with regular fields
works.

Layout. A regular field of C_N is N numbers indexed by the group elements, and e2cnn
stores field ``c`` as the channels ``c·N .. c·N + N − 1``, so its ``(B, C·N, H, W)``
tensor is viewed as our ``(B, C, N, H, W)`` map with no copy. A counter-clockwise
rotation by ``360°/N`` rolls the group axis forward by one:

    f(rot_{360k/N} x) = roll(rot_{360k/N} f(x), shifts=k, dims=2),

exact for quarter turns when 4 divides N (``torch.rot90``, k = N/4) at odd input sizes, where the
stride-2 grids map onto themselves (``hssl.py`` explains why even sizes are not), and
approximate for other angles because an image rotated by 45° must be interpolated.
``tests/test_backbones_cn.py`` checks the first and measures the second.

Differences from the C4 network, which the architecture (``hssl.HSSLMnist``) otherwise
shares through the :class:`~ssl_geom.backbones.families.LayerFamily` interface:

- ``R2Conv`` between regular fields is the *full* group convolution (every output
  element sees every input element), not SESN's group filter of size 1 that H-SSL
  App. A uses; it costs ``N`` times more multiply-adds per pair of fields.
- SESN's ``effective_size`` (how many Hermite-Gaussian functions span a kernel) has no
  e2cnn counterpart; e2cnn's default band limit for the kernel size is used instead.

Measured (``tests/test_backbones_cn.py``; 2-core CPU shared with other jobs, load ~11):

- equivariance: quarter turns exact (error < 1e-10 relative, float64, 33x33); 45° on a
  smooth disc-masked input: relative L2 error 0.25 on the 9x9 map (the bilinear round trip
  of that map alone is 0.24), 0.026 after the lifting conv, and 0.032 on the invariant
  vector (max over G, mean over the disc) against 0.075 for the C4 network;
- cost of ``hssl_mnist_c8``: slower to construct than the C4 network, cheaper per
  forward+backward (``benchmarks/backbones.py``; the numbers: docs/backbones.md and
  docs/benchmarks.md);
- checkpoints: e2cnn keeps its sampled basis and the expanded filter as buffers, so the
  state dict holds 3.06M numbers for 92.6k parameters (about 12 MB in float32).

Written here by hand: the two wrappers converting between our 5-D maps and e2cnn's
``GeometricTensor`` (a few lines each).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache

import torch
from e2cnn import gspaces
from e2cnn import nn as enn
from torch import nn

from ssl_geom.symmetry import Symmetry

from .families import LayerFamily
from .hssl import HSSLMnist
from .registry import register_backbone


@cache
def _gspace(order: int) -> gspaces.Rot2dOnR2:
    """One gspace per order: e2cnn caches its analytical kernel bases on it (plain objects)."""
    return gspaces.Rot2dOnR2(order)


def _r2conv(
    in_type: enn.FieldType, out_type: enn.FieldType, kernel_size: int, stride: int, padding: int
) -> enn.R2Conv:
    with warnings.catch_warnings():
        # e2cnn 0.2 indexes a tensor with a uint8 mask while building the basis; harmless.
        warnings.filterwarnings("ignore", message="indexing with dtype torch.uint8")
        # recompute=True: by default e2cnn hands every layer with the same basis one shared
        # module holding the sampled filters as buffers, so `.double()` or `.to(device)` on
        # one model converted those of every other model in the process (a float32 model
        # then failed with "expected scalar type Float but found Double"). Each layer now
        # samples its own (about 0.4 s per C8 backbone).
        return enn.R2Conv(
            in_type,
            out_type,
            kernel_size,
            padding=padding,
            stride=stride,
            bias=False,
            recompute=True,
        )


class _ToRegularFields(nn.Module):
    """An ``R2Conv`` onto regular fields, its output split into ``(B, C', N, H', W')``."""

    def __init__(self, conv: enn.R2Conv, order: int) -> None:
        super().__init__()
        self.conv = conv
        self.order = order

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)``, channels as e2cnn lays out the input fields -> ``(B, C', N, H', W')``."""
        y = self.conv(enn.GeometricTensor(x, self.conv.in_type)).tensor
        return y.view(y.shape[0], -1, self.order, *y.shape[-2:])


class E2Lift(_ToRegularFields):
    """``(B, C, H, W) -> (B, C', N, H', W')``: ``R2Conv`` from trivial to regular fields."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._convolve(x)


class E2GroupConv(_ToRegularFields):
    """``(B, C, N, H, W) -> (B, C', N, H', W')``: ``R2Conv`` between regular fields."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, g, h, w = x.shape
        if g != self.order:
            raise ValueError(f"expected a C{self.order} group axis of size {self.order}, got {g}")
        return self._convolve(x.reshape(b, c * g, h, w))


class CyclicFamily(LayerFamily):
    """C_N regular-representation layers built by e2cnn; ``G = N`` (see the module docstring).

    ``effective_size`` is accepted for the ``LayerFamily`` interface and ignored: e2cnn
    band-limits its steerable basis by its own rule.
    """

    group: Symmetry = Symmetry.ROTATION

    def __init__(self, order: int = 8) -> None:
        if not isinstance(order, int) or order < 2:
            raise ValueError(
                f"order must be an int >= 2 (the N of C_N, e.g. 8 for 45° rotations), got {order!r}"
            )
        self.group_size = order
        self.gspace = _gspace(order)

    def _fields(self, channels: int, regular: bool) -> enn.FieldType:
        rep = self.gspace.regular_repr if regular else self.gspace.trivial_repr
        return enn.FieldType(self.gspace, [rep] * channels)

    def _to_regular(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        padding: int,
        *,
        from_regular: bool,
    ) -> enn.R2Conv:
        """``R2Conv`` onto ``out_channels`` regular fields, from regular or trivial (image) ones."""
        in_type = self._fields(in_channels, regular=from_regular)
        out_type = self._fields(out_channels, regular=True)
        return _r2conv(in_type, out_type, kernel_size, stride, padding)

    def lift(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        args = (in_channels, out_channels, kernel_size, stride, padding)
        return E2Lift(self._to_regular(*args, from_regular=False), self.group_size)

    def conv(self, in_channels, out_channels, kernel_size, effective_size, stride=1, padding=0):
        args = (in_channels, out_channels, kernel_size, stride, padding)
        return E2GroupConv(self._to_regular(*args, from_regular=True), self.group_size)


MNIST_C8_CHANNELS: tuple[int, int, int] = (8, 16, 32)
"""Regular fields per layer of ``hssl_mnist_c8``: ``C·N`` = 64/128/256 numbers per pixel, half
the C4 network's 128/256/512, so that each full C8 group convolution costs about what the C4
network's size-1 group convolution costs (the same dense multiply-adds per pixel)."""


@register_backbone("hssl_mnist_c8")
def hssl_mnist_c8(channels: Sequence[int] = MNIST_C8_CHANNELS, **kwargs) -> HSSLMnist:
    """H-SSL's MNIST CNN (k 11/7/7, strides 1/2/2) over C8 (45° rotations), e2cnn layers."""
    return HSSLMnist(CyclicFamily(8), channels=channels, **kwargs)
