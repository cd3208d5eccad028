"""Shape checks shared by the losses, so a wrong input fails with its shapes in the message."""

from __future__ import annotations

import torch


def check_pair(name: str, z1: torch.Tensor, z2: torch.Tensor) -> None:
    """Require two ``(n, d)`` embedding batches of the same shape."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"{name} expects two (n, d) embedding batches of the same shape, got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}; flatten features to (n, d) first"
        )
