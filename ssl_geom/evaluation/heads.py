"""``n`` linear classifiers trained side by side from different initialisations.

CARE Table 1 reports "the mean performance from 3 different random initializations for the
linear classifier" (Gupta et al., arXiv:2306.13924, App. E.3). Training the ``n`` classifiers
on the same batches, with the sum of their losses, gives each exactly the gradient it would get
alone (their parameters are disjoint, and Adam/SGD act per parameter): only the initialisation
differs between them, which is the spread the paper averages over.

When the readout between the frozen backbone and the linear layer has trainable parameters
(the H-SSL App. A readout's BatchNorms and conv), each classifier gets its own copy, drawn from
its own seed: it belongs to the classifier, not to the frozen encoder.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ClassifierBank(nn.Module):
    """``forward(x) -> (n, B, num_classes)`` logits of ``n`` independently initialised heads.

    Args:
        in_features: size of the vector the linear layers read (the readout's output).
        num_classes: classes of the task.
        n: number of classifiers.
        seed: classifier ``i`` is initialised under ``torch.manual_seed(seed + i)``, so a
            run is reproducible and the heads differ from each other.
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
        heads = []
        for i in range(n):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + i)
                first = readout() if readout is not None else nn.Identity()
                heads.append(nn.Sequential(first, nn.Linear(in_features, num_classes)))
        self.heads = nn.ModuleList(heads)

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(x) for head in self.heads])
