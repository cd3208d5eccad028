"""Side-effect control for measurements taken in the middle of training.

A geometry measurement must leave training exactly as it found it: every submodule's
``.training`` flag, the grad mode, and the random streams the data pipeline and dropout
draw from. It must also give the same number on 1 or N processes, so work is split into
contiguous row shards and the rows are gathered back in order.

Also holds a small per-trainer cache, so that callbacks measuring the same thing (e.g.
``WahbaError`` and ``RelativeEquivariance`` on the same K augmentations) embed once.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

T = TypeVar("T")


@contextmanager
def measurement_mode(pl_module: LightningModule) -> Iterator[None]:
    """Eval mode and ``torch.no_grad`` inside; ``.training`` flags and RNG states restored after."""
    modes = [(module, module.training) for module in pl_module.modules()]
    try:
        with torch.no_grad(), preserved_rng(pl_module.device):
            pl_module.eval()
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore the torch (CPU and ``device``), ``random`` and numpy states on exit.

    Measurements draw random numbers (augmentations, and every DataLoader iterator draws a
    base seed from torch), and training's own random streams must continue as if nothing
    had been drawn.
    """
    devices = [device] if device.type == "cuda" else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (CPU and ``device``), ``random`` and numpy inside; restore all three after.

    Augmentations drawn here are then the same at every evaluation and on every process.
    """
    with preserved_rng(device):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        yield


def shard_bounds(n: int, world_size: int, rank: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank's contiguous share of ``n`` rows (sizes differ by at most 1)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def gather_rows(trainer: Trainer, local: Tensor, n: int) -> Tensor:
    """Concatenate every rank's shard (from :func:`shard_bounds`) into the full ``n`` rows.

    ``all_gather`` needs equal shapes, so shards are padded to the largest and trimmed.
    Single-process: returns ``local`` unchanged.
    """
    world_size = trainer.world_size
    if world_size == 1:
        return local
    sizes = [hi - lo for lo, hi in (shard_bounds(n, world_size, r) for r in range(world_size))]
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: local.shape[0]] = local
    gathered = trainer.strategy.all_gather(padded)
    return torch.cat([gathered[r, : sizes[r]] for r in range(world_size)])


_CACHE: weakref.WeakKeyDictionary[Trainer, dict[Hashable, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def cached(trainer: Trainer, key: Hashable, compute: Callable[[], T], per_evaluation: bool) -> T:
    """Return the value stored under ``key`` for this trainer, computing it if absent/stale.

    ``per_evaluation=True`` values (embeddings of the current weights) are valid for one
    (epoch, global step); others (the probe inputs) for the whole run of this trainer.
    """
    store = _CACHE.setdefault(trainer, {})
    stamp = (trainer.current_epoch, trainer.global_step) if per_evaluation else None
    if key in store and store[key][0] == stamp:
        return store[key][1]
    value = compute()
    store[key] = (stamp, value)
    return value
