"""SimCLR: its loss is NT-Xent of the two views' projections; bf16 mixed precision on CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssl_geom.methods import SimCLR
from tests.conftest import quiet_trainer
from tests.methods_testing import SyntheticSSLData

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


def nt_xent_by_hand(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss written out: 2B anchors, positive = the other view, self excluded."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def test_simclr_loss_is_nt_xent_of_the_two_views_and_probe_reads_view_one() -> None:
    torch.manual_seed(0)
    model = SimCLR(temperature=0.3, **TINY).eval()
    views, _ = next(iter(SyntheticSSLData().train_dataloader()))
    out = model.ssl_step(views, 0)
    with torch.no_grad():
        z1 = model.projector(model.backbone.embed(views[0]))
        z2 = model.projector(model.backbone.embed(views[1]))
        map1 = model.backbone(views[0])
    assert out.loss.item() == pytest.approx(nt_xent_by_hand(z1, z2, 0.3).item(), rel=1e-5)
    assert torch.allclose(out.probe_features, map1)  # the probe reads view 1's map
    assert out.logs["info_nce"] == out.loss.detach()


def test_simclr_refuses_one_view_and_a_nonpositive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        SimCLR(temperature=0, **TINY)
    with pytest.raises(ValueError, match="SimCLR needs two augmented views per sample, got 1"):
        SimCLR(**TINY).ssl_step([torch.zeros(4, 3, 8, 8)], 0)


def test_bf16_mixed_precision_trains_on_cpu() -> None:
    torch.manual_seed(0)
    model = SimCLR(num_classes=4, optimizer="adam", lr=1e-2, **TINY)
    before = [p.clone() for p in model.parameters()]
    dtypes: list[torch.dtype] = []
    model.projector.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    trainer = quiet_trainer(max_steps=2, precision="bf16-mixed")
    trainer.fit(model, SyntheticSSLData())
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the forward really ran in bf16
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
