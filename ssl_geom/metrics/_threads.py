"""Small dense math on the CPU runs in one thread.

The metrics decompose d x d and n x d matrices (d = the embedding width, n = a reference set
of a few hundred) and compare n² pairs: milliseconds of work, which intra-op threads barely
shorten. On a machine whose cores are busy with anything else (the loader workers of the very
training run, other jobs), a parallel region waits at its barrier for a thread the OS has put
aside, and such a call can take a hundred times longer than in one thread
(``benchmarks/callbacks.py`` measures the callbacks' share; docs/callbacks.md). LAPACK gives
the same bits in one thread; a sum may add its terms in another order (the last bits).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


@contextmanager
def one_thread_on_cpu(x: Tensor) -> Iterator[None]:
    """Inside, torch uses one intra-op thread when ``x`` is on the CPU; restored after."""
    if x.device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
