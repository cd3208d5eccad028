"""One training step of every method at a given world size, for the world-size invariance tests.

Kept outside the test modules so the processes that ``tests/ddp_utils.run_distributed`` spawns
can import the cases by name. A *case* is a method with tiny modules and a fixed global batch;
:func:`one_step` trains it one step (float64, plain SGD) at ``world_size`` processes, each
loading its contiguous ``1 / world_size`` of the global batch, and returns the logged loss
terms and the weights after the step.

What makes the step comparable across world sizes:

- **BatchNorm.** torch's ``SyncBatchNorm`` runs on GPUs only, so on CPU every BatchNorm is
  replaced by :class:`GlooSyncBatchNorm`, which computes the statistics of the whole batch over
  the gloo group (with their gradient); MoCo's ``SplitBatchNorm`` is left alone (shuffled
  BatchNorm is defined per world size).
- **Random draws.** The fiber positions (H-SSL, F-SSL), A-SSL's base and CARE's pairs are
  fixed functions of the global row (:class:`FixedDraws`) or of the chunk (:class:`ChunkPairs`),
  so every world size sees the same ones; that the real draws differ across ranks is tested
  apart (``tests/test_rank_draws.py`` and the invariance test module).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from ssl_geom.augment import SameParams
from ssl_geom.losses.fibers import FiberPairs
from ssl_geom.methods import (
    ASSL,
    CARE,
    FSSL,
    HSSL,
    Frozen,
    MoCoV2,
    SimCLR,
    SSLMethod,
    Supervised,
    moco,
)
from ssl_geom.methods.split_batchnorm import SplitBatchNorm
from tests.conftest import quiet_trainer
from tests.methods_testing import TinyCNN

assert TinyCNN  # importing it registers the backbone 'tiny_cnn'

GLOBAL_BATCH = 16


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes of ``group``; the backward sums the gradients the same way."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        total = tensor.clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        total = grad.clone()
        dist.all_reduce(total, group=ctx.group)
        return total, None


class GlooSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the whole batch over all processes.

    The per-channel sum, sum of squares and count are summed over the processes, and so are
    their gradients in the backward pass, so each process's gradient is that of the
    whole-batch statistics (as ``SyncBatchNorm``). The sums go through a process group of
    their own, apart from the gradient all-reduces DDP starts on the default group during
    the same backward pass. The running statistics are updated as ``F.batch_norm`` does.
    """

    group: Any = None

    @classmethod
    def from_batchnorm(cls, bn: _BatchNorm, group: Any) -> GlooSyncBatchNorm:
        synced = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats).to(
            next(iter(bn.state_dict().values())).dtype
        )
        synced.load_state_dict(bn.state_dict())
        synced.train(bn.training)
        if bn.affine:  # a frozen BatchNorm (MoCo's key encoder, Frozen's backbone) stays frozen
            synced.weight.requires_grad_(bn.weight.requires_grad)
            synced.bias.requires_grad_(bn.bias.requires_grad)
        synced.group = group
        return synced

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected (N, C, ...) input, got shape {tuple(input.shape)}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or rank_and_world()[1] == 1:
            return super().forward(input)
        c = input.shape[1]
        dims = [0, *range(2, input.dim())]
        count = torch.full((1,), input.numel() / c, dtype=input.dtype)
        local = torch.cat([input.sum(dims), (input * input).sum(dims), count])
        stats = _AllReduceSum.apply(local, self.group)
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c : 2 * c] / n - mean * mean
        shape = (1, c) + (1,) * (input.dim() - 2)
        out = (input - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None and self.momentum is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        return out


def sync_batch_norms(module: nn.Module, group: Any = None) -> nn.Module:
    """Every BatchNorm of ``module`` (not MoCo's SplitBatchNorm) as a :class:`GlooSyncBatchNorm`.

    Call it on every process (it creates their common process group when ``group`` is None).
    """
    group = dist.new_group(backend="gloo") if group is None else group
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(
            child, (SplitBatchNorm, GlooSyncBatchNorm)
        ):
            setattr(module, name, GlooSyncBatchNorm.from_batchnorm(child, group))
        else:
            sync_batch_norms(child, group)
    return module


class FixedDraws:
    """A method's bundles whose pairs / base are drawn once for the *global* batch (seed 0).

    Each process takes its own rows (contiguous, as :class:`GlobalBatchData` loads them), so
    a sample gets the same draw at every world size. Everything else is the real bundles'.
    """

    def __init__(self, bundles: Any, global_batch: int) -> None:
        self.bundles = bundles
        self.global_batch = global_batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bundles, name)

    def _rows(self, prepared: torch.Tensor) -> slice:
        rank, _ = rank_and_world()
        n = prepared.shape[0]
        return slice(rank * n, (rank + 1) * n)

    def _whole(self, prepared: torch.Tensor) -> torch.Tensor:
        return prepared.new_zeros((self.global_batch, *prepared.shape[1:]))

    def pairs(self, prepared: torch.Tensor, generator: Any = None) -> FiberPairs:
        whole = self.bundles.pairs(self._whole(prepared), torch.Generator().manual_seed(0))
        rows = self._rows(prepared)
        return FiberPairs(
            whole.base[rows],
            whole.shift1[rows],
            whole.shift2[rows],
            whole.start1[rows],
            whole.start2[rows],
        )

    def base(self, prepared: torch.Tensor, generator: Any = None) -> torch.Tensor:
        whole = self.bundles.base(self._whole(prepared), torch.Generator().manual_seed(0))
        return whole[self._rows(prepared)]


class ChunkPairs(SameParams):
    """CARE's pair as a fixed function of each chunk's content, recording the chunk sizes.

    View 1 flips and scales the chunk by ``1 + mean``, view 2 rotates it and shifts it by its
    std: both depend on which images form the chunk, so a chunk of other images (or of
    another size) gives another ``L_equi``.
    """

    def __init__(self) -> None:
        self.chunk_sizes: list[int] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.flip(-1) * (1 + batch.mean())

    def pair(
        self, batch: torch.Tensor, n_groups: int = 1, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        chunks = batch.split(len(batch) // n_groups)
        self.chunk_sizes += [len(c) for c in chunks]
        second = [torch.rot90(c, 1, (-2, -1)) + 0.1 * c.std() for c in chunks]
        return torch.cat([self(c) for c in chunks]), torch.cat(second)


@dataclass(frozen=True)
class Case:
    """A method (built from a fixed seed) and the shape of its global batch."""

    build: Callable[[], SSLMethod]
    n_views: int  # augmented views per sample
    include_original: bool = False
    channels: int = 3
    size: int = 8
    global_batch: int = GLOBAL_BATCH
    train_views: str = "simclr"


SGD = {"optimizer": "sgd", "lr": 0.5, "momentum": 0.0, "weight_decay": 1e-4}
COMMON = {**SGD, "lr_schedule": "constant", "projector_hidden_dims": [16], "projector_out_dim": 8}
TINY = {"backbone": "tiny_cnn", "in_channels": 3, **COMMON}
MNIST = {"in_channels": 1, "backbone_kwargs": {"channels": [2, 4, 4]}, **COMMON}
MOCO = {"queue_size": 64, "shuffle_bn": False, "temperature": 0.2}


def _fibers(model: HSSL | FSSL | ASSL, global_batch: int = GLOBAL_BATCH) -> SSLMethod:
    model.bundles = FixedDraws(model.bundles, global_batch)  # type: ignore[assignment]
    return model


CASES: dict[str, Case] = {
    "simclr": Case(lambda: SimCLR(**TINY), 2),
    "mocov2": Case(lambda: MoCoV2(**MOCO, **TINY), 2),
    "care_simclr": Case(
        lambda: CARE(
            n_split=4, equivariance_weight=0.5, same_params_transform=ChunkPairs(), **TINY
        ),
        2,
        include_original=True,
    ),
    "care_moco": Case(
        lambda: CARE(
            base="moco",
            n_split=4,
            equivariance_weight=0.5,
            same_params_transform=ChunkPairs(),
            **MOCO,
            **TINY,
        ),
        2,
        include_original=True,
    ),
    "hssl_translation": Case(
        lambda: _fibers(HSSL(transformation="translation", gather_distributed=True, **TINY)), 0
    ),
    "hssl_rotation": Case(
        lambda: _fibers(
            HSSL(
                transformation="rotation",
                backbone="hssl_mnist_rotation",
                gather_distributed=True,
                **MNIST,
            )
        ),
        0,
        channels=1,
        size=28,
    ),
    "hssl_scale": Case(
        lambda: _fibers(
            HSSL(
                transformation="scale",
                backbone="hssl_mnist_scale",
                gather_distributed=True,
                **MNIST,
            )
        ),
        0,
        channels=1,
        size=28,
    ),
    "fssl": Case(lambda: _fibers(FSSL(patch_size=2, gather_distributed=True, **TINY)), 0),
    "assl": Case(
        lambda: _fibers(ASSL(transformation="translation", gather_distributed=True, **TINY)),
        2,
        include_original=True,
        train_views="translation",
    ),
    "supervised": Case(lambda: Supervised(num_classes=4, probe_lr=0.5, **TINY), 0),
    "frozen": Case(lambda: Frozen(num_classes=4, probe_lr=0.5, **TINY), 0),
    # MoCo with its shuffled BatchNorm, defined per world size (the invariance tests pin it).
    "mocov2_shuffle_bn": Case(
        lambda: MoCoV2(**{**MOCO, "shuffle_bn": True, "bn_splits": 2}, **TINY), 2
    ),
    # The CARE check: global batch 32, n_split 4, chunks of 8 at every world size.
    "care_b32": Case(
        lambda: CARE(
            n_split=4, equivariance_weight=0.5, same_params_transform=ChunkPairs(), **TINY
        ),
        2,
        include_original=True,
        global_batch=32,
    ),
}


def global_batch(case: Case) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The case's whole batch: ``n_views`` noisy copies of fixed images (+ the images), labels."""
    g = torch.Generator().manual_seed(0)
    shape = (case.global_batch, case.channels, case.size, case.size)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    views = [
        x + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(case.n_views)
    ]
    if case.include_original or case.n_views == 0:
        views.append(x)
    y = torch.arange(case.global_batch) % 4
    return views, y


class GlobalBatchData(L.LightningDataModule):
    """One batch: process ``r`` of ``W`` loads rows ``[r B/W, (r + 1) B/W)`` of the global batch."""

    num_classes = 4

    def __init__(self, case: Case) -> None:
        super().__init__()
        self.batch_size = case.global_batch
        self.include_original = case.include_original
        self.train_views = case.train_views
        self.views, self.y = global_batch(case)

    def train_dataloader(self) -> DataLoader:
        rank, world = rank_and_world()
        n = self.batch_size // world
        rows = range(rank * n, (rank + 1) * n)
        samples = [([v[i] for v in self.views], self.y[i]) for i in rows]
        return DataLoader(samples, batch_size=n)


class FirstStep(L.Callback):
    """The step's logged loss terms (this process's values, not synchronised)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.terms = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith("train/") or name == "probe/train_loss"
        }


def build(name: str) -> SSLMethod:
    torch.manual_seed(0)
    return CASES[name].build()


def one_step(name: str, world_size: int) -> dict[str, Any]:
    """Train case ``name`` one step at ``world_size``; its logged terms and weights after it."""
    model = build(name)
    if world_size > 1:
        sync_batch_norms(model)
    record = FirstStep()
    options: dict[str, Any] = {"devices": world_size, "strategy": "ddp"} if world_size > 1 else {}
    trainer = quiet_trainer(
        max_steps=1,
        precision="64-true",
        use_distributed_sampler=False,
        callbacks=[record],
        **options,
    )
    trainer.fit(model, GlobalBatchData(CASES[name]))
    pairs = getattr(model, "_same_params", None)
    return {
        "terms": record.terms,
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "chunk_sizes": pairs.chunk_sizes if isinstance(pairs, ChunkPairs) else [],
    }


def join_process_group(rank: int, world_size: int) -> None:
    """Tell Lightning the gloo group ``run_distributed`` started is its DDP processes."""
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0", WORLD_SIZE=str(world_size))


def steps_entry(rank: int, world_size: int, names: list[str]) -> dict[str, dict[str, Any]]:
    """``run_distributed`` entry: :func:`one_step` of every case in ``names`` on this rank."""
    join_process_group(rank, world_size)
    return {name: one_step(name, world_size) for name in names}


def shuffled_step_entry(rank: int, world_size: int) -> dict[str, Any]:
    """``run_distributed`` entry: one step of ``mocov2_shuffle_bn`` and its key permutation.

    The permutation lightly's ``batch_shuffle_distributed`` drew (on rank 0, broadcast) is
    recorded, so the test can recompute the keys from it.
    """
    join_process_group(rank, world_size)
    drawn: list[torch.Tensor] = []
    real = moco.batch_shuffle_distributed

    def recording(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shuffled, unshuffle = real(batch)
        drawn.append(torch.argsort(unshuffle))
        return shuffled, unshuffle

    moco.batch_shuffle_distributed = recording
    try:
        result = one_step("mocov2_shuffle_bn", world_size)
    finally:
        moco.batch_shuffle_distributed = real
    return {**result, "permutation": drawn[0]}


def draws_entry(rank: int, world_size: int, cifar_root: str) -> dict[str, list[int | None]]:
    """``run_distributed`` entry: the seeds each random stream used in one real DDP step.

    H-SSL's fiber draw (``draw_generator``), CARE's pair draw (the ``seed`` its pair transform
    got) and the device views (the generator the DataModule's augmentation drew from), with
    ``seed_everything(3)`` and the data's seed 5; ``None`` = the stream's own source.
    """
    from ssl_geom.data import CIFAR10DataModule

    join_process_group(rank, world_size)
    L.seed_everything(3)
    seen: dict[str, list[int | None]] = {"fibers": [], "pairs": [], "views": []}

    def initial(generator: torch.Generator | None) -> int | None:
        return None if generator is None else generator.initial_seed()

    hssl = HSSL(transformation="translation", gather_distributed=True, **TINY)
    real_generator = hssl.draw_generator
    hssl.draw_generator = lambda device: _record(seen["fibers"], initial, real_generator(device))
    fit = quiet_trainer(max_steps=1, devices=world_size, strategy="ddp", precision="64-true")
    fit.fit(hssl, GlobalBatchData(CASES["hssl_translation"]))

    data = CIFAR10DataModule(
        root=cifar_root,
        batch_size=8,
        num_workers=0,
        augment_on="device",
        include_original=True,
        seed=5,
    )
    care = CARE(n_split=2, same_params_transform=data.augmentation, **TINY)
    pairs = care._same_params
    assert pairs is not None
    real_pair = pairs.pair

    def pair(batch: torch.Tensor, n_groups: int = 1, seed: int | None = None) -> Any:
        seen["pairs"].append(seed)
        return real_pair(batch, n_groups, seed)

    pairs.pair = pair  # type: ignore[method-assign]
    draws = data.augmentation._view_draws
    real_views = draws.next_generator
    draws.next_generator = lambda r, device: _record(seen["views"], initial, real_views(r, device))
    fit = quiet_trainer(max_steps=1, devices=world_size, strategy="ddp")
    fit.fit(care, data)
    return seen


def _record(into: list, key: Callable[[Any], Any], value: Any) -> Any:
    into.append(key(value))
    return value
