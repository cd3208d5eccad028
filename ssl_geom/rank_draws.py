"""Random draws per process: rank 0 keeps its source, every other rank gets a stream of its own.

Under DDP every process calls ``seed_everything`` with the same seed, so a draw from the global
RNG, or from a generator seeded by a fixed seed, repeats on every rank (on different images).
The draws that ssl_geom makes during a training step (CARE's per-chunk augmentation pairs,
H-SSL's fiber positions, A-SSL's base, the device augmentation's parameters) take their source
from a :class:`RankDraws` counter instead:

* rank 0 keeps the source it always had (the global RNG, or a generator seeded once and run
  on), so a one-process run draws exactly what it drew before;
* rank ``r > 0`` makes call ``i`` of a stream from a fresh generator seeded by
  :func:`stream_seed` ``(seed, r, i)``: different on every rank, and a function of the seed, the
  rank and the call alone. The call count is saved in checkpoints, so a resumed run draws on
  these ranks what an uninterrupted one would.

Rank 0's draws from the global RNG are not restored on resume (nothing restores the global
RNG); those from a seeded generator are, by whoever holds the generator (its state is saved).
This module imports nothing from ``ssl_geom``, so every layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_MASK = 2**64 - 1


def _mix(value: int) -> int:
    """SplitMix64's finaliser: a bijection of 64-bit integers that scatters nearby inputs."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def stream_seed(seed: int, rank: int, call: int) -> int:
    """The seed of call ``call`` on rank ``rank`` of a stream seeded by ``seed`` (< 2**63).

    Chained SplitMix64, so distinct ``(seed, rank, call)`` give unrelated seeds (consecutive
    calls and neighbouring ranks included).
    """
    if rank < 0 or call < 0:
        raise ValueError(f"rank and call must be >= 0, got rank={rank}, call={call}")
    return _mix(_mix(_mix(seed & _MASK) ^ rank) ^ call) >> 1


def run_seed() -> int:
    """The run's seed as ``seed_everything`` recorded it (``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


@contextmanager
def seeded_cpu_rng(seed: int | None) -> Iterator[None]:
    """Inside: the default CPU generator seeded by ``seed``; its state is restored afterwards.

    ``None`` leaves the generator alone. Seeding and restoring the default generator directly
    costs microseconds, against ~200 us for ``torch.random.fork_rng`` (which also visits every
    accelerator backend). For draws that cannot take a generator, such as ``transforms.v2``
    ops, which draw their parameters from the CPU generator.
    """
    if seed is None:
        yield
        return
    generator = torch.random.default_generator
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


class RankDraws:
    """The call counter of one stream of draws, and each call's seed on each rank.

    Args:
        seed: the stream's seed; ``None`` = the run's seed (:func:`run_seed`), read at each
            call, since ``seed_everything`` may run after this object is built.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.calls = 0

    def next_seed(self, rank: int) -> int | None:
        """Count one call; ``None`` on rank 0 (keep its own source), else its stream's seed."""
        call = self.calls
        self.calls += 1
        if rank == 0:
            return None
        return stream_seed(run_seed() if self.seed is None else self.seed, rank, call)

    def next_generator(self, rank: int, device: torch.device | str) -> torch.Generator | None:
        """:meth:`next_seed` as a generator on ``device`` (``None`` on rank 0)."""
        seed = self.next_seed(rank)
        return None if seed is None else torch.Generator(device).manual_seed(seed)

    def state_dict(self) -> dict[str, int]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.calls = int(state["calls"])
