"""Backbone registry, the structured-map contract of every registered name, and parameter counts.

Parameter counts are recomputed here from the layer descriptions of H-SSL App. A
(a SESN layer learns ``C_out * C_in * effective_size**2`` weights whatever its kernel
size and number of group elements; BatchNorm has 2 per channel), independently of
how ``ssl_geom.backbones`` builds them.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_geom.backbones import (
    StructuredBackbone,
    build_backbone,
    list_backbones,
    register_backbone,
)

# name -> (input (C, H, W), out_channels, G, group, emulated G, output (H, W))
EXPECTED = {
    "hssl_mnist_translation": ((1, 28, 28), 128, 1, "translation", None, (7, 7)),
    "hssl_mnist_rotation": ((1, 28, 28), 128, 4, "rotation", None, (7, 7)),
    "hssl_mnist_scale": ((1, 28, 28), 128, 6, "scale", None, (7, 7)),
    "hssl_mnist_cnn6x": ((1, 28, 28), 128, 6, "translation", 6, (7, 7)),
    "hssl_mnist_mlp": ((1, 28, 28), 2048, 1, "translation", 16, (1, 1)),
    "hssl_resnet20_translation": ((3, 32, 32), 512, 1, "translation", None, (8, 8)),
    "hssl_resnet20_rotation": ((3, 32, 32), 512, 4, "rotation", None, (8, 8)),
    "hssl_resnet20_scale": ((3, 32, 32), 512, 6, "scale", None, (8, 8)),
    "hssl_resnet20_cnn6x": ((3, 32, 32), 512, 6, "translation", 6, (8, 8)),
    "hssl_resnet20_tin_translation": ((3, 64, 64), 512, 1, "translation", None, (8, 8)),
    "hssl_resnet20_tin_rotation": ((3, 64, 64), 512, 4, "rotation", None, (8, 8)),
    "hssl_resnet20_tin_scale": ((3, 64, 64), 512, 6, "scale", None, (8, 8)),
    "resnet18": ((3, 64, 64), 512, 1, "translation", None, (2, 2)),
    "resnet50": ((3, 64, 64), 2048, 1, "translation", None, (2, 2)),
    "resnet18_cifar": ((3, 32, 32), 512, 1, "translation", None, (4, 4)),
    "resnet50_cifar": ((3, 32, 32), 2048, 1, "translation", None, (4, 4)),
}
# Built in the default suite only if cheap: the CIFAR CNN(6xCHW) has ~560M parameters.
HEAVY = {"hssl_resnet20_cnn6x"}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def bn(*channels: int) -> int:
    return 2 * sum(channels)


def test_every_builtin_backbone_is_listed() -> None:
    assert set(EXPECTED) <= set(list_backbones())


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=(pytest.mark.slow, pytest.mark.heavy)) if n in HEAVY else n
        for n in sorted(EXPECTED)
    ],
)
def test_structured_map_shape_group_and_embed(name: str) -> None:
    (c, h, w), channels, g, group, emulated, spatial = EXPECTED[name]
    model = build_backbone(name)
    assert isinstance(model, StructuredBackbone)
    assert (model.out_channels, model.group_size, model.group) == (channels, g, group)
    assert model.emulated_group_size == emulated
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        z = model(x)
        vector = model.embed(x)
    assert z.shape == (2, channels, g, *spatial)
    # embed = max over the group axis, then mean over space (H-SSL App. A).
    assert vector.shape == (2, model.embed_dim) == (2, channels)
    torch.testing.assert_close(vector, z.amax(dim=2).mean(dim=(-2, -1)))


def sesn_resnet20_params(widths, strides, blocks, stem=(9, 64), in_channels=3) -> int:
    """App. A ResNet20: lift (k7, eff 7), conv (eff 3) + BN, then SESN BasicBlocks.

    A block is BN(in), conv(in->out, eff 3), BN(out), conv(out->out, eff 3) and a
    1x1 shortcut (in*out weights) when the shape changes.
    """
    lifted, first = stem
    total = in_channels * lifted * 49 + lifted * first * 9 + bn(first)
    previous = first
    for width, stride in zip(widths, strides, strict=True):
        for i in range(blocks):
            s = stride if i == 0 else 1
            total += bn(previous, width) + previous * width * 9 + width * width * 9
            if previous != width or s != 1:
                total += previous * width
            previous = width
    return total


# The three flavours share the parameter count: only the basis copies differ (App. A).
MNIST_SESN = 1 * 32 * 11**2 + 32 * 64 * 3**2 + 64 * 128 * 3**2 + bn(32, 64, 128)
CIFAR_SESN = sesn_resnet20_params((128, 256, 512), (1, 2, 2), 3)
TIN_SESN = sesn_resnet20_params((64, 128, 256, 512), (1, 2, 2, 2), 2)
PAPER_PARAMS = {
    **{f"hssl_mnist_{f}": MNIST_SESN for f in ("translation", "rotation", "scale")},
    **{f"hssl_resnet20_{f}": CIFAR_SESN for f in ("translation", "rotation", "scale")},
    **{f"hssl_resnet20_tin_{f}": TIN_SESN for f in ("translation", "rotation", "scale")},
    # Table 2 MLP: Linear 784->784->1024->2048 without bias, BN after each.
    "hssl_mnist_mlp": 784 * 784 + 784 * 1024 + 1024 * 2048 + bn(784, 1024, 2048),
    # Table 2 CNN (6 x CHW): every SESN kernel replaced by a full k x k kernel per scale.
    "hssl_mnist_cnn6x": 6 * (1 * 32 * 121 + 32 * 64 * 49 + 64 * 128 * 49) + bn(32, 64, 128),
}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_parameter_count_is_what_the_paper_architecture_implies(name: str) -> None:
    assert count(build_backbone(name)) == PAPER_PARAMS[name]


@pytest.mark.parametrize(
    ("name", "low", "high"),
    # torchvision's ResNet18/50 have 11.69M/25.56M parameters with their 1000-way fc
    # (512*1000+1000 and 2048*1000+1000), which the backbones drop; the CIFAR stem
    # (3x3 instead of 7x7 conv1) removes another 64*3*40 = 7680.
    [
        ("resnet18", 11.17e6, 11.18e6),
        ("resnet50", 23.50e6, 23.51e6),
        ("resnet18_cifar", 11.16e6, 11.17e6),
        ("resnet50_cifar", 23.49e6, 23.51e6),
    ],
)
def test_torchvision_resnets_are_torchvision_minus_the_classifier(
    name: str, low: float, high: float
) -> None:
    assert low <= count(build_backbone(name)) <= high


def test_in_channels_changes_the_stem_and_wrong_input_names_the_fix() -> None:
    model = build_backbone("resnet18_cifar", in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 512, 1, 4, 4)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*in_channels"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"in_channels"):
        build_backbone("hssl_mnist_rotation")(torch.randn(2, 3, 28, 28))


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown backbone 'resnet19'.*hssl_mnist_translation.*resnet18"
    ):
        build_backbone("resnet19")


def test_scales_only_apply_to_the_scale_flavour() -> None:
    assert build_backbone("hssl_mnist_scale", scales=[1.0, 1.5]).group_size == 2
    with pytest.raises(TypeError, match=r"'scales' only applies to the 'scale' flavour"):
        build_backbone("hssl_mnist_rotation", scales=[1.0, 1.5])


def test_mlp_refuses_an_emulated_axis_that_does_not_divide_its_output() -> None:
    with pytest.raises(ValueError, match=r"2048 is not divisible by emulated_group_size 3"):
        build_backbone("hssl_mnist_mlp", emulated_group_size=3)


class _UserBackbone(StructuredBackbone):
    """What a user writes in their own file: two conv layers, no group structure."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).unsqueeze(2)


def test_a_user_backbone_registers_from_outside_and_round_trips() -> None:
    register_backbone("test_user_two_layer")(_UserBackbone)
    assert "test_user_two_layer" in list_backbones()
    model = build_backbone("test_user_two_layer", width=5)
    assert isinstance(model, _UserBackbone) and model.out_channels == 5
    assert model.embed(torch.randn(3, 1, 6, 6)).shape == (3, 5)
    # Registering another factory under the same name would shadow it silently: refused.
    with pytest.raises(ValueError, match=r"already registered; pass overwrite=True"):
        register_backbone("test_user_two_layer")(lambda: _UserBackbone(2))


def test_a_factory_returning_a_plain_module_is_refused() -> None:
    register_backbone("test_user_not_structured", overwrite=True)(lambda: nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"returned Linear, expected a StructuredBackbone"):
        build_backbone("test_user_not_structured")
