"""The online probe's modules: readout + standardised linear classifier, and its accuracy.

See :mod:`ssl_geom.methods.base` for why the probe exists and how it is trained.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

import torch
from torch import nn
from torchmetrics import Metric

from ssl_geom.backbones.readout import Readout


class LinearProbe(nn.Sequential):
    """``BatchNorm1d(affine=False)`` then ``Linear``: a linear classifier on standardised features.

    The norm has no parameters, so the probe stays a linear function of the features.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm1d(in_features, affine=False),
                linear=nn.Linear(in_features, num_classes),
            )
        )


class OnlineProbe(nn.Sequential):
    """The backbone's classifier readout, then a :class:`LinearProbe` on its output.

    ``(B, C, G, H, W) -> (B, num_classes)``. The readout is the one the paper prescribes
    for the backbone (H-SSL App. A; global average pooling for plain ResNets), so the
    online accuracy and a later linear evaluation read the same function of the map.
    """

    def __init__(self, readout: Readout, num_classes: int) -> None:
        super().__init__(
            OrderedDict(readout=readout, classifier=LinearProbe(readout.out_features, num_classes))
        )

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the probe's parameters (features are cast to it)."""
        return cast(nn.Linear, self.get_submodule("classifier.linear")).weight.dtype


class ProbeAccuracy(Metric):
    """Accuracy with per-sample weights: ``sum(w * correct) / sum(w)`` (``w = 0``: ignored).

    Hand-written because the library routes synchronise the GPU or are broken for this:
    ``MulticlassAccuracy(ignore_index=...)`` drops ignored samples by boolean indexing
    (a sync per update), ``MeanMetric`` checks for NaNs with ``.any()`` (a sync), and
    torchmetrics 1.9's ``MeanMetric(nan_strategy="disable")`` replaces the weights by ones
    (measured: weights ``[1, 0, 1, 0, 1]`` on ``[1, 0, 1, 0, 0]`` gave 0.4, not 2/3).
    """

    full_state_update = False
    correct: torch.Tensor  # states registered by add_state, declared for type checkers
    total: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        # float32 counts samples exactly up to 2**24 per epoch (and works on MPS).
        self.add_state("correct", default=torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, correct: torch.Tensor, weight: torch.Tensor) -> None:
        """``correct``: 1 where the prediction is right; ``weight``: 0 for unlabelled samples."""
        self.correct += (correct * weight).sum().to(self.correct.dtype)
        self.total += weight.sum().to(self.total.dtype)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total
