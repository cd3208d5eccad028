"""Side-effect control and sharding for measurements taken in the middle of training.

A geometry measurement must leave training exactly as it found it: every submodule's
``.training`` flag, the grad mode, and the random streams the data pipeline and dropout
draw from (Lightning's ``isolate_rng`` saves and restores the torch, CUDA, numpy and
``random`` states). It must also give the same number on 1 or N processes: rows are split
into contiguous shards, each process embeds its own, and :func:`embed_sharded` — the one
place the callbacks gather — puts the rows back in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor


@contextmanager
def measurement_mode(pl_module: LightningModule) -> Iterator[None]:
    """Eval mode, ``torch.no_grad`` and isolated RNG inside; ``.training`` flags restored after."""
    modes = [(module, module.training) for module in pl_module.modules()]
    try:
        with torch.no_grad(), isolate_rng():
            pl_module.eval()
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch (all devices), ``random`` and numpy inside; restore the previous states after.

    Augmentations drawn here are then the same at every evaluation and on every process.
    """
    with isolate_rng():
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        yield


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank's contiguous share of ``n`` rows (sizes differ by at most 1)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def _gather_rows(trainer: Trainer, local: Tensor, n: int) -> Tensor:
    # all_gather needs equal shapes, so shards are padded to the largest and trimmed.
    world_size = trainer.world_size
    sizes = [hi - lo for lo, hi in (shard_bounds(n, world_size, r) for r in range(world_size))]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: local.shape[0]] = local
    gathered = trainer.strategy.all_gather(padded)
    return torch.cat([gathered[r, : sizes[r]] for r in range(world_size)])


def embed_sharded(
    trainer: Trainer, n: int, embed_rows: Callable[[int, int], tuple[Tensor, ...]]
) -> tuple[Tensor, ...]:
    """All ``n`` rows of ``embed_rows(lo, hi)``'s outputs, each process computing its shard.

    Single process: ``embed_rows(0, n)``. A process whose shard is empty (more processes than
    rows) embeds row 0 and drops it, because the gather needs the outputs' widths and dtypes.
    """
    if trainer.world_size == 1:
        return embed_rows(0, n)
    lo, hi = shard_bounds(n, trainer.world_size, trainer.global_rank)
    local = embed_rows(lo, hi) if hi > lo else tuple(t[:0] for t in embed_rows(0, 1))
    return tuple(_gather_rows(trainer, part, n) for part in local)
