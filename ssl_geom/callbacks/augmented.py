"""Base classes of the callbacks that measure augmented embeddings of the reference set.

Two protocols, following the papers:

- **Per-sample views** (:class:`AugmentedGeometryCallback`; geometry paper Sec. 2-5:
  ``x_i^(k) = t_k(x_i)`` with ``t_k`` drawn per datum, as in training): each reference sample
  gets its own two draws, made by calling the batch transform on one sample at a time. The
  views depend only on the fixed reference inputs and the seed, so they are drawn once per
  run; only their embeddings are recomputed at each evaluation.
- **Shared-parameter augmentations** (:class:`SharedAugmentationCallback`; CARE Sec. 4,
  Fig. 2c, App. F.2.1): draw ONE augmentation ``a_k`` and apply it to the whole reference
  set, embed, repeat K times. Draw ``k`` is seeded with ``seed + k``, so the same K
  augmentations are used at every evaluation and on every process.

The transform is the user's ``transform=``, else the datamodule's
``same_params_transform()`` (it knows its own normalisation and training augmentation),
else :class:`~ssl_geom.callbacks.BatchAugmentation`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from ssl_geom.augment.batch import BatchAugmentation
from ssl_geom.callbacks._protocol import Samples
from ssl_geom.callbacks._runtime import seeded
from ssl_geom.callbacks.base import GeometryCallback, Transform, positive_int
from ssl_geom.protocols import ProvidesSameParamsTransform, attached_datamodule

Space = Literal["projector", "encoder"]
SPACES = ("projector", "encoder")

#: Default cadences, chosen by cost (docs/callbacks.md, "Cost and defaults"). Each is shared by
#: the two callbacks that share the work (LabelMatch and FractionUnexplainedVariance the views;
#: WahbaError and RelativeEquivariance the K augmented embeddings), so that work is done once.
VIEWS_EVERY_N_EPOCHS = 5
SHARED_AUGMENTATIONS_EVERY_N_EPOCHS = 20


def apply(transform: Transform, x: Tensor) -> Tensor:
    """``transform(x)``, checked to be a tensor with ``x``'s batch size."""
    out = transform(x)
    if not isinstance(out, Tensor) or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"the transform must return a tensor with the input's batch size {x.shape[0]}; "
            f"got {shape}"
        )
    return out


def select(h: Tensor, z: Tensor | None, space: Space) -> Tensor:
    """L2-normalised embedding in ``space`` (CARE's ``f`` maps to the unit sphere).

    ``h`` and ``z`` hold one embedding per row of their last dimension (``(n, d)``, or
    ``(K, n, d)`` for K draws).
    """
    return F.normalize(z if space == "projector" and z is not None else h, dim=-1)


class AugmentedGeometryCallback(GeometryCallback):
    """A geometry callback that augments its reference set.

    Args:
        transform: batch callable drawing one fresh augmentation per call; default
            ``trainer.datamodule.same_params_transform()``, else ``BatchAugmentation()``.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(self, transform: Transform | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if transform is not None and not callable(transform):
            raise ValueError(
                f"{type(self).__name__}: transform must be a callable batch transform, got "
                f"{type(transform).__name__}"
            )
        self.transform = transform

    def resolved_transform(self, trainer: Trainer) -> Transform:
        """The user's transform, else the datamodule's ``same_params_transform()``, else default."""
        if self.transform is not None:
            return self.transform
        dm = attached_datamodule(trainer)
        return self._store.get(
            ("default_transform",),
            dm.same_params_transform
            if isinstance(dm, ProvidesSameParamsTransform)
            else BatchAugmentation,
        )

    def check_samples(self, trainer: Trainer, pl_module: LightningModule, samples: Samples) -> None:
        super().check_samples(trainer, pl_module, samples)
        x = apply(self.resolved_transform(trainer), samples.x.to(pl_module.device))
        self.features(trainer, pl_module, x, project=self.needs_projector())

    def needs_projector(self) -> bool:
        """Whether the measurement embeds through the projector (checked at fit start)."""
        return True

    def per_sample_views(
        self, trainer: Trainer, pl_module: LightningModule, transform: Transform
    ) -> tuple[Tensor, Tensor]:
        """Two views of every reference sample, each drawn for that sample alone (CPU).

        Drawn once per run: they depend only on the fixed reference inputs and the seed. The
        transform is called on one sample at a time (all first views, then all second views,
        one seeded stream), because a same-parameters transform draws once per call; a
        batched per-row draw would give other views and so other values.
        """

        def draw() -> tuple[Tensor, Tensor]:
            x = self.reference_samples(trainer).x.to(pl_module.device)
            with seeded(self.seed):
                views = [
                    torch.cat([apply(transform, x[i : i + 1]) for i in range(x.shape[0])])
                    for _ in range(2)
                ]
            return views[0].cpu(), views[1].cpu()

        return self._store.get(("views", self.reference, transform, self.seed), draw)

    def view_features(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``h1, z1, h2, z2``: encoder and projector outputs of the two per-sample views."""
        transform = self.resolved_transform(trainer)

        def embed() -> tuple[Tensor, Tensor, Tensor, Tensor]:
            views = self.per_sample_views(trainer, pl_module, transform)
            h, _ = self.draw_features(trainer, pl_module, len(views[0]), lambda: iter(views), False)
            z = self.project(pl_module, h)
            return h[0], z[0], h[1], z[1]

        key = ("view_features", self.reference, transform, self.seed, self.module_key())
        return self._store.get(key, embed, self.stamp(trainer))


class SharedAugmentationCallback(AugmentedGeometryCallback):
    """Base of the CARE measurements: K augmentations, each shared by the whole reference set.

    Args:
        transform: batch callable drawing ONE fresh augmentation per call and applying it
            to every sample; default ``trainer.datamodule.same_params_transform()``.
        n_augmentations: K (CARE uses 20).
        space: ``"projector"`` (CARE's f, default) or ``"encoder"``.
        every_n_epochs: default every 20 epochs: one measurement embeds the reference set
            K + 1 times, the costliest of the six callbacks, so it is spread out (its cost and
            benchmark: docs/callbacks.md, "Cost and defaults"). ``every_n_epochs=1`` gives
            the per-epoch curve.
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        n_augmentations: int = 20,
        space: Space = "projector",
        every_n_epochs: int = SHARED_AUGMENTATIONS_EVERY_N_EPOCHS,
        **kwargs: Any,
    ) -> None:
        super().__init__(transform, every_n_epochs=every_n_epochs, **kwargs)
        self.n_augmentations = positive_int("n_augmentations", n_augmentations)
        if space not in SPACES:
            raise ValueError(f"space must be one of {list(SPACES)}, got {space!r}")
        self.space: Space = space

    def needs_projector(self) -> bool:
        return self.space == "projector"

    def augmented_embeddings(
        self, trainer: Trainer, pl_module: LightningModule, transform: Transform
    ) -> tuple[Tensor, Tensor]:
        """``f(X)`` ``(n, d)`` and ``f(a_k(X))`` ``(K, n, d)``: L2-normalised, one shared draw per k.

        ``f(X)`` is the shared reference-set embedding; the K augmented copies are embedded
        in full chunks across draws (:meth:`~GeometryCallback.draw_features`).
        """
        project = self.space == "projector"

        def augmented() -> Iterator[Tensor]:
            x = self.reference_samples(trainer).x.to(pl_module.device)
            for k in range(self.n_augmentations):
                with seeded(self.seed + k):
                    yield apply(transform, x)

        def compute() -> tuple[Tensor, Tensor]:
            f_x = select(*self.reference_features(trainer, pl_module, project), self.space)
            n = self.reference_samples(trainer).x.shape[0]
            h, z = self.draw_features(trainer, pl_module, n, augmented, project)
            return f_x, select(h, z, self.space)

        key = (
            "augmented",
            self.reference,
            transform,
            self.n_augmentations,
            self.seed,
            self.space,
            self.module_key(),
        )
        return self._store.get(key, compute, self.stamp(trainer))
