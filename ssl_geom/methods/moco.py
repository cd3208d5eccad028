"""MoCo-v2 (Chen et al., 2020): momentum key encoder and a queue of negative keys.

The query of view 1 (online backbone + projector) is contrasted with the key of view 2
(momentum copies, updated by EMA with lightly's ``update_momentum``) against the keys of
earlier batches held in a queue. ``symmetric=True`` (default) adds the swapped term
(query of view 2 vs key of view 1) and averages the two, as the common MoCo-v2
re-implementations do (lightly / solo-learn benchmarks); both views' keys are then
enqueued. ``symmetric=False`` is the official facebookresearch/moco loss (one term, the
view-2 keys enqueued).

The queue and its write pointer are persistent buffers, so they are saved in checkpoints
and a resumed run continues with the negatives it had. Under DDP the keys of all
processes are gathered before enqueueing (every process holds the same queue) and the
key encoder uses MoCo's shuffled BatchNorm (the batch is permuted across processes so
BN statistics cannot leak which sample is the positive; lightly's
``batch_shuffle_distributed``). The contrastive logits are computed in float32.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightly.models.utils import (
    batch_shuffle_distributed,
    batch_unshuffle_distributed,
    concat_all_gather,
    deactivate_requires_grad,
    update_momentum,
)
from torch import nn

from ssl_geom.methods.base import SSLMethod, SSLStepOutput


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class MomentumQueue(nn.Module):
    """Momentum copies of an encoder + projector, the key queue, and MoCo's loss.

    Args:
        backbone / projector: the online modules; deep-copied and frozen here.
        dim: key dimension (the projector's output size).
        queue_size: number of negative keys kept.
        temperature: softmax temperature of the contrastive logits.
        ema_momentum: ``m`` in ``θ_k <- m θ_k + (1 - m) θ_q``.
        symmetric: average the two query/key directions (see module docstring).
        shuffle_bn: shuffle the key batch across processes under DDP.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        dim: int,
        queue_size: int,
        temperature: float,
        ema_momentum: float,
        symmetric: bool = True,
        shuffle_bn: bool = True,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0.0 <= ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1], got {ema_momentum}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.backbone = copy.deepcopy(backbone)
        self.projector = copy.deepcopy(projector)
        deactivate_requires_grad(self.backbone)
        deactivate_requires_grad(self.projector)
        self.temperature = temperature
        self.ema_momentum = ema_momentum
        self.symmetric = symmetric
        self.shuffle_bn = shuffle_bn
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, backbone: nn.Module, projector: nn.Module) -> None:
        """EMA step of the momentum copies towards the online modules."""
        update_momentum(backbone, self.backbone, self.ema_momentum)
        update_momentum(projector, self.projector, self.ema_momentum)

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 keys ``(B, dim)`` of images ``x`` from the momentum encoder."""
        shuffle = None
        if self.shuffle_bn and _distributed():
            x, shuffle = batch_shuffle_distributed(x)
        k = self.projector(self.backbone.embed(x))
        if shuffle is not None:
            k = batch_unshuffle_distributed(k, shuffle)
        return F.normalize(k.float(), dim=1)

    def contrast(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries ``q`` with positives ``k`` and the queue as negatives (float32)."""
        with torch.autocast(device_type=q.device.type, enabled=False):
            q = F.normalize(q.float(), dim=1)
            pos = (q * k).sum(dim=1, keepdim=True)
            # A copy: the queue is overwritten in place before backward() runs.
            neg = q @ self.queue.clone().T
            logits = torch.cat([pos, neg], dim=1) / self.temperature
            target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
            return F.cross_entropy(logits, target)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys`` (gathered from all processes under DDP) at the pointer, wrapping."""
        if _distributed():
            keys = concat_all_gather(keys.contiguous())
        size = self.queue.shape[0]
        if keys.shape[0] > size:
            keys = keys[-size:]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)

    def loss(
        self, q1: torch.Tensor, q2: torch.Tensor | None, x1: torch.Tensor, x2: torch.Tensor
    ) -> torch.Tensor:
        """MoCo loss for online projections ``q1``/``q2`` of views ``x1``/``x2``; enqueues keys.

        ``q2`` may be ``None`` when ``symmetric`` is False.
        """
        k2 = self.keys(x2)
        loss = self.contrast(q1, k2)
        if not self.symmetric:
            self.enqueue(k2)
            return loss
        if q2 is None:
            raise ValueError("symmetric MoCo needs the projection of view 2 (q2)")
        k1 = self.keys(x1)
        loss = 0.5 * (loss + self.contrast(q2, k1))
        self.enqueue(torch.cat([k1, k2]))
        return loss


class MoCoV2(SSLMethod):
    """MoCo-v2; base arguments pass through ``kwargs`` (see module docstring).

    Args:
        temperature: 0.2 in MoCo-v2 (and CARE's ImageNet-100); 0.1 in CARE's CIFAR runs.
        queue_size: negatives kept (65536 in MoCo-v2; 4096 is common on CIFAR).
        ema_momentum: key-encoder momentum (0.999 MoCo-v2; 0.99 CARE ImageNet-100).
        symmetric: average both query/key directions (default) or the official single term.
        shuffle_bn: MoCo's shuffled BN for the key encoder under DDP.
        projector_batch_norm: MoCo-v2's head is ``fc-ReLU-fc`` without BatchNorm.
    """

    def __init__(
        self,
        temperature: float = 0.2,
        queue_size: int = 65536,
        ema_momentum: float = 0.999,
        symmetric: bool = True,
        shuffle_bn: bool = True,
        projector_batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_batch_norm=projector_batch_norm, **kwargs)
        self.projector = self.make_projector(self.backbone.embed_dim)
        self.momentum_encoder = MomentumQueue(
            self.backbone,
            self.projector,
            dim=self.hparams.projector_out_dim,
            queue_size=queue_size,
            temperature=temperature,
            ema_momentum=ema_momentum,
            symmetric=symmetric,
            shuffle_bn=shuffle_bn,
        )

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        if len(views) < 2:
            raise ValueError(
                f"MoCo-v2 needs two augmented views per sample, got {len(views)}; "
                "use a DataModule with train_views='simclr' and n_views=2"
            )
        self.momentum_encoder.update(self.backbone, self.projector)
        h1, q1 = self.project(views[0])
        q2 = self.project(views[1])[1] if self.hparams.symmetric else None
        loss = self.momentum_encoder.loss(q1, q2, views[0], views[1])
        return SSLStepOutput(loss, h1, {"moco": loss.detach()})
