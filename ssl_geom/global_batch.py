"""The global batch and each process's share of it: the rule, written once.

``batch_size`` everywhere in ssl_geom (``data.batch_size``, a method's ``batch_size``) is the
*global* batch, samples per optimiser step summed over all processes, as the papers state it.
Each of the ``world_size`` processes (``trainer.world_size = devices x num_nodes``) takes
``batch_size / world_size``, so a run on 1, 8 or 64 GPUs optimises the same objective; a
batch that does not split evenly is refused rather than rounded. The DataModules, the
methods and the CLI all call :func:`per_process_batch_size`. This module imports nothing
from ``ssl_geom``, so every layer may use it.
"""

from __future__ import annotations


def per_process_batch_size(global_batch: int, world_size: int, name: str = "batch_size") -> int:
    """``global_batch / world_size``; a clear error naming ``name`` when it does not divide."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1 (the number of processes), got {world_size}")
    if global_batch % world_size:
        suggestion = max(world_size, global_batch // world_size * world_size)
        raise ValueError(
            f"{name}={global_batch} is the global batch and must split evenly over the "
            f"{world_size} processes (trainer.world_size = devices x num_nodes); use a "
            f"multiple of {world_size}, e.g. {suggestion}"
        )
    return global_batch // world_size
