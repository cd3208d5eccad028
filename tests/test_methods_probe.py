"""The online probe = the backbone's classifier readout (H-SSL App. A) + ``LinearProbe``.

Issue 14.1: the probe reads the detached structured map through ``backbone.build_readout()``; the
readout's parameters train with the probe (its parameter group), never with the SSL loss.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_geom.backbones.readout import ConvGroupReadout, ResNetGroupReadout
from ssl_geom.methods import HSSL
from ssl_geom.methods.probe import LinearProbe

HEAD = {"projector_hidden_dims": [8], "projector_out_dim": 4, "num_classes": 10}
SMALL_RESNET = {"widths": [4, 8], "strides": [1, 2], "blocks_per_stage": 1, "stem_channels": [3, 4]}


def layer_types(module: nn.Module) -> list[type]:
    return [type(m) for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize(
    ("backbone", "kwargs", "in_channels", "size", "readout_type", "readout_layers"),
    [
        (
            "hssl_resnet20_rotation",
            SMALL_RESNET,
            3,
            16,
            ResNetGroupReadout,
            # App. A CIFAR-10: max over G, BatchNorm, ReLU, mean over space, BatchNorm.
            [nn.BatchNorm2d, nn.ReLU, nn.BatchNorm1d],
        ),
        ("hssl_mnist_rotation", {"channels": [2, 4, 4]}, 1, 28, ConvGroupReadout, None),
    ],
)
def test_probe_is_the_readout_then_the_linear_probe_on_the_detached_map(
    backbone: str,
    kwargs: dict,
    in_channels: int,
    size: int,
    readout_type: type,
    readout_layers: list | None,
) -> None:
    torch.manual_seed(0)
    model = HSSL(backbone=backbone, backbone_kwargs=kwargs, in_channels=in_channels, **HEAD)
    readout, classifier = model.probe.readout, model.probe.classifier
    assert isinstance(readout, readout_type)
    if readout_layers is not None:
        assert layer_types(readout) == readout_layers
    assert isinstance(classifier, LinearProbe)
    assert layer_types(classifier) == [nn.BatchNorm1d, nn.Linear]
    assert classifier.linear.in_features == readout.out_features
    assert classifier.linear.out_features == 10
    # The probe's input is the structured map (B, C, G, H, W) of the one view, and its
    # output the class logits.
    x = torch.randn(4, in_channels, size, size)
    out = model.ssl_step([x], 0)
    assert out.probe_features.shape == model.backbone(x).shape
    assert out.probe_features.ndim == 5
    assert model.probe(out.probe_features.detach()).shape == (4, 10)
    # Readout parameters belong to the probe, not to the SSL modules.
    ssl_params = {id(p) for m in model.ssl_modules() for p in m.parameters()}
    probe_params = [p for p in model.probe.parameters()]
    assert any(True for _ in readout.parameters())
    assert not any(id(p) in ssl_params for p in probe_params)
