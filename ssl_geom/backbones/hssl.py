"""The H-SSL backbones (H-SSL paper App. A "Model Architectures"), each written once.

Every architecture takes a ``LayerFamily`` (``families.py``) and is registered
in one flavour per :class:`~ssl_geom.symmetry.Symmetry`, named by its value:
``_translation`` (G=1), ``_rotation`` (C4, G=4) and ``_scale`` (6 SESN scales, G=6); the Table 2 "without structure" baselines are
``hssl_mnist_mlp`` and the ``*_cnn6x`` names. Channel counts ``C`` are per
group element (regular fields), so a rotation map holds ``C*4`` numbers per
pixel.

- ``hssl_mnist_*``: three convs, 32/64/128 channels, kernels 11/7/7, effective
  sizes 11/3/3, strides 1/2/2, padding 5/3/3, no bias, BN + ReLU after each.
- ``hssl_resnet20_*`` (CIFAR-10): lifting conv (k7, eff 7, pad 3, 9 ch), group
  conv (k7, eff 3, pad 3, 64 ch), BN, ReLU, then 3 stages x 3 SESN BasicBlocks
  of widths 128/256/512, strides 1/2/2. ``z`` is the output of the last block
  (the paper's readout adds BN/ReLU only for classification).
- ``hssl_resnet20_tin_*`` (Tiny ImageNet): 4 stages x 2 blocks, widths
  64/128/256/512, strides 1/2/2/2.

Spatial sizes differ from the paper's stated ones, which the described layers
cannot produce: MNIST 28x28 gives 7x7 (paper: 8x8, which needs 29..32 input),
CIFAR 32x32 gives 8x8 (paper: 7x7), TIN 64x64 gives 8x8 (paper: 4x4). We follow
the layers as described.

Rotation flavour and input size. A quarter turn maps the sampling grid of a
stride-2 layer onto itself only when the layer's input size is odd; with an
even size the rotated image is sampled on a grid shifted by one pixel, so the
network is equivariant only approximately. Measured relative error
``max|f(rot x) - Γ f(x)| / max|f(x)|`` (eval mode, float64, Gaussian-noise
input, the ResNets at narrow widths; ``tests/test_backbones_equivariance.py``):

    backbone                    odd size (err)     native even size (err; embed err)
    hssl_mnist_rotation         29 (2e-15)         28 (0.76; 0.048)
    hssl_resnet20_rotation      33 (3e-15)         32 (0.58; 0.057)
    hssl_resnet20_tin_rotation  65 (2e-15)         64 (0.52; 0.057)

Decision: inputs are *not* padded by default. The paper trains at the native
sizes, and padding inside the backbone cannot help: the rotation happens before
it, and rotating an even image then padding it is a rotation of the padded
image plus a one-pixel shift (measured: 0.59 on MNIST, no better). Where exact
equivariance matters, pad the *data* to an odd size before any rotation is
applied (e.g. ``torchvision.transforms.v2.Pad((0, 0, 1, 1))`` first in the
transform), as e2cnn's MNIST examples do with 29x29 inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from ssl_geom.symmetry import Symmetry

from .base import StructuredBackbone
from .families import DEFAULT_SCALES, LayerFamily, ScaleFamily, StreamFamily, TranslationFamily
from .readout import ConvGroupReadout, Readout, ResNetGroupReadout
from .registry import register_backbone
from .rotation import RotationFamily


class _ConvBNReLU(nn.Sequential):
    def __init__(self, conv: nn.Module, channels: int) -> None:
        super().__init__(conv, nn.BatchNorm3d(channels), nn.ReLU(inplace=True))


class _FamilyBackbone(StructuredBackbone):
    """Shared metadata and input handling for backbones built from a ``LayerFamily``."""

    def __init__(self, family: LayerFamily, out_channels: int) -> None:
        super().__init__()
        self.group = family.group
        self.group_size = family.group_size
        self.emulated_group_size = family.emulated_group_size
        self.out_channels = out_channels

    @staticmethod
    def _check_input(x: torch.Tensor, in_channels: int) -> None:
        if x.ndim != 4 or x.shape[1] != in_channels:
            raise ValueError(
                f"expected input of shape (B, {in_channels}, H, W), got {tuple(x.shape)}; "
                "pass in_channels=... when building the backbone"
            )


class HSSLMnist(_FamilyBackbone):
    """H-SSL's three-layer MNIST backbone (App. A); output ``(B, 128, G, 7, 7)`` for 28x28."""

    def __init__(
        self, family: LayerFamily, in_channels: int = 1, channels: Sequence[int] = (32, 64, 128)
    ) -> None:
        c1, c2, c3 = channels
        super().__init__(family, c3)
        self.in_channels = in_channels
        self.family = family
        self.layers = nn.Sequential(
            _ConvBNReLU(family.lift(in_channels, c1, 11, 11, stride=1, padding=5), c1),
            _ConvBNReLU(family.conv(c1, c2, 7, 3, stride=2, padding=3), c2),
            _ConvBNReLU(family.conv(c2, c3, 7, 3, stride=2, padding=3), c3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, self.in_channels)
        return self.layers(x)

    def build_readout(self) -> Readout:
        """App. A: one more SESN conv (k 7, effective 3, stride 2, no padding) to 1x1, max over G."""
        c = self.out_channels
        conv = self.family.conv(c, c, 7, 3, stride=2, padding=0)
        return ConvGroupReadout(conv, c, c)


class SESBasicBlock(nn.Module):
    """SESN's pre-activation BasicBlock (``sesn/models/stl_ses.py``), written against a family.

    ``BN-ReLU-conv(k7, eff 3, pad 3, stride)-BN-ReLU-conv(k7, eff 3, pad 3)`` plus
    the identity, or a 1x1 fiber-wise conv of the activated input when the shape
    changes.
    """

    def __init__(self, family: LayerFamily, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm3d(in_channels)
        self.conv1 = family.conv(in_channels, out_channels, 7, 3, stride=stride, padding=3)
        self.bn2 = nn.BatchNorm3d(out_channels)
        self.conv2 = family.conv(out_channels, out_channels, 7, 3, stride=1, padding=3)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (
            family.pointwise(in_channels, out_channels, stride)
            if in_channels != out_channels or stride != 1
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(a))))
        return out + (x if self.shortcut is None else self.shortcut(a))


class HSSLResNet20(_FamilyBackbone):
    """H-SSL's "ResNet20" (App. A): SESN stem plus stages of SESN BasicBlocks.

    Defaults are the CIFAR-10 model; ``hssl_resnet20_tin_*`` passes the Tiny
    ImageNet widths/strides/depth. ``widths`` etc. can be overridden (e.g. a
    narrow model for tests or quick runs).
    """

    def __init__(
        self,
        family: LayerFamily,
        in_channels: int = 3,
        widths: Sequence[int] = (128, 256, 512),
        strides: Sequence[int] = (1, 2, 2),
        blocks_per_stage: int = 3,
        stem_channels: Sequence[int] = (9, 64),
    ) -> None:
        if len(widths) != len(strides):
            raise ValueError(
                f"widths {tuple(widths)} and strides {tuple(strides)} must have the same length"
            )
        super().__init__(family, widths[-1])
        self.in_channels = in_channels
        lifted, stem = stem_channels
        self.stem = nn.Sequential(
            family.lift(in_channels, lifted, 7, 7, stride=1, padding=3),
            family.conv(lifted, stem, 7, 3, stride=1, padding=3),
            nn.BatchNorm3d(stem),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        previous = stem
        for width, stride in zip(widths, strides, strict=True):
            for i in range(blocks_per_stage):
                blocks.append(SESBasicBlock(family, previous, width, stride if i == 0 else 1))
                previous = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, self.in_channels)
        return self.blocks(self.stem(x))

    def build_readout(self) -> Readout:
        """App. A: max over G, BatchNorm, ReLU, mean over space, BatchNorm."""
        return ResNetGroupReadout(self.out_channels)


class HSSLMnistMLP(StructuredBackbone):
    """H-SSL Table 2 "MLP": the three MNIST convs replaced by fully connected layers.

    App. A: outputs (784, 1024, 2048), BN + ReLU after each. Forward returns
    ``(B, 2048, 1, 1, 1)``; ``emulated_group_size = 16`` lets H-SSL view the 2048
    features as 16 "fibers" of 128 (the paper's reshape to (16, 128)).
    """

    group = Symmetry.TRANSLATION

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        widths: Sequence[int] = (784, 1024, 2048),
        emulated_group_size: int = 16,
    ) -> None:
        super().__init__()
        if widths[-1] % emulated_group_size:
            raise ValueError(
                f"last width {widths[-1]} is not divisible by emulated_group_size "
                f"{emulated_group_size}"
            )
        self.in_channels = in_channels
        self.image_size = image_size
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_channels * image_size * image_size
        for width in widths:
            layers += [nn.Linear(previous, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            previous = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = widths[-1]
        self.emulated_group_size = emulated_group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected input of shape (B, {', '.join(map(str, expected))}), got "
                f"{tuple(x.shape)}; pass in_channels=/image_size= when building the backbone"
            )
        return self.layers(x)[:, :, None, None, None]


FLAVOURS: dict[str, Callable[..., LayerFamily]] = {
    Symmetry.TRANSLATION.value: TranslationFamily,
    Symmetry.ROTATION.value: RotationFamily,
    Symmetry.SCALE.value: ScaleFamily,
}
"""Family constructor per flavour suffix; ``scales`` (scale flavour only) is
accepted by the registered factories and passed to the family."""

_TIN = {"widths": (64, 128, 256, 512), "strides": (1, 2, 2, 2), "blocks_per_stage": 2}


def _build(arch: Callable[..., StructuredBackbone], flavour: str, arch_defaults: dict, **kwargs):
    family_kwargs = {}
    if "scales" in kwargs:
        if flavour != Symmetry.SCALE:
            raise TypeError(
                f"'scales' only applies to the 'scale' flavour, not {flavour!r}; "
                f"use the _scale backbone to choose scales"
            )
        family_kwargs["scales"] = kwargs.pop("scales")
    return arch(FLAVOURS[flavour](**family_kwargs), **{**arch_defaults, **kwargs})


for _flavour in FLAVOURS:
    register_backbone(f"hssl_mnist_{_flavour}")(partial(_build, HSSLMnist, _flavour, {}))
    register_backbone(f"hssl_resnet20_{_flavour}")(partial(_build, HSSLResNet20, _flavour, {}))
    register_backbone(f"hssl_resnet20_tin_{_flavour}")(
        partial(_build, HSSLResNet20, _flavour, _TIN)
    )


@register_backbone("hssl_mnist_mlp")
def hssl_mnist_mlp(**kwargs) -> HSSLMnistMLP:
    """H-SSL Table 2 MLP baseline (see ``HSSLMnistMLP``)."""
    return HSSLMnistMLP(**kwargs)


@register_backbone("hssl_mnist_cnn6x")
def hssl_mnist_cnn6x(group_size: int = len(DEFAULT_SCALES), **kwargs) -> HSSLMnist:
    """H-SSL Table 2 "CNN (6 x CHW)" on MNIST: per-scale unconstrained kernels, no symmetry."""
    return HSSLMnist(StreamFamily(group_size), **kwargs)


@register_backbone("hssl_resnet20_cnn6x")
def hssl_resnet20_cnn6x(group_size: int = len(DEFAULT_SCALES), **kwargs) -> HSSLResNet20:
    """H-SSL Table 2 "CNN (6 x CHW)" on CIFAR-10 (see ``families.StreamFamily``)."""
    return HSSLResNet20(StreamFamily(group_size), **kwargs)
