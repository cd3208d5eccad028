"""Augmented embeddings of the probe set, shared by the callbacks that need them.

Two protocols, following the papers:

- **Shared-parameter augmentations** (CARE Sec. 4, Fig. 2c; App. F.2.1): draw ONE
  augmentation ``a`` and apply it to the whole probe set, embed, repeat K times. The
  transform is a batch callable that draws fresh parameters per call (default
  :class:`~ssl_geom.callbacks.BatchAugmentation`, torchvision ``transforms.v2``). Draw
  ``k`` is seeded with ``seed + k``, so the same K augmentations are used at every
  evaluation and on every process.
- **Per-sample views** (geometry paper Sec. 2-5: ``x_i^(k) = t_k(x_i)`` with ``t_k`` drawn
  per datum, as in training): each probe sample gets its own two draws, made by calling the
  same batch transform on one sample at a time. The views depend only on the fixed probe
  inputs and the seed, so they are drawn once and reused; only the embeddings are
  recomputed at each evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._runtime import cached, seeded
from ssl_geom.callbacks.augmentation import BatchAugmentation

if TYPE_CHECKING:
    from ssl_geom.callbacks.base import GeometryCallback, Transform

Space = Literal["projector", "encoder"]
SPACES = ("projector", "encoder")


def check_space(space: str) -> Space:
    """Validate the embedding-space name at construction."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {list(SPACES)}, got {space!r}")
    return space  # type: ignore[return-value]


def resolve_transform(trainer: Trainer, transform: Transform | None, owner: str) -> Transform:
    """The user's transform, else the datamodule's ``same_params_transform()``, else the default.

    A datamodule offering ``same_params_transform()`` (every ``ssl_geom.data`` DataModule
    does) knows its own normalisation and training augmentation, so it wins over the generic
    :class:`~ssl_geom.callbacks.BatchAugmentation` that any other project gets.
    """
    if transform is not None:
        if not callable(transform):
            raise ValueError(f"{owner}: transform must be callable, got {type(transform).__name__}")
        return transform
    factory = getattr(trainer.datamodule, "same_params_transform", None)
    if not callable(factory):
        factory = BatchAugmentation
    return cached(trainer, ("default_transform",), factory, per_evaluation=False)


def _apply(transform: Transform, x: Tensor) -> Tensor:
    out = transform(x)
    if not isinstance(out, Tensor) or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"the transform must return a tensor with the input's batch size {x.shape[0]}; "
            f"got {shape}"
        )
    return out


def _select(h: Tensor, z: Tensor | None, space: Space) -> Tensor:
    return F.normalize(z if space == "projector" and z is not None else h, dim=1)


def augmented_pairs(
    callback: GeometryCallback,
    trainer: Trainer,
    pl_module: LightningModule,
    transform: Transform,
    n_augmentations: int,
    space: Space,
) -> list[tuple[Tensor, Tensor]]:
    """``[(f(X), f(a_k(X)))]_k``: L2-normalised embeddings, one shared draw ``a_k`` per k."""
    probe = callback.probe(trainer)
    key = (
        "augmented",
        id(probe),
        transform,
        n_augmentations,
        callback.seed,
        space,
        callback.module_key(),
    )

    def compute() -> list[tuple[Tensor, Tensor]]:
        x = probe.x.to(pl_module.device)
        project = space == "projector"
        f_x = _select(*callback.features(trainer, pl_module, x, project), space)
        pairs = []
        for k in range(n_augmentations):
            with seeded(callback.seed + k, pl_module.device):
                x_a = _apply(transform, x)
            pairs.append(
                (f_x, _select(*callback.features(trainer, pl_module, x_a, project), space))
            )
        return pairs

    return cached(trainer, key, compute, per_evaluation=True)


def _per_sample_views(
    callback: GeometryCallback, trainer: Trainer, pl_module: LightningModule, transform: Transform
) -> tuple[Tensor, Tensor]:
    probe = callback.probe(trainer)

    def draw() -> tuple[Tensor, Tensor]:
        x = probe.x.to(pl_module.device)
        with seeded(callback.seed, pl_module.device):
            views = [
                torch.cat([_apply(transform, x[i : i + 1]) for i in range(x.shape[0])])
                for _ in range(2)
            ]
        return views[0].cpu(), views[1].cpu()

    key = ("views", id(probe), transform, callback.seed)
    return cached(trainer, key, draw, per_evaluation=False)


def view_features(
    callback: GeometryCallback, trainer: Trainer, pl_module: LightningModule, transform: Transform
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``h1, z1, h2, z2``: encoder and projector outputs of two per-sample views."""
    views = _per_sample_views(callback, trainer, pl_module, transform)
    key = ("view_features", id(views), callback.module_key())

    def compute() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h1, z1 = callback.features(trainer, pl_module, views[0], project=True)
        h2, z2 = callback.features(trainer, pl_module, views[1], project=True)
        return h1, z1, h2, z2  # type: ignore[return-value]  # project=True gives z

    return cached(trainer, key, compute, per_evaluation=True)
