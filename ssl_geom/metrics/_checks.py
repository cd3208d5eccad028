"""Input validation shared by the metric functions.

Metrics run inside callbacks on whatever a user's model returns, so a wrong shape must fail
with a message that names the argument, its shape and the expected layout instead of a
broadcasting error deep inside ``torch.linalg``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def as_tensor(name: str, x: object) -> Tensor:
    """Return ``x`` if it is a tensor; otherwise raise a ValueError saying what to pass."""
    if isinstance(x, Tensor):
        return x
    hint = ""
    if isinstance(x, torch.nn.Module):
        hint = " (for a layer, pass its `.weight`)"
    raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}{hint}")


def check_matrix(name: str, x: object, layout: str = "(n, d), rows are samples") -> Tensor:
    """Validate a 2-D floating tensor and return it (half precision upcast to float32).

    ``torch.linalg`` has no half-precision SVD, so fp16/bf16 inputs (common under AMP) are
    computed in float32 rather than rejected.
    """
    x = as_tensor(name, x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor {layout}; got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty {layout}; got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    return x


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise a ValueError unless ``a`` and ``b`` have the same shape (paired samples)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape (row i of both is the same "
            f"sample); got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_paired(name_a: str, a: object, name_b: str, b: object) -> tuple[Tensor, Tensor]:
    """Two ``(n, d)`` matrices of paired samples (row i of both is sample i), each checked by
    :func:`check_matrix`, of one shape, and returned in their common dtype."""
    a = check_matrix(name_a, a)
    b = check_matrix(name_b, b)
    check_same_shape(name_a, a, name_b, b)
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


def check_draws(name: str, f: object, name_draws: str, draws: object) -> tuple[Tensor, Tensor]:
    """``(n, d)`` embeddings and ``(K, n, d)`` embeddings of the same n samples under K draws.

    Each is checked like :func:`check_matrix` (``draws`` per draw); both are returned in their
    common dtype.
    """
    f = check_matrix(name, f)
    draws = as_tensor(name_draws, draws)
    if draws.ndim != 3:
        raise ValueError(
            f"{name_draws} must be a 3-D tensor (K, n, d): K draws of the n samples of {name}; "
            f"got shape {tuple(draws.shape)}"
        )
    if draws.shape[0] == 0:
        raise ValueError(
            f"{name_draws} must hold at least one draw; got shape {tuple(draws.shape)}"
        )
    check_same_shape(name, f, f"each draw of {name_draws}", draws[0])
    if not draws.is_floating_point():
        raise ValueError(f"{name_draws} must be a floating-point tensor, got dtype {draws.dtype}")
    # f is float32 or float64 by now, so half-precision draws are computed in float32.
    dtype = torch.promote_types(f.dtype, draws.dtype)
    return f.to(dtype), draws.to(dtype)


def check_threshold(name: str, tau: float) -> float:
    """Validate a finite, non-negative threshold."""
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative number, got {tau!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {tau!r}")
    return value
