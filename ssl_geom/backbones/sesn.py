"""Scale-equivariant steerable convolutions (SESN, Sosnovik et al. 2020), written by hand.

No maintained package provides them (the authors' ``ISosnovik/sesn`` is a research
repository, not an installable library), so this module re-derives the two layers
H-SSL App. A uses: the lifting layer ``Z2 -> S x Z2`` and the group convolution
``S x Z2 -> S x Z2`` with a scale filter of size 1 (``scale_size = 1``, the setting
of every H-SSL backbone).

Math (SESN Sec. 3-4). Let ``L_a x (u) = x(a u)`` downscale an image by ``a > 1``
and let a kernel at scale ``σ`` be the rescaled copy ``κ_σ(u) = σ^-2 κ(u / σ)``.
Substituting ``w = a v`` in the convolution integral gives

    (L_a x ⋆ κ_σ)(u) = (x ⋆ κ_{aσ})(a u) = L_a (x ⋆ κ_{aσ}) (u),

so if a layer computes one output per scale ``σ_s`` of a fixed set,
``f(x)[s] = x ⋆ κ_{σ_s}``, then downscaling the input by ``a = σ_t / σ_s``
moves what was at scale index ``t`` to index ``s``, downscaled:
``f(L_a x)[s] = L_a f(x)[t]``. The scale axis is a (truncated, non-cyclic)
regular representation of the scale group. With ``scale_size = 1`` the group
convolution applies ``κ_{σ_s}`` to input scale ``s`` only, so every later layer
keeps the property and so does the whole network (BatchNorm in eval mode and
ReLU act pointwise and per channel, shared across scales).

Rescaling a discrete kernel is not exact, so SESN builds ``κ`` in a *steerable*
basis whose rescaled copies are known in closed form: the Hermite-Gaussian
functions ("basis type A")

    ψ_{σ,n,m}(u, v) = σ^-2 He_n(u/σ) He_m(v/σ) exp(-(u² + v²) / (2σ²)),

``He`` the probabilists' Hermite polynomials, orders ``0 <= n, m < effective_size``
(``effective_size²`` functions). Each is sampled at integer offsets on a
centred grid of ``size_s = 2·⌊⌊kernel_size·σ_s/σ_max⌋ / 2⌋ + 1`` pixels (larger
scales get wider supports, the largest fills ``kernel_size``), zero-padded to
``kernel_size``, and every function is divided by its norm at the smallest scale,
so the ``σ^-2`` ratio between scales is kept. A layer learns one weight per
``(out, in, function)`` and expands ``κ_{σ_s} = Σ_f w_f ψ_{σ_s, f}`` for every
scale. Its parameter count is ``C_out · C_in · effective_size²`` whatever the
kernel size or number of scales.

Equivariance is approximate on a pixel grid: small scales are coarsely sampled
and the Gaussian envelope is truncated at the kernel border, which
``tests/test_backbones_equivariance.py`` measures.

The two layers take the basis as a tensor ``(F, G, k, k)`` (function ``f`` as
seen by group element ``g``), so the rotation flavour (``rotation.py``) reuses
them with rotated instead of rescaled copies of one basis.

Written here: basis construction and the two layers (kernel expansion plus one
``F.conv2d``; the group axis of the group convolution is a grouped conv with
``groups = G``). The expansion is one small einsum per step; its cost is part of
``benchmarks/backbones.py``'s timings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def hermite_gaussian_1d(size: int, sigma: float, max_order: int) -> torch.Tensor:
    """``(max_order + 1, size)``: ``σ^-1 He_n(u/σ) exp(-u²/(2σ²))`` at ``u = -size//2 .. size//2``.

    ``He_n`` by the recurrence ``He_{n+1}(t) = t He_n(t) - n He_{n-1}(t)``; float64
    so high orders on wide grids do not lose digits before the cast.
    """
    if size % 2 == 0 or size < 1:
        raise ValueError(f"size must be a positive odd int (a centred grid), got {size}")
    u = torch.arange(-(size // 2), size // 2 + 1, dtype=torch.float64)
    t = u / sigma
    polys = [torch.ones_like(t), t]
    for n in range(1, max_order):
        polys.append(t * polys[n] - n * polys[n - 1])
    envelope = torch.exp(-(t**2) / 2) / sigma
    return torch.stack(polys[: max_order + 1]) * envelope


def steerable_basis_a(
    kernel_size: int, scales: Sequence[float], effective_size: int
) -> torch.Tensor:
    """SESN basis type "A": ``(effective_size², S, kernel_size, kernel_size)``, float64.

    See the module docstring for the formula, supports and normalisation.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a centred kernel), got {kernel_size}")
    if not 1 <= effective_size <= kernel_size:
        raise ValueError(
            f"effective_size must be in [1, kernel_size={kernel_size}], got {effective_size}"
        )
    max_scale = max(scales)
    per_scale = []
    for sigma in scales:
        support = int(kernel_size * sigma / max_scale) // 2 * 2 + 1
        h = hermite_gaussian_1d(support, sigma, effective_size - 1)
        # ψ_{n,m}(u, v) = h_n(u) h_m(v), functions ordered (n, m) row-major.
        grid = torch.einsum("nu,mv->nmuv", h, h).reshape(-1, support, support)
        pad = (kernel_size - support) // 2
        per_scale.append(F.pad(grid, (pad, pad, pad, pad)))
    basis = torch.stack(per_scale, dim=1)
    smallest = min(range(len(scales)), key=lambda s: scales[s])
    norm = basis[:, smallest].pow(2).sum(dim=(-2, -1)).sqrt()
    return basis / norm[:, None, None, None]


class BasisLift(nn.Module):
    """Lifting ``Z2 -> G x Z2`` with kernels steered by a fixed basis.

    ``basis`` is ``(F, G, k, k)``: function ``f`` as seen by group element ``g``
    (a rescaled copy for SESN scales, a rotated copy for C4). The layer learns
    ``w`` of shape ``(C_out, C_in, F)`` and computes, for every ``g``,
    ``y[:, :, g] = x ⋆ Σ_f w_f basis[f, g]`` —
    ``(B, C_in, H, W) -> (B, C_out, G, H', W')``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, basis: torch.Tensor, stride: int, padding: int
    ) -> None:
        super().__init__()
        if basis.ndim != 4 or basis.shape[-1] != basis.shape[-2]:
            raise ValueError(f"basis must be (F, G, k, k), got shape {tuple(basis.shape)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        self.basis: torch.Tensor
        self.register_buffer("basis", basis.to(torch.get_default_dtype()))
        num_funcs = basis.shape[0]
        # He (fan-out) init of the expanded kernel at the first group element: the
        # basis functions have unit norm there, so ||κ||² ≈ F · Var(w) = 2 / C_out.
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, num_funcs)
            * math.sqrt(2 / (out_channels * num_funcs))
        )

    @property
    def group_size(self) -> int:
        return self.basis.shape[1]

    @property
    def kernel_size(self) -> int:
        return self.basis.shape[-1]

    def group_kernels(self) -> torch.Tensor:
        """``(G, C_out, C_in, k, k)``: ``κ_g = Σ_f w_f basis[f, g]`` for every element."""
        return torch.einsum("oif,fgkl->goikl", self.weight, self.basis)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels}, group_size={self.group_size}, "
            f"kernel_size={self.kernel_size}, functions={self.basis.shape[0]}, "
            f"stride={self.stride}, padding={self.padding}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"lifting layer expects (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        k = self.kernel_size
        # Output channel c·G + g is (c, g), so the result views as (B, C_out, G, H', W').
        kernel = self.group_kernels().transpose(0, 1).reshape(-1, self.in_channels, k, k)
        y = F.conv2d(x, kernel, stride=self.stride, padding=self.padding)
        return y.view(y.shape[0], self.out_channels, self.group_size, *y.shape[-2:])


class BasisGroupConv(BasisLift):
    """Group convolution ``G x Z2 -> G x Z2`` with a group filter of size 1.

    ``(B, C_in, G, H, W) -> (B, C_out, G, H', W')``: fiber ``g`` of the input is
    convolved with ``κ_g`` only (SESN's ``scale_size = 1``; for C4 the same
    restriction H-SSL App. A uses), one grouped ``conv2d`` (``groups = G``) for all.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.group_size
        if x.ndim != 5 or x.shape[1] != self.in_channels or x.shape[2] != g:
            raise ValueError(
                f"group conv expects (B, {self.in_channels}, {g}, H, W), got shape {tuple(x.shape)}"
            )
        b, c, _, h, w = x.shape
        k = self.kernel_size
        kernel = self.group_kernels().reshape(g * self.out_channels, c, k, k)
        y = F.conv2d(
            x.transpose(1, 2).reshape(b, g * c, h, w),
            kernel,
            stride=self.stride,
            padding=self.padding,
            groups=g,
        )
        return y.view(b, g, self.out_channels, *y.shape[-2:]).transpose(1, 2)
