"""MoCo-v2: queue writes and wrap-around, the contrastive logits, the EMA update.

Resuming with the queue restored is tested through the CLI in ``test_cli.py``.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssl_geom.methods import MoCoV2, MomentumQueue
from tests.methods_testing import SyntheticSSLData

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


def small_queue(size: int = 5, dim: int = 2, momentum: float = 0.9) -> MomentumQueue:
    torch.manual_seed(0)
    return MomentumQueue(nn.Linear(2, 2), nn.Linear(2, dim), dim, size, 0.5, momentum)


def test_enqueue_writes_at_the_pointer_and_wraps_around() -> None:
    q = small_queue(size=5)
    first = torch.arange(6.0).view(3, 2)
    q.enqueue(first)
    assert torch.equal(q.queue[:3], first) and int(q.queue_ptr) == 3
    second = 10 + torch.arange(6.0).view(3, 2)
    q.enqueue(second)  # rows 3, 4, then wraps to row 0
    assert torch.equal(q.queue[3:], second[:2]) and torch.equal(q.queue[0], second[2])
    assert torch.equal(q.queue[1:3], first[1:]) and int(q.queue_ptr) == 1


def test_contrast_is_cross_entropy_with_the_positive_first_and_the_queue_as_negatives() -> None:
    q = small_queue(size=3)
    queue = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    q.queue.copy_(queue)
    query, key = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.6, 0.8]])
    # query normalised = (0.6, 0.8): positive 1.0, negatives 0.6, 0.8, -0.6; temperature 0.5.
    logits = torch.tensor([[1.0, 0.6, 0.8, -0.6]]) / 0.5
    expected = -torch.log_softmax(logits, dim=1)[0, 0]
    assert q.contrast(query, key).item() == pytest.approx(expected.item(), rel=1e-6)


def test_update_is_an_ema_of_the_online_weights() -> None:
    q = small_queue(momentum=0.9)
    online = nn.Linear(2, 2)
    old = q.backbone.weight.clone()
    q.update(online, nn.Linear(2, 2))
    assert torch.allclose(q.backbone.weight, 0.9 * old + 0.1 * online.weight)
    assert not q.backbone.weight.requires_grad


@pytest.mark.parametrize(("symmetric", "keys_per_step"), [(True, 16), (False, 8)])
def test_a_training_step_enqueues_the_keys_of_the_batch(symmetric, keys_per_step) -> None:
    model = MoCoV2(queue_size=64, symmetric=symmetric, projector_out_dim=8, **TINY)
    initial = model.momentum_encoder.queue.clone()
    trainer = L.Trainer(
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, SyntheticSSLData())
    written = 3 * keys_per_step
    assert int(model.momentum_encoder.queue_ptr) == written
    queue = model.momentum_encoder.queue
    assert not torch.equal(queue[:written], initial[:written])
    assert torch.equal(queue[written:], initial[written:])
    assert torch.allclose(queue[:written].norm(dim=1), torch.ones(written))
    assert "momentum_encoder.queue" in model.state_dict()  # saved in checkpoints


def test_moco_checks_its_arguments_at_construction() -> None:
    with pytest.raises(ValueError, match="queue_size must be >= 1, got 0"):
        MoCoV2(queue_size=0, **TINY)
    with pytest.raises(ValueError, match=r"ema_momentum must be in \[0, 1\], got 1.5"):
        MoCoV2(ema_momentum=1.5, **TINY)
