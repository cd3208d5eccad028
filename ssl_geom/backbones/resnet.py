"""torchvision ResNets as ``StructuredBackbone`` (no group structure, ``G = 1``).

The networks are torchvision's own (randomly initialised, never downloaded);
only the stem is swapped where needed:

- ``resnet18`` / ``resnet50``: the ImageNet stem (7x7 stride-2 conv + max-pool);
  ``in_channels != 3`` replaces ``conv1`` by the same conv with that many inputs.
- ``resnet18_cifar`` / ``resnet50_cifar``: the usual small-image stem (3x3
  stride-1 conv, no max-pool), as in SimCLR's CIFAR experiments.

``forward`` returns the last stage's map as ``(B, C, 1, H, W)`` (C = 512 for
ResNet18, 2048 for ResNet50).
"""

from __future__ import annotations

from typing import Literal

import torch
import torchvision
from torch import nn

from ssl_geom.symmetry import Symmetry

from .base import StructuredBackbone
from .registry import register_backbone


class TorchvisionResNet(StructuredBackbone):
    """A torchvision ResNet without its pooling and classifier."""

    group = Symmetry.TRANSLATION

    def __init__(
        self,
        arch: Literal["resnet18", "resnet50"],
        in_channels: int = 3,
        small_images: bool = False,
    ) -> None:
        super().__init__()
        if arch not in ("resnet18", "resnet50"):
            raise ValueError(f"arch must be 'resnet18' or 'resnet50', got {arch!r}")
        net = getattr(torchvision.models, arch)(weights=None)
        if small_images:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.in_channels = in_channels
        self.out_channels = net.fc.in_features
        # Everything up to (not including) the global average pool and the classifier.
        self.body = nn.Sequential(*list(net.children())[:-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}; "
                "pass in_channels=... when building the backbone"
            )
        return self.body(x).unsqueeze(2)


@register_backbone("resnet18")
def resnet18(in_channels: int = 3) -> TorchvisionResNet:
    """torchvision ResNet18, ImageNet stem; output (B, 512, 1, H/32, W/32)."""
    return TorchvisionResNet("resnet18", in_channels)


@register_backbone("resnet50")
def resnet50(in_channels: int = 3) -> TorchvisionResNet:
    """torchvision ResNet50, ImageNet stem; output (B, 2048, 1, H/32, W/32)."""
    return TorchvisionResNet("resnet50", in_channels)


@register_backbone("resnet18_cifar")
def resnet18_cifar(in_channels: int = 3) -> TorchvisionResNet:
    """torchvision ResNet18 with a 3x3 stride-1 stem and no max-pool; (B, 512, 1, H/8, W/8)."""
    return TorchvisionResNet("resnet18", in_channels, small_images=True)


@register_backbone("resnet50_cifar")
def resnet50_cifar(in_channels: int = 3) -> TorchvisionResNet:
    """torchvision ResNet50 with a 3x3 stride-1 stem and no max-pool; (B, 2048, 1, H/8, W/8)."""
    return TorchvisionResNet("resnet50", in_channels, small_images=True)
