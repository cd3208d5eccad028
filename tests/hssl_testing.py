"""Test backbones with *exact* group structure for the H-SSL fiber tests.

``C4Lifting`` builds ``z(x)[:, :, g] = rot^g(φ(rot^-g x))`` from any ``φ``; then
``z(rot x)[g] = rot(rot^(g-1) φ(rot^-(g-1) x)) = rot(z(x)[g-1])``: rotating the input
rotates the spatial axes and rolls the group axis by one, exactly (the regular
representation of DESIGN "Structured features"), with no BatchNorm or aliasing to blur
the H-SSL/A-SSL equivalence (H-SSL Eq. 7). ``test_c4`` registers it as a backbone
(group ``"rotation"``, G = 4); ``test_scales`` is a ``"scale"``-labelled backbone with
G = 3 for shape and construction tests (its axis is not truly scale-equivariant).
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_geom.backbones import StructuredBackbone, register_backbone


class C4Lifting(nn.Module):
    """Exactly C4-equivariant map ``(B, in, H, W) -> (B, C, 4, H - 2, W - 2)``."""

    def __init__(self, in_channels: int = 1, channels: int = 3) -> None:
        super().__init__()
        self.phi = nn.Sequential(
            nn.Conv2d(in_channels, 5, 3, padding=1), nn.Tanh(), nn.Conv2d(5, channels, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fibers = [
            torch.rot90(self.phi(torch.rot90(x, -g, dims=(-2, -1))), g, dims=(-2, -1))
            for g in range(4)
        ]
        return torch.stack(fibers, dim=2)


@register_backbone("test_c4", overwrite=True)
class C4Backbone(StructuredBackbone):
    """``C4Lifting`` as a registered rotation backbone."""

    group = "rotation"

    def __init__(self, in_channels: int = 3, channels: int = 3) -> None:
        super().__init__()
        self.lifting = C4Lifting(in_channels, channels)
        self.out_channels = channels
        self.group_size = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lifting(x)


@register_backbone("test_scales", overwrite=True)
class ScaleStackBackbone(StructuredBackbone):
    """Three convolutions stacked on a ``"scale"`` axis (G = 3); structure only in name."""

    group = "scale"

    def __init__(self, in_channels: int = 3, channels: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, channels, 3) for _ in range(3))
        self.out_channels = channels
        self.group_size = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.relu(conv(x)) for conv in self.convs], dim=2)


def rotate_each(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate sample ``n`` by ``turns[n]`` quarter turns (the A-SSL input augmentation)."""
    return torch.stack(
        [torch.rot90(xi, int(k), dims=(-2, -1)) for xi, k in zip(x, turns, strict=True)]
    )
