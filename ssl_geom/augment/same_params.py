"""Same-parameters batch transforms: ONE random draw applied to every sample of a batch.

CARE (Gupta et al., "Structuring Representation Geometry with Rotationally Equivariant
Contrastive Learning", arXiv:2306.13924, Algorithm 1) gives each chunk of originals one
augmentation pair, and its Wahba error (Sec. 4) applies one augmentation to a whole set.
Every transform here has the same two entry points, so no caller needs to know which one it
holds:

* ``t(batch)``: one fresh draw for the whole normalised ``(B, C, H, W)`` batch;
* ``t.pair(batch, n_groups, seed=None)``: CARE's two views, one draw per view and per group
  of ``B / n_groups`` consecutive rows; ``seed`` (an int) draws them from a source seeded by it
  instead of the transform's own, which is how a process other than rank 0 gets draws of its
  own (:mod:`ssl_geom.rank_draws`).

:class:`SameParams` implements ``pair`` with a loop over the groups (draws in the order
first view of group 0, second view of group 0, first view of group 1, ...);
:class:`~ssl_geom.augment.device.DeviceSameParams` overrides it with one batched call per
view. A plain callable is wrapped by :func:`as_same_params`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from ssl_geom.rank_draws import seeded_cpu_rng

Transform = Callable[[torch.Tensor], torch.Tensor]


def group_size(n: int, n_groups: int) -> int:
    """Rows per group when ``n`` rows are cut into ``n_groups`` equal consecutive groups."""
    if n_groups < 1 or n % n_groups:
        raise ValueError(
            f"cannot split a batch of {n} into n_groups={n_groups} equal groups; "
            f"pick a divisor of {n}"
        )
    return n // n_groups


class SameParams(ABC):
    """A batch transform drawing one set of random parameters per call."""

    @abstractmethod
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """``batch`` under one fresh draw, applied identically to every row."""

    def pair(
        self, batch: torch.Tensor, n_groups: int = 1, seed: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views of ``batch``, each group of ``len(batch) / n_groups`` rows with its own draw.

        Draws per group, first view then second: the order CARE's seeded runs depend on.
        ``seed``: draw from the CPU generator seeded by it (restored afterwards), where the
        ``transforms.v2`` ops draw their parameters; ``None``: from it as it stands.
        """
        first, second = [], []
        with seeded_cpu_rng(seed):
            for chunk in batch.split(group_size(len(batch), n_groups)):
                first.append(self(chunk))
                second.append(self(chunk))
        return torch.cat(first), torch.cat(second)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state of the transform's own random source, for checkpoints (none here: the
        global RNG, which nothing restores)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue the random source saved by :meth:`state_dict`."""
        if state:
            raise ValueError(
                f"{type(self).__name__} draws from the global RNG and keeps no state, but a "
                f"saved generator state was given (devices {sorted(state)}): the checkpoint was "
                "written with device augmentation; resume with the same data.augment_on"
            )


class CallableSameParams(SameParams):
    """A user's ``t(batch) -> batch`` (one draw per call) as a :class:`SameParams`."""

    def __init__(self, transform: Transform) -> None:
        if not callable(transform):
            raise ValueError(
                "a same-parameters transform must be callable as t(batch) -> batch, got "
                f"{type(transform).__name__}"
            )
        self.transform = transform

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.transform(batch)

    def __repr__(self) -> str:
        return f"CallableSameParams({self.transform!r})"


def as_same_params(transform: SameParams | Transform) -> SameParams:
    """``transform`` itself when it is a :class:`SameParams`, else wrapped as one."""
    if isinstance(transform, SameParams):
        return transform
    return CallableSameParams(transform)


class SameParamsTransform(SameParams):
    """Apply ONE random draw of v2 ``ops`` identically to every sample of a normalised batch.

    ``t(batch)`` un-normalises ``(B, C, H, W)`` to [0, 1], runs the ops once on the whole batch
    (``transforms.v2`` samples one set of parameters per call; the test-suite checks this holds
    for every op used here), and normalises again. Works on CPU and GPU tensors.
    """

    def __init__(
        self, ops: Sequence[v2.Transform], mean: Sequence[float], std: Sequence[float]
    ) -> None:
        self.ops = v2.Compose(list(ops))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 4 or batch.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"expected a normalised batch of shape (B, {self.mean.shape[1]}, H, W), "
                f"got {tuple(batch.shape)}"
            )
        mean = self.mean.to(batch.device, batch.dtype)
        std = self.std.to(batch.device, batch.dtype)
        images = (batch * std + mean).clamp_(0.0, 1.0)
        return (self.ops(images) - mean) / std

    def __repr__(self) -> str:
        return f"SameParamsTransform({self.ops})"
