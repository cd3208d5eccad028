"""MoCo-v2: the queue (lightly's memory bank), the loss direction, the EMA update, and
shuffled BatchNorm on one device (split key BatchNorm over a permuted batch).

Resuming with the queue restored is tested through the CLI in ``test_cli.py``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins import TorchSyncBatchNorm
from torch import nn

from ssl_geom.methods import CARE, MoCoV2, MomentumQueue
from tests.conftest import quiet_trainer
from tests.methods_testing import SyntheticSSLData, TinyCNN

TINY = {"backbone": "tiny_cnn", "in_channels": 3, "projector_hidden_dims": [16]}


def small_queue(size: int = 5, dim: int = 2, momentum: float = 0.9) -> MomentumQueue:
    torch.manual_seed(0)
    return MomentumQueue(nn.Linear(2, 2), nn.Linear(2, dim), dim, size, 0.5, momentum)


def tiny_encoder(seed: int = 0, **kwargs) -> MomentumQueue:
    """Key encoder of a BatchNorm CNN + a projector with BatchNorm1d, 4-d keys, queue of 64."""
    torch.manual_seed(seed)
    projector = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    return MomentumQueue(TinyCNN(), projector, 4, 64, 0.5, 0.9, **kwargs)


def test_enqueue_writes_at_the_pointer_and_restarts_at_row_0() -> None:
    q = small_queue(size=5)
    first = torch.arange(6.0).view(3, 2)
    _, before = q.memory_bank(first, update=True)
    assert not torch.equal(before[:3], first)  # the queue is returned before the write
    assert torch.equal(q.queue[:3], first) and q.queue_ptr == 3
    second = 10 + torch.arange(6.0).view(3, 2)
    q.memory_bank(second, update=True)  # rows 3, 4, then lightly drops the overflow
    assert torch.equal(q.queue[3:], second[:2]) and torch.equal(q.queue[:3], first)
    assert q.queue_ptr == 0


def test_contrast_is_cross_entropy_with_the_positive_first_and_the_queue_as_negatives() -> None:
    q = small_queue(size=3)
    queue = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    query, key = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.6, 0.8]])
    # query normalised = (0.6, 0.8): positive 1.0, negatives 0.6, 0.8, -0.6; temperature 0.5.
    logits = torch.tensor([[1.0, 0.6, 0.8, -0.6]]) / 0.5
    expected = -torch.log_softmax(logits, dim=1)[0, 0]
    assert q.contrast(query, key, queue).item() == pytest.approx(expected.item(), rel=1e-6)


def test_update_is_an_ema_of_the_online_weights() -> None:
    q = small_queue(momentum=0.9)
    online = nn.Linear(2, 2)
    old = q.backbone.weight.clone()
    q.update(online, nn.Linear(2, 2))
    assert torch.allclose(q.backbone.weight, 0.9 * old + 0.1 * online.weight)
    assert not q.backbone.weight.requires_grad


@pytest.mark.parametrize("symmetric", [False, True])
def test_loss_direction_and_enqueued_keys(symmetric: bool) -> None:
    # Whole-batch key BatchNorm (shuffle_bn=False) makes keys() deterministic, so the
    # expected loss can be recomputed from the keys and the queue as it was before.
    enc = tiny_encoder(symmetric=symmetric, shuffle_bn=False)
    torch.manual_seed(1)
    x1, x2 = torch.randn(8, 3, 6, 6), torch.randn(8, 3, 6, 6)
    q1, q2 = torch.randn(8, 4), torch.randn(8, 4)
    before = enc.queue.clone()
    loss = enc.loss(q1, q2 if symmetric else None, x1, x2)
    k1, k2 = enc.keys(x1), enc.keys(x2)
    if symmetric:
        expected = 0.5 * (enc.contrast(q1, k2, before) + enc.contrast(q2, k1, before))
        written = torch.cat([k1, k2])
    else:  # official MoCo: q(view 1) . k(view 2), only the view-2 keys enqueued
        expected = enc.contrast(q1, k2, before)
        written = k2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(enc.queue[: len(written)], written, atol=1e-6)
    assert torch.equal(enc.queue[len(written) :], before[len(written) :])


def test_single_device_keys_use_batchnorm_statistics_of_shuffled_sub_batches() -> None:
    split = tiny_encoder(bn_splits=4)
    plain = tiny_encoder(shuffle_bn=False)  # same weights, whole-batch BatchNorm
    torch.manual_seed(1)
    x = 2 * torch.randn(16, 3, 6, 6) + 1
    perm = torch.randperm(16)
    split.key_permutation = lambda n, device: perm
    keys = split.keys(x)
    # Independent computation: the plain encoder run on each sub-batch alone; sub-batch j
    # holds rows j, j+4, j+8, j+12 of the permuted batch.
    expected = torch.empty(16, 4)
    for j in range(4):
        rows = perm[j::4]
        expected[rows] = F.normalize(plain.projector(plain.backbone.embed(x[rows])), dim=1)
    assert torch.allclose(keys, expected, atol=1e-5)
    # Whole-batch statistics (the query's) give other keys, for every sample ...
    assert (keys - plain.keys(x)).norm(dim=1).min() > 1e-3
    # ... and so do the same sub-batches without the shuffle.
    split.key_permutation = lambda n, device: torch.arange(n)
    assert (keys - split.keys(x)).norm(dim=1).min() > 1e-3


def test_the_key_permutation_is_fresh_each_call_and_restored_from_a_state_dict() -> None:
    enc = tiny_encoder()
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in enc.state_dict().items()}
    first = enc.key_permutation(32, torch.device("cpu"))
    second = enc.key_permutation(32, torch.device("cpu"))
    assert not torch.equal(first, second)
    other = tiny_encoder(seed=123)  # a module built under another seed draws other permutations
    assert not torch.equal(other.key_permutation(32, torch.device("cpu")), first)
    other.load_state_dict(state)
    assert torch.equal(other.key_permutation(32, torch.device("cpu")), first)
    assert torch.equal(other.key_permutation(32, torch.device("cpu")), second)


@pytest.mark.parametrize(("symmetric", "keys_per_step"), [(True, 16), (False, 8)])
def test_a_training_step_enqueues_the_keys_of_the_batch(symmetric, keys_per_step) -> None:
    model = MoCoV2(queue_size=64, symmetric=symmetric, projector_out_dim=8, bn_splits=4, **TINY)
    initial = model.momentum_encoder.queue.clone()
    trainer = quiet_trainer(max_steps=3)
    trainer.fit(model, SyntheticSSLData())
    written = 3 * keys_per_step
    assert model.momentum_encoder.queue_ptr == written
    queue = model.momentum_encoder.queue
    assert not torch.equal(queue[:written], initial[:written])
    assert torch.equal(queue[written:], initial[written:])
    assert torch.allclose(queue[:written].norm(dim=1), torch.ones(written))
    state = model.state_dict()  # saved in checkpoints
    assert {"momentum_encoder.memory_bank.bank", "momentum_encoder.memory_bank.bank_ptr"} <= set(
        state
    )


def test_defaults_are_the_official_moco_v2_ones() -> None:
    model = MoCoV2(**TINY)
    enc = model.momentum_encoder
    assert enc.queue.shape == (65536, 128)
    assert (enc.ema_momentum, enc.temperature, enc.symmetric) == (0.999, 0.2, False)


def test_moco_checks_its_arguments_at_construction() -> None:
    with pytest.raises(ValueError, match="queue_size must be >= 1, got 0"):
        MoCoV2(queue_size=0, **TINY)
    with pytest.raises(ValueError, match=r"ema_momentum must be in \[0, 1\], got 1.5"):
        MoCoV2(ema_momentum=1.5, **TINY)
    with pytest.raises(ValueError, match="bn_splits must be >= 1"):
        MoCoV2(bn_splits=0, **TINY)
    with pytest.raises(ValueError, match="bn_splits=8 must divide the batch size 12"):
        MoCoV2(batch_size=12, **TINY)
    with pytest.raises(ValueError, match="bn_splits=8 must divide the batch size 8"):
        MoCoV2(batch_size=8, **TINY)  # sub-batches of one sample
    MoCoV2(batch_size=8, shuffle_bn=False, **TINY)  # whole-batch BatchNorm: no constraint


def test_the_datamodule_batch_size_is_checked_before_the_first_step() -> None:
    trainer = quiet_trainer(max_steps=1)
    with pytest.raises(ValueError, match="bn_splits=8 must divide the batch size 8"):
        trainer.fit(MoCoV2(**TINY), SyntheticSSLData(batch_size=8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_shuffled_split_keys_match_the_sub_batch_computation() -> None:
    # float64, so cuDNN's TF32 convolutions cannot blur the comparison.
    split = tiny_encoder(bn_splits=4).cuda().double()
    plain = tiny_encoder(shuffle_bn=False).cuda().double()
    x = torch.randn(16, 3, 6, 6, device="cuda", dtype=torch.float64)
    perm = split.key_permutation(16, x.device)  # drawn on the GPU
    assert perm.device.type == "cuda" and torch.equal(perm.sort().values.cpu(), torch.arange(16))
    split._shuffle_calls -= 1  # keys() draws the same permutation again
    keys = split.keys(x)
    expected = torch.empty(16, 4, device="cuda", dtype=torch.float64)
    for j in range(4):
        rows = perm[j::4]
        expected[rows] = F.normalize(plain.projector(plain.backbone.embed(x[rows])), dim=1)
    assert torch.allclose(keys, expected.float(), atol=1e-5)


@pytest.mark.parametrize(
    "build",
    [
        lambda shuffle: MoCoV2(shuffle_bn=shuffle, bn_splits=2, **TINY),
        lambda shuffle: CARE(
            base="moco", shuffle_bn=shuffle, bn_splits=2, n_split=2, queue_size=64, **TINY
        ),
    ],
    ids=["mocov2", "care_moco"],
)
def test_sync_batchnorm_over_shuffled_keys_is_refused_at_fit_start(build) -> None:
    """``trainer.sync_batchnorm`` applies Lightning's ``TorchSyncBatchNorm`` to the whole model
    in the strategy's setup, before ``on_fit_start``; converted, the key encoder's shuffled
    BatchNorm would normalise keys over the whole batch. (On CPU DDP itself refuses
    SyncBatchNorm, so the conversion is applied here directly, as the strategy does.)"""
    model = TorchSyncBatchNorm().apply(build(True))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.momentum_encoder.modules())
    with pytest.raises(ValueError, match=r"undoes the shuffled BatchNorm.*shuffle_bn: false"):
        model.on_fit_start()
    TorchSyncBatchNorm().apply(build(False)).on_fit_start()  # synchronised keys, on purpose
    build(True).on_fit_start()  # no sync_batchnorm: MoCo's own shuffled BatchNorm
