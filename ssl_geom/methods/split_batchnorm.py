"""BatchNorm over ``k`` sub-batches: MoCo's multi-GPU BatchNorm, simulated on one device.

MoCo's key encoder shuffles its batch across GPUs so that a key's BatchNorm statistics
come from other samples than its query's (He et al., "Momentum Contrast for Unsupervised
Visual Representation Learning", arXiv:1911.05722, Sec. 3.3). On one device a permutation
alone changes nothing: BatchNorm still sees the whole batch. The MoCo authors' CIFAR-10
demo (facebookresearch/moco, ``colab/moco_cifar10_demo.ipynb``, ``SplitBatchNorm`` with
``bn_splits=8``) therefore normalises ``k`` sub-batches separately, as ``k`` GPUs would,
and shuffles the key batch before splitting it.

Hand-written rather than lightly's ``lightly.models.batchnorm.SplitBatchNorm`` because
that one is ``BatchNorm2d`` only (4-D input), while our backbones also use
``BatchNorm1d`` (MLPs, projectors) and ``BatchNorm3d`` (``(B, C, G, H, W)`` group maps),
and because it keeps ``k`` copies of the running statistics, so its state_dict no longer
matches the online encoder's. This layer keeps the wrapped BatchNorm's parameters and
buffers unchanged (same names and shapes) and uses the same reshape trick: ``(N, C, ...)``
is viewed as ``(N/k, k·C, ...)``, so sub-batch ``j`` holds rows ``j, j+k, j+2k, …``.
The running statistics are updated with the mean of the ``k`` sub-batch statistics
(lightly averages them too, lazily, when switching to eval).

Under DDP (more than one process) every process already normalises only its own part of
the batch and MoCo shuffles keys across processes, so the layer then acts as the plain
BatchNorm it wraps, matching the official multi-GPU code.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SplitBatchNorm(_BatchNorm):
    """A BatchNorm (any of 1d/2d/3d) whose training statistics come from ``num_splits`` sub-batches.

    Build it from an existing layer with :meth:`from_batchnorm`; in eval mode, with
    ``num_splits=1`` or under DDP it is the plain BatchNorm.
    """

    def __init__(self, num_features: int, num_splits: int, **batchnorm_kwargs) -> None:
        super().__init__(num_features, **batchnorm_kwargs)
        if num_splits < 1:
            raise ValueError(f"num_splits must be >= 1, got {num_splits}")
        self.num_splits = num_splits

    @classmethod
    def from_batchnorm(cls, bn: _BatchNorm, num_splits: int) -> SplitBatchNorm:
        """A split copy of ``bn`` with its parameters, running statistics and mode."""
        ref = bn.weight if bn.affine else bn.running_mean
        split = cls(
            bn.num_features,
            num_splits,
            eps=bn.eps,
            momentum=bn.momentum,
            affine=bn.affine,
            track_running_stats=bn.track_running_stats,
            **({} if ref is None else {"device": ref.device, "dtype": ref.dtype}),
        )
        split.load_state_dict(bn.state_dict())
        split.train(bn.training)
        return split

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SplitBatchNorm expects (N, C, ...) input, got shape {input.shape}")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_splits={self.num_splits}"

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        k = self.num_splits
        if not self.training or k == 1 or _distributed():
            return super().forward(input)
        self._check_input_dim(input)
        n, c = input.shape[:2]
        if n % k != 0:
            raise ValueError(
                f"SplitBatchNorm with num_splits={k} got a batch of {n} samples; the batch "
                f"size must be a multiple of {k} (set bn_splits to a divisor of the per-process "
                "batch size, or drop incomplete batches)"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        running_mean = running_var = None
        if self.track_running_stats:
            # nn.BatchNorm types its buffers Optional; they exist when it tracks statistics.
            tracked = cast(torch.Tensor, self.num_batches_tracked)
            tracked.add_(1)
            if self.momentum is None:  # cumulative average, as nn.BatchNorm does
                factor = 1.0 / float(tracked)
            running_mean = cast(torch.Tensor, self.running_mean).repeat(k)
            running_var = cast(torch.Tensor, self.running_var).repeat(k)
        out = F.batch_norm(
            input.reshape(n // k, k * c, *input.shape[2:]),
            running_mean,
            running_var,
            self.weight.repeat(k) if self.affine else None,
            self.bias.repeat(k) if self.affine else None,
            training=True,
            momentum=factor,
            eps=self.eps,
        )
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                cast(torch.Tensor, self.running_mean).copy_(running_mean.view(k, c).mean(dim=0))
                cast(torch.Tensor, self.running_var).copy_(running_var.view(k, c).mean(dim=0))
        return out.view(input.shape)


def convert_split_batchnorm(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every BatchNorm in ``module`` (in place) by a :class:`SplitBatchNorm`.

    Returns ``module`` (or the replacement when ``module`` itself is a BatchNorm). Parameter
    order is kept, so EMA updates that zip ``parameters()`` still pair the right tensors.
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, SplitBatchNorm):
        return SplitBatchNorm.from_batchnorm(module, num_splits)
    for name, child in module.named_children():
        setattr(module, name, convert_split_batchnorm(child, num_splits))
    return module
