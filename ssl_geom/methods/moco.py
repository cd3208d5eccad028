"""MoCo-v2 (Chen et al., "Improved Baselines with Momentum Contrastive Learning",
arXiv:2003.04297): momentum key encoder and a queue of negative keys.

The loss follows the official code (facebookresearch/moco, ``moco/builder.py``), which
the CARE paper defers to (Gupta et al., "Structuring Representation Geometry with
Rotationally Equivariant Contrastive Learning", arXiv:2306.13924, App. E.3): the query of view 1
(online backbone + projector) is contrasted with the key of view 2 (momentum copies,
updated by EMA with lightly's ``update_momentum``) against the keys of earlier batches
held in a queue, and only the view-2 keys are enqueued (``symmetric=False``, default).
``symmetric=True`` adds the swapped term (query of view 2 vs key of view 1), averages the
two and enqueues both views' keys, as the lightly / solo-learn re-implementations do.

The queue is lightly's ``MemoryBankModule`` (``feature_dim_first=False``: rows are keys).
lightly registers its bank and pointer as non-persistent buffers; here they are
re-registered as persistent, so checkpoints hold the queue and a resumed run continues
with the negatives it had. When a batch of keys overruns the end of the queue, lightly
fills the queue to its end and restarts at row 0, dropping the overflow; with a
``queue_size`` that is a multiple of the keys per step (the official code asserts this)
nothing is dropped. Under DDP the keys of all processes are gathered before enqueueing,
so every process holds the same queue.

Shuffled BatchNorm (He et al., arXiv:1911.05722 Sec. 3.3) keeps a key's BatchNorm
statistics from coming from the same samples as its query's. Under DDP the key batch is
permuted across processes (lightly's ``batch_shuffle_distributed``). On one device a
permutation alone would change nothing, so the key encoder's BatchNorms become
:class:`~ssl_geom.methods.split_batchnorm.SplitBatchNorm` over ``bn_splits`` sub-batches
and the key batch is permuted before the split, as in the MoCo authors' CIFAR-10 demo.
The online (query) encoder keeps whole-batch BatchNorm: its statistics are shared by all
queries, so they cannot single out the positive, and the encoder users evaluate stays
a plain network. The single-device permutation comes from a generator seeded by a
per-module seed and a call counter, both saved in checkpoints, so a resumed run draws
the same permutations as an uninterrupted one. The contrastive logits are in float32.

Shuffled BatchNorm makes MoCo a method *defined per world size*: on one device the key
BatchNorms normalise ``bn_splits`` sub-batches, under DDP each process's share of the
globally shuffled key batch (``batch_size / world_size`` keys), so runs on different GPU counts
normalise keys over different numbers of samples (``tests/test_world_size_invariance.py`` pins
this). ``shuffle_bn=False`` removes the difference: the key encoder's BatchNorm then sees the
whole batch on one device and, with ``trainer.sync_batchnorm``, under DDP too. Lightning's
``sync_batchnorm`` converts *every* BatchNorm, the key encoder's included, which would quietly
turn shuffled BatchNorm into whole-batch BatchNorm; a run with both is refused at the start
of fitting (set ``shuffle_bn: false`` to ask for that, as the CARE authors' ImageNet-100 code
does by converting its whole model).
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightly.models.modules.memory_bank import MemoryBankModule
from lightly.models.utils import (
    batch_shuffle_distributed,
    batch_unshuffle,
    batch_unshuffle_distributed,
    concat_all_gather,
    deactivate_requires_grad,
    update_momentum,
)
from torch import nn

from ssl_geom.backbones import StructuredBackbone
from ssl_geom.methods.base import SSLMethod, SSLStepOutput
from ssl_geom.methods.split_batchnorm import convert_split_batchnorm

# The hyper-parameters of a method that configure its MomentumQueue (MoCoV2's and CARE's).
MOCO_HPARAMS = ("queue_size", "temperature", "ema_momentum", "symmetric", "shuffle_bn", "bn_splits")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class KeyQueue(MemoryBankModule):
    """lightly's memory bank (rows are keys), checkpointed and without a per-step sync.

    Two changes to ``MemoryBankModule``, nothing else: its ``bank`` and ``bank_ptr`` are
    registered non-persistent, so they would not be saved in checkpoints — here they are;
    and its ``_dequeue_and_enqueue`` reads ``int(self.bank_ptr)`` every step, a
    device-to-host copy that stalls the GPU (``torch.cuda.set_sync_debug_mode("error")``
    flagged it on an H200). The write position depends only on how many keys were written,
    so a Python int mirrors it; the buffer is written every step but read only when a
    checkpoint is loaded. Keys that do not fit before the end of the queue are dropped, as
    lightly does (nothing is lost when the queue size is a multiple of the keys per step).
    """

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(size=size, gather_distributed=True, feature_dim_first=False)
        for name in ("bank", "bank_ptr"):
            self.register_buffer(name, getattr(self, name), persistent=True)
        self.position = 0

    @torch.no_grad()
    def _dequeue_and_enqueue(self, batch: torch.Tensor) -> None:
        if self.gather_distributed and _distributed():
            batch = concat_all_gather(batch)
        n, size, ptr = batch.shape[0], self.size[0], self.position
        if ptr + n >= size:
            self.bank[ptr:] = batch[: size - ptr].detach()
            ptr = 0
        else:
            self.bank[ptr : ptr + n] = batch.detach()
            ptr += n
        self.position = ptr
        self.bank_ptr.fill_(ptr)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        key = prefix + "bank_ptr"
        if key in state_dict:
            self.position = int(state_dict[key])


class MomentumQueue(nn.Module):
    """Momentum copies of an encoder + projector, the key queue, and MoCo's loss.

    Args:
        backbone / projector: the online modules; deep-copied and frozen here.
        dim: key dimension (the projector's output size).
        queue_size: number of negative keys kept.
        temperature: softmax temperature of the contrastive logits.
        ema_momentum: ``m`` in ``θ_k <- m θ_k + (1 - m) θ_q``.
        symmetric: average the two query/key directions (see module docstring).
        shuffle_bn: shuffled BatchNorm for the key encoder: across processes under DDP,
            across ``bn_splits`` sub-batches on one device; ``False`` = plain BatchNorm
            over the whole key batch.
        bn_splits: sub-batches of the key encoder's BatchNorm on one device (8 in the
            MoCo CIFAR-10 demo); must divide the per-process batch size, leaving at
            least 2 samples per sub-batch.
    """

    def __init__(
        self,
        backbone: StructuredBackbone,
        projector: nn.Module,
        dim: int,
        queue_size: int,
        temperature: float,
        ema_momentum: float,
        symmetric: bool = False,
        shuffle_bn: bool = True,
        bn_splits: int = 8,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0.0 <= ema_momentum <= 1.0:
            raise ValueError(f"ema_momentum must be in [0, 1], got {ema_momentum}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if bn_splits < 1:
            raise ValueError(f"bn_splits must be >= 1 (1 = whole-batch BatchNorm), got {bn_splits}")
        self.backbone = copy.deepcopy(backbone)
        self.projector = copy.deepcopy(projector)
        if shuffle_bn and bn_splits > 1:
            # the same module comes back: a backbone is not itself a BatchNorm
            self.backbone = cast(
                StructuredBackbone, convert_split_batchnorm(self.backbone, bn_splits)
            )
            self.projector = convert_split_batchnorm(self.projector, bn_splits)
        deactivate_requires_grad(self.backbone)
        deactivate_requires_grad(self.projector)
        self.temperature = temperature
        self.ema_momentum = ema_momentum
        self.symmetric = symmetric
        self.shuffle_bn = shuffle_bn
        self.bn_splits = bn_splits
        self.memory_bank = KeyQueue(size=(queue_size, dim))
        self._shuffle_seed = int(torch.randint(2**31, ()))
        self._shuffle_calls = 0

    @property
    def queue(self) -> torch.Tensor:
        """The negative keys, ``(queue_size, dim)``."""
        return self.memory_bank.bank

    @property
    def queue_ptr(self) -> int:
        """Row where the next keys are written."""
        return self.memory_bank.position

    def check_batch_size(self, batch_size: int | None) -> None:
        """Refuse a per-process batch size the key encoder's sub-batches cannot split."""
        k = self.bn_splits
        if batch_size is None or not self.shuffle_bn or k == 1:
            return
        if batch_size % k != 0 or batch_size // k < 2:
            raise ValueError(
                f"MoCo bn_splits={k} must divide the batch size {batch_size} into "
                f"sub-batches of at least 2 samples (the key encoder's BatchNorm statistics); "
                "pick a divisor of the batch size, or bn_splits=1 for whole-batch BatchNorm"
            )

    def refuse_synchronised_batch_norm(self) -> None:
        """Refuse a key encoder whose shuffled BatchNorm was converted to ``SyncBatchNorm``.

        Lightning's ``trainer.sync_batchnorm`` converts every BatchNorm of the model before
        training; in the key encoder that undoes the shuffled BatchNorm MoCo depends on.
        """
        if self.shuffle_bn and any(isinstance(m, nn.SyncBatchNorm) for m in self.modules()):
            raise ValueError(
                "trainer.sync_batchnorm=true converted MoCo's key encoder to SyncBatchNorm, which "
                "normalises every key with the statistics of the whole batch and so undoes the "
                "shuffled BatchNorm of shuffle_bn=true. Set model shuffle_bn: false to train with "
                "synchronised whole-batch BatchNorm in the key encoder too (what the CARE "
                "ImageNet-100 code does), or trainer.sync_batchnorm: false to keep MoCo's "
                "shuffled BatchNorm"
            )

    @classmethod
    def of(cls, method: SSLMethod) -> MomentumQueue:
        """The key encoder of ``method``, set by its hyper-parameters :data:`MOCO_HPARAMS`.

        MoCo-v2 and CARE's MoCo base build it alike, so they build it here.
        """
        hp = method.hparams
        settings = {name: hp[name] for name in MOCO_HPARAMS}
        queue = cls(method.backbone, method.projector, dim=hp.projector_out_dim, **settings)
        queue.check_batch_size(hp.batch_size)
        return queue

    def get_extra_state(self) -> torch.Tensor:
        """Seed and call count of the single-device key permutation (saved in checkpoints)."""
        return torch.tensor([self._shuffle_seed, self._shuffle_calls], dtype=torch.long)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self._shuffle_seed, self._shuffle_calls = (int(v) for v in state.tolist())

    @torch.no_grad()
    def update(self, backbone: nn.Module, projector: nn.Module) -> None:
        """EMA step of the momentum copies towards the online modules."""
        update_momentum(backbone, self.backbone, self.ema_momentum)
        update_momentum(projector, self.projector, self.ema_momentum)

    def key_permutation(self, n: int, device: torch.device) -> torch.Tensor:
        """The next single-device key permutation of ``n`` rows (reproducible across resumes)."""
        generator = torch.Generator(device=device)
        generator.manual_seed(self._shuffle_seed + self._shuffle_calls)
        self._shuffle_calls += 1
        # argsort of uniforms is a uniform permutation drawn by kernels alone
        return torch.rand(n, generator=generator, device=device).argsort()

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 keys ``(B, dim)`` of images ``x`` from the momentum encoder."""
        if not self.shuffle_bn:
            k = self.projector(self.backbone.embed(x))
        elif _distributed():
            x, shuffle = batch_shuffle_distributed(x)
            k = batch_unshuffle_distributed(self.projector(self.backbone.embed(x)), shuffle)
        else:
            perm = self.key_permutation(x.shape[0], x.device)
            k = batch_unshuffle(self.projector(self.backbone.embed(x[perm])), perm)
        return F.normalize(k.float(), dim=1)

    def contrast(self, q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries ``q`` with positives ``k`` and rows of ``negatives`` (float32)."""
        with torch.autocast(device_type=q.device.type, enabled=False):
            q = F.normalize(q.float(), dim=1)
            pos = (q * k).sum(dim=1, keepdim=True)
            neg = q @ negatives.float().T
            logits = torch.cat([pos, neg], dim=1) / self.temperature
            target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
            return F.cross_entropy(logits, target)

    def loss(
        self, q1: torch.Tensor, q2: torch.Tensor | None, x1: torch.Tensor, x2: torch.Tensor
    ) -> torch.Tensor:
        """MoCo loss for online projections ``q1``/``q2`` of views ``x1``/``x2``; enqueues keys.

        ``q2`` may be ``None`` when ``symmetric`` is False.
        """
        k2 = self.keys(x2)
        if not self.symmetric:
            _, queue = self.memory_bank(k2, update=True)  # the queue before k2 is written
            return self.contrast(q1, k2, queue)
        if q2 is None:
            raise ValueError("symmetric MoCo needs the projection of view 2 (q2)")
        k1 = self.keys(x1)
        _, queue = self.memory_bank(torch.cat([k1, k2]), update=True)
        return 0.5 * (self.contrast(q1, k2, queue) + self.contrast(q2, k1, queue))


class MoCoV2(SSLMethod):
    """MoCo-v2; base arguments pass through ``kwargs`` (see module docstring).

    Defaults are the official MoCo-v2 code's (facebookresearch/moco ``main_moco.py`` with
    ``--mlp --moco-t 0.2 --aug-plus --cos``): queue 65536, momentum 0.999, temperature 0.2,
    the one-directional loss.

    Args:
        temperature: 0.2 in MoCo-v2 (and CARE's ImageNet-100); 0.1 in CARE's CIFAR runs.
        queue_size: negatives kept (65536 in MoCo-v2; the MoCo CIFAR-10 demo uses 4096).
        ema_momentum: key-encoder momentum (0.999 MoCo-v2; 0.99 CARE ImageNet-100).
        symmetric: average both query/key directions, or the official single term (default).
        shuffle_bn: MoCo's shuffled BN for the key encoder (across processes under DDP,
            across ``bn_splits`` sub-batches on one device).
        bn_splits: BatchNorm sub-batches of the key encoder on one device (MoCo demo: 8).
        projector_batch_norm: MoCo-v2's head is ``fc-ReLU-fc`` without BatchNorm.
    """

    def __init__(
        self,
        temperature: float = 0.2,
        queue_size: int = 65536,
        ema_momentum: float = 0.999,
        symmetric: bool = False,
        shuffle_bn: bool = True,
        bn_splits: int = 8,
        projector_batch_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(projector_batch_norm=projector_batch_norm, **kwargs)
        self.projector = self.make_projector(self.backbone.embed_dim)
        self.momentum_encoder = MomentumQueue.of(self)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trainer.world_size == 1:
            self.momentum_encoder.check_batch_size(self.per_process_batch_size())

    def on_fit_start(self) -> None:
        self.momentum_encoder.refuse_synchronised_batch_norm()

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
