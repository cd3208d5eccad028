"""``n`` linear classifiers trained side by side from different initialisations.

CARE Table 1 reports "the mean performance from 3 different random initializations for the
linear classifier" (Gupta et al., arXiv:2306.13924, App. E.3). Training the ``n`` classifiers
on the same batches, with the sum of their losses, gives each exactly the gradient it would get
alone (their parameters are disjoint, and Adam/SGD with weight decay act element-wise): only
the initialisation differs between them, which is the spread the paper averages over.

The ``n`` weight matrices are one ``(n, num_classes, in_features)`` parameter applied by a
single batched matmul: on cached features a step is so small that per-layer overheads
dominate, and one ``baddbmm`` (and one Adam tensor) instead of ``n`` linear layers keeps 100
epochs over 60,000 features in seconds (``benchmarks/linear_eval.py``). Written here because
neither torch nor lightly has a batch of independent linear layers.

When the readout between the frozen backbone and the linear layer has trainable parameters
(the H-SSL App. A readout's BatchNorms and conv), each classifier gets its own copy, drawn from
its own seed: it belongs to the classifier, not to the frozen encoder.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class ClassifierBank(nn.Module):
    """``forward(x) -> (n, B, num_classes)`` logits of ``n`` independently initialised heads.

    Args:
        in_features: size of the vector the linear layers read (the readout's output).
        num_classes: classes of the task.
        n: number of classifiers.
        seed: classifier ``i`` is initialised from ``torch.Generator().manual_seed(seed + i)``
            (its linear part as ``nn.Linear`` does, uniform in ``±1/sqrt(in_features)``), so
            a run is reproducible and the heads differ from each other.
        readout: builds a fresh trainable readout for each head; ``None`` when the inputs
            are already vectors of ``in_features``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        n: int,
        seed: int = 0,
        readout: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n_classifiers must be >= 1, got {n}")
        bound = 1 / math.sqrt(in_features)
        weights, biases, readouts = [], [], []
        for i in range(n):
            generator = torch.Generator().manual_seed(seed + i)
            weight = torch.empty(num_classes, in_features).uniform_(
                -bound, bound, generator=generator
            )
            weights.append(weight)
            biases.append(torch.empty(num_classes).uniform_(-bound, bound, generator=generator))
            if readout is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed + i)
                    readouts.append(readout())
        self.weight = nn.Parameter(torch.stack(weights))
        self.bias = nn.Parameter(torch.stack(biases))
        self.readouts = nn.ModuleList(readouts) if readout is not None else None

    def __len__(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self)
        if self.readouts is None:
            vectors = x.unsqueeze(0).expand(n, *x.shape)
        else:
            vectors = torch.stack([readout(x) for readout in self.readouts])
        return torch.baddbmm(self.bias.unsqueeze(1), vectors, self.weight.transpose(1, 2))

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(n,)`` mean cross-entropy of each head on ``(x, y)``."""
        logits = self(x)
        n, batch, classes = logits.shape
        loss = F.cross_entropy(logits.reshape(n * batch, classes), y.repeat(n), reduction="none")
        return loss.view(n, batch).mean(1)
