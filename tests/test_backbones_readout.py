"""Classifier readouts (H-SSL App. A): layer sequence, shapes, values and C4 invariance.

Expected values are recomputed here from the App. A description with plain tensor ops,
independently of ``ssl_geom.backbones.readout``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_geom.backbones import build_backbone, structured_to_vector
from ssl_geom.backbones.readout import (
    ConvGroupReadout,
    GlobalPoolReadout,
    GridPoolReadout,
    ResNetGroupReadout,
)
from ssl_geom.backbones.sesn import BasisGroupConv

NARROW_RESNET = {"widths": (8, 16, 16), "stem_channels": (3, 8)}


@pytest.mark.parametrize(
    ("name", "kwargs", "shape", "readout_type"),
    [
        ("hssl_mnist_translation", {}, (1, 28, 28), ConvGroupReadout),
        ("hssl_mnist_rotation", {}, (1, 28, 28), ConvGroupReadout),
        ("hssl_mnist_scale", {}, (1, 28, 28), ConvGroupReadout),
        ("hssl_resnet20_rotation", NARROW_RESNET, (3, 32, 32), ResNetGroupReadout),
        (
            "hssl_resnet20_tin_scale",
            {**NARROW_RESNET, "widths": (8, 8, 16, 16), "strides": (1, 2, 2, 2)},
            (3, 64, 64),
            ResNetGroupReadout,
        ),
        ("hssl_mnist_mlp", {}, (1, 28, 28), GlobalPoolReadout),
        ("resnet18_cifar", {}, (3, 32, 32), GlobalPoolReadout),
    ],
)
def test_readout_kind_and_output_shape(name, kwargs, shape, readout_type) -> None:
    backbone = build_backbone(name, **kwargs)
    readout = backbone.build_readout()
    assert type(readout) is readout_type
    z = backbone(torch.randn(3, *shape))
    out = readout(z)
    assert out.shape == (3, readout.out_features)
    assert readout.out_features == backbone.out_channels
    assert readout.has_parameters is (readout_type is not GlobalPoolReadout)


def test_mnist_readout_is_one_sesn_conv_k7_eff3_stride2_no_padding() -> None:
    readout = build_backbone("hssl_mnist_rotation").build_readout()
    conv = readout.conv
    assert isinstance(conv, BasisGroupConv)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.group_size) == (7, 2, 0, 4)
    # Effective size 3: 3x3 = 9 basis functions, one weight per (out, in, function).
    assert conv.weight.shape == (128, 128, 9)
    assert sum(p.numel() for p in readout.parameters()) == 128 * 128 * 9
    # The 7x7 map of a 28x28 input shrinks to 1x1 before the max over G.
    z = torch.randn(2, 128, 4, 7, 7)
    assert conv(z).shape == (2, 128, 4, 1, 1)


def test_resnet_readout_sequence_and_values() -> None:
    """Eval mode with fresh statistics (mean 0, var 1): BN is x / sqrt(1 + eps)."""
    readout = ResNetGroupReadout(5).double().eval()
    modules = [type(m) for m in readout.children()]
    assert modules == [nn.BatchNorm2d, nn.ReLU, nn.BatchNorm1d]
    z = torch.randn(4, 5, 6, 3, 3, dtype=torch.float64)
    scale = (1 + 1e-5) ** -0.5
    expected = torch.clamp(z.max(dim=2).values * scale, min=0).mean(dim=(2, 3)) * scale
    torch.testing.assert_close(readout(z), expected)


def test_global_pool_readout_equals_embed_vector() -> None:
    z = torch.randn(4, 7, 3, 5, 5)
    torch.testing.assert_close(GlobalPoolReadout(7)(z), structured_to_vector(z))


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [
        ("hssl_mnist_rotation", {"channels": (4, 8, 8)}, 7),
        ("hssl_resnet20_rotation", NARROW_RESNET, 5),
    ],
)
def test_rotation_readouts_are_c4_invariant(name, kwargs, size) -> None:
    """A quarter turn of the input rotates the map and rolls G by one (rotation.py); the readout
    must not see it. Exact on an odd map (the MNIST conv's 7x7 kernel covers a 7x7 map)."""
    torch.manual_seed(0)
    backbone = build_backbone(name, **kwargs).double()
    readout = backbone.build_readout().double().eval()
    z = torch.randn(3, backbone.out_channels, 4, size, size, dtype=torch.float64)
    turned = torch.roll(torch.rot90(z, 1, dims=(-2, -1)), shifts=1, dims=2)
    torch.testing.assert_close(readout(turned), readout(z), rtol=0, atol=1e-10)


def test_grid_pool_readout_is_group_max_then_block_means() -> None:
    """On a 6x6 map a 3x3 grid averages 2x2 blocks: recomputed with reshape and mean."""
    z = torch.randn(2, 4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    readout = GridPoolReadout(4, 3)
    blocks = z.amax(dim=2).reshape(2, 4, 3, 2, 3, 2).mean(dim=(3, 5))
    assert readout.out_features == 4 * 9 and not readout.has_parameters
    torch.testing.assert_close(readout(z), blocks.flatten(1))
    # Channel-major layout: channel c's 9 cells come together.
    torch.testing.assert_close(readout(z)[:, 9:18], blocks[:, 1].flatten(1))


def test_grid_pool_of_one_cell_is_the_global_pool() -> None:
    z = torch.randn(3, 5, 2, 7, 7)
    torch.testing.assert_close(GridPoolReadout(5, 1)(z), GlobalPoolReadout(5)(z))


def test_grid_pool_keeps_where_a_pattern_is() -> None:
    """A blob top-left and the same blob bottom-right: one global-pool vector, two grid vectors."""
    top_left, bottom_right = torch.zeros(1, 1, 1, 7, 7), torch.zeros(1, 1, 1, 7, 7)
    top_left[..., :2, :2] = 1.0
    bottom_right[..., -2:, -2:] = 1.0
    pooled = [GlobalPoolReadout(1)(z) for z in (top_left, bottom_right)]
    grids = [GridPoolReadout(1, 3)(z) for z in (top_left, bottom_right)]
    torch.testing.assert_close(pooled[0], pooled[1])
    assert grids[0][0, 0] > 0 and grids[0][0, 8] == 0
    assert grids[1][0, 8] > 0 and grids[1][0, 0] == 0


def test_grid_pool_refuses_a_map_smaller_than_its_grid() -> None:
    with pytest.raises(
        ValueError, match=r"3x3 grid readout needs maps of at least that size, got 1x1"
    ):
        GridPoolReadout(8, 3)(torch.randn(2, 8, 1, 1, 1))
    with pytest.raises(ValueError, match="grid must be >= 1, got 0"):
        GridPoolReadout(8, 0)


def test_readout_rejects_a_flat_vector() -> None:
    with pytest.raises(ValueError, match=r"structured map \(B, 8, G, H, W\)"):
        GlobalPoolReadout(8)(torch.randn(2, 8))
