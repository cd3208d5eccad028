"""Optimizers and the warm-up + cosine schedule shared by every method.

Built from maintained pieces: lightly's ``LARS`` (with a synchronisation-free step,
:mod:`ssl_geom.methods.lars`) and ``CosineWarmupScheduler`` and its
``get_weight_decay_parameters`` (bias and normalisation parameters without weight decay).
LARS skips the layer-wise trust ratio for groups whose ``weight_decay`` is 0,
so the no-decay group is also excluded from LARS adaptation, as in SimCLR and BYOL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from lightly.models.utils import get_weight_decay_parameters
from lightly.utils.scheduler import CosineWarmupScheduler
from torch import nn

from ssl_geom.methods.lars import LARS

OPTIMIZERS: tuple[str, ...] = ("lars", "sgd", "adam", "adamw")
SCHEDULES: tuple[str, ...] = ("warmup_cosine", "constant")
LR_SCALINGS: tuple[str, ...] = ("none", "linear", "sqrt")


def check_choice(kind: str, value: str, valid: Iterable[str]) -> None:
    """Raise a ValueError naming ``value`` and the valid choices when it is not one of them."""
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid choices: {', '.join(valid)}")


def weight_decay_groups(
    modules: Iterable[nn.Module], weight_decay: float, exclude_bias_norm: bool = True
) -> list[dict[str, Any]]:
    """Trainable parameters of ``modules`` split into a decayed and a non-decayed group.

    With ``exclude_bias_norm`` biases and normalisation-layer parameters get no weight
    decay (and, under LARS, no layer-wise adaptation).
    """
    modules = list(modules)
    if exclude_bias_norm:
        decay, no_decay = get_weight_decay_parameters(modules)
    else:
        decay, no_decay = [p for m in modules for p in m.parameters()], []
    decay = [p for p in decay if p.requires_grad]
    no_decay = [p for p in no_decay if p.requires_grad]
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(
    name: str,
    groups: list[dict[str, Any]],
    lr: float,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of ``OPTIMIZERS``) over ``groups`` (each with its weight decay)."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas)
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def build_schedule(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    total_steps: int,
    warmup_steps: int,
    final_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step schedule: linear warm-up to each group's lr, then cosine to ``final_lr_ratio`` x lr.

    ``"constant"`` keeps the lr fixed (after the warm-up, if any).
    """
    check_choice("lr schedule", schedule, SCHEDULES)
    total_steps = max(1, int(total_steps))
    warmup_steps = min(max(0, int(warmup_steps)), total_steps)
    end = 1.0 if schedule == "constant" else final_lr_ratio
    return CosineWarmupScheduler(
        optimizer,
        warmup_epochs=warmup_steps,
        max_epochs=total_steps,
        start_value=1.0,
        end_value=end,
    )


def scaled_lr(base_lr: float, rule: str, global_batch: int, reference_batch: int) -> float:
    """``base_lr`` scaled by batch size: ``none``, ``linear`` (x B/ref) or ``sqrt`` (x sqrt(B/ref))."""
    check_choice("lr scaling", rule, LR_SCALINGS)
    if rule == "none":
        return base_lr
    ratio = global_batch / reference_batch
    return base_lr * (ratio if rule == "linear" else math.sqrt(ratio))
