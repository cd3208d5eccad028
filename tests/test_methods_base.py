"""SSLMethod, the shared base: online probe, optimizer groups, schedule, logged lr, errors.

Runs use ``tiny_cnn`` and ``SyntheticSSLData`` (``tests/methods_testing.py``): 8-sample
batches of 8x8 images, no shuffling, so every number below is reproducible.
"""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssl_geom.methods import SimCLR, SSLMethod, SSLStepOutput
from ssl_geom.methods.optim import build_schedule
from tests.conftest import quiet_trainer
from tests.methods_testing import SyntheticSSLData

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


class ProbeOnly(SSLMethod):
    """An SSL loss that is exactly 0 but keeps the graph, so only the probe can move weights."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.projector = self.make_projector(self.backbone.embed_dim)

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        z_map, z = self.project(views[0])
        return SSLStepOutput(0.0 * z.sum(), z_map)


class RecordLR(L.Callback):
    """The optimizer's lr when each step runs and the ``lr`` the module logged for it."""

    def __init__(self) -> None:
        self.used: list[float] = []
        self.logged: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.used.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.logged.append(float(trainer.callback_metrics["lr"]))


def test_probe_is_detached_it_trains_but_sends_no_gradient_into_the_backbone() -> None:
    torch.manual_seed(0)
    model = ProbeOnly(num_classes=4, optimizer="sgd", weight_decay=0.0, lr=0.5, **TINY)
    backbone_before = {k: v.clone() for k, v in model.backbone.named_parameters()}
    probe_before = model.probe.classifier.linear.weight.clone()
    grads: list[torch.Tensor | None] = []

    class Grads(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            grads.extend(p.grad for p in pl_module.backbone.parameters())

    quiet_trainer(max_steps=3, callbacks=[Grads()]).fit(model, SyntheticSSLData())
    # The SSL loss is 0 * z, so any backbone gradient could only come from the probe.
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)
    for name, p in model.backbone.named_parameters():
        assert torch.equal(p, backbone_before[name]), name
    assert not torch.equal(model.probe.classifier.linear.weight, probe_before)


def test_bias_and_norm_parameters_get_no_weight_decay_and_probe_has_its_own_group() -> None:
    model = SimCLR(num_classes=4, weight_decay=1e-4, probe_lr=0.05, lr=0.2, **TINY)
    quiet_trainer(max_steps=1).fit(model, SyntheticSSLData())
    groups = {g["name"]: g for g in trainer_optimizer(model).param_groups}
    by_id = {id(p): n for n, p in model.named_parameters()}
    names = {k: sorted(by_id[id(p)] for p in g["params"]) for k, g in groups.items()}
    # Expected by name: weights of conv/linear layers decay; biases and BatchNorm don't.
    bn = {n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    ssl = [n for n, _ in model.named_parameters() if not n.startswith("probe.")]
    no_decay = sorted(n for n in ssl if n.endswith(".bias") or n.rsplit(".", 1)[0] in bn)
    assert names["no_decay"] == no_decay
    assert names["decay"] == sorted(set(ssl) - set(no_decay))
    # tiny_cnn's readout is the parameter-free global pool, so only the linear layer trains.
    assert names["probe"] == ["probe.classifier.linear.bias", "probe.classifier.linear.weight"]
    assert (groups["decay"]["weight_decay"], groups["no_decay"]["weight_decay"]) == (1e-4, 0.0)
    assert groups["probe"]["weight_decay"] == 0.0


def trainer_optimizer(model: L.LightningModule) -> torch.optim.Optimizer:
    return model.trainer.optimizers[0]


def test_warmup_cosine_per_step_values_by_hand_and_logged_lr_is_the_one_used() -> None:
    # 6 steps, 2 of warm-up, lr 0.4: warm-up lr*(s+1)/2 -> 0.2, 0.4; then a half cosine over
    # the remaining 4 steps, lr*(1+cos(pi*k/3))/2 for k = 0..3 -> 0.4, 0.3, 0.1, 0.0.
    expected = [0.2, 0.4, 0.4, 0.3, 0.1, 0.0]
    record = RecordLR()
    model = SimCLR(lr=0.4, warmup_steps=2, optimizer="sgd", **TINY)
    quiet_trainer(max_steps=6, callbacks=[record]).fit(model, SyntheticSSLData(n=48))
    assert record.used == pytest.approx(expected, abs=1e-12)
    assert record.logged == pytest.approx(expected, abs=1e-6)


def test_warmup_epochs_are_converted_to_steps_per_epoch() -> None:
    # 4 batches per epoch, warmup_epochs=0.5 -> 2 warm-up steps: lr/2 at step 0, lr at step 1.
    record = RecordLR()
    model = SimCLR(lr=0.4, warmup_epochs=0.5, optimizer="sgd", lr_schedule="constant", **TINY)
    quiet_trainer(max_steps=3, callbacks=[record]).fit(model, SyntheticSSLData(n=32))
    assert record.used == pytest.approx([0.2, 0.4, 0.4])


def test_lr_scaling_is_explicit_and_the_scaled_value_is_logged() -> None:
    # linear rule: 0.4 * (global batch 8 / reference 256) = 0.0125, constant schedule.
    record = RecordLR()
    model = SimCLR(
        lr=0.4,
        lr_scaling="linear",
        lr_schedule="constant",
        warmup_epochs=0,
        optimizer="sgd",
        **TINY,
    )
    quiet_trainer(max_steps=2, callbacks=[record]).fit(model, SyntheticSSLData())
    assert record.logged == pytest.approx([0.0125, 0.0125])


def test_schedule_builder_matches_the_same_hand_values_without_a_trainer() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = build_schedule(opt, "warmup_cosine", total_steps=6, warmup_steps=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs == pytest.approx([0.2, 0.4, 0.4, 0.4 * (1 + math.cos(math.pi / 3)) / 2, 0.1, 0.0])


def test_probe_accuracy_is_logged_on_validation() -> None:
    model = SimCLR(num_classes=4, **TINY)
    t = quiet_trainer(max_epochs=1, limit_val_batches=2, num_sanity_val_steps=0)
    t.fit(model, SyntheticSSLData(n=16))
    assert 0.0 <= float(t.callback_metrics["probe/acc"]) <= 1.0
    assert {"train/loss", "train/info_nce", "lr", "probe/train_loss"} <= set(t.callback_metrics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "resnet9000"}, "unknown backbone 'resnet9000'; registered backbones: "),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; valid choices: lars, sgd"),
        ({"optimizer": "lars", "weight_decay": 0.0}, "Use optimizer='sgd' or a positive"),
        ({"lr": -1.0}, "lr must be >= 0, got -1.0"),
        ({"num_classes": 1}, "num_classes must be >= 2"),
        ({"in_channels": 1, "backbone_kwargs": {"in_channels": 3}}, "contradicts in_channels=1"),
    ],
)
def test_bad_arguments_fail_at_construction_with_the_value_named(kwargs, message) -> None:
    args = {**TINY, "in_channels": None, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SimCLR(**args)


def test_probe_ignores_unlabelled_samples_without_boolean_indexing() -> None:
    """The weighted probe loss equals the old boolean-indexed one, computed independently.

    In eval mode the probe's BatchNorm uses its running statistics, so each sample's
    logits do not depend on the others and ``cross_entropy(probe(z[keep]), y[keep])`` (the
    old computation) is the reference. Accuracy: 2 of the 3 labelled samples by hand.
    """
    torch.manual_seed(0)
    model = SimCLR(num_classes=4, **TINY).eval()
    z = torch.randn(5, 8, 1, 3, 3)
    y = torch.tensor([2, -1, 0, -1, 3])
    keep = y >= 0
    with torch.no_grad():
        expected = F.cross_entropy(model.probe(z[keep]), y[keep])
        logits = model.probe(z)
    got = model.probe_loss(z, y, model.probe_train_acc)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    # The unlabelled samples' logits get no gradient: they carry zero weight.
    z_grad = z.clone().requires_grad_(True)
    model.probe_loss(z_grad, y, model.probe_train_acc).backward()
    assert torch.count_nonzero(z_grad.grad[~keep]) == 0
    assert torch.count_nonzero(z_grad.grad[keep]) > 0
    # Accuracy counts labelled samples only: make samples 0 and 2 right, 4 wrong.
    model.probe_train_acc.reset()
    wrong = (logits[4].argmax() + 1) % 4
    y_acc = torch.stack([logits[0].argmax(), y[1], logits[2].argmax(), y[3], wrong])
    model.probe_loss(z, y_acc, model.probe_train_acc)
    assert model.probe_train_acc.compute().item() == pytest.approx(2 / 3)
    # A batch with no labelled sample gives 0, not NaN.
    assert model.probe_loss(z, torch.full((5,), -1), model.probe_train_acc).item() == 0.0


class _FakeTrainer:
    """Just what the batch-size arithmetic reads from a trainer: world size and accumulation."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.accumulate_grad_batches = 1


def test_batch_size_is_global_and_split_over_processes() -> None:
    """batch_size is the paper's global batch: 2 processes take 8 / 2 = 4 samples each, and the
    linear lr rule scales by 8 (0.4 * 8 / 256 = 0.0125), not by 8 x world_size."""
    model = SimCLR(lr=0.4, lr_scaling="linear", batch_size=8, **TINY)
    model._trainer = _FakeTrainer(world_size=2)
    assert model.global_batch_size() == 8
    assert model.per_process_batch_size() == 4
    assert model.effective_lr() == pytest.approx(0.0125)
    model._trainer = _FakeTrainer(world_size=3)
    with pytest.raises(ValueError, match=r"batch_size=8 is the global batch .* 3 processes"):
        model.per_process_batch_size()
