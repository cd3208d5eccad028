"""Wahba error of the embeddings under K shared augmentations (CARE Sec. 4, Fig. 2c).

Gupta et al., "Structuring Representation Geometry with Rotationally Equivariant
Contrastive Learning" (CARE, arXiv:2306.13924), Sec. 4: for an augmentation ``a`` applied
with the same parameters to n samples, ``W_f = min_{R ∈ SO(d)} ||R F − F_a||_Fro`` on the
L2-normalised embeddings (CARE's ``f`` maps to the unit sphere). Sec. 5 (Fig. 2c) samples
one augmentation per trial, computes ``W_f`` "over the test data", repeats 20 times and
compares the average and the worst case; so this callback logs the mean and the max over
K draws. There is no per-sample normalisation and no averaging over samples in the paper.

Two measurements:

- during training, every ``every_n_epochs`` (20 by default), on the fixed reference set (512
  validation samples by default): ``geometry/wahba_mean``, ``geometry/wahba_max`` — the curve;
- with ``test_set=True``, at the end of ``trainer.test(...)`` over the *whole* test
  dataset, as Fig. 2c: ``geometry/wahba_test_mean``, ``geometry/wahba_test_max``.
  :func:`loader_wahba_errors` computes the same on any trained module and DataLoader.

Comparing values: ``W_f`` is a Frobenius norm over n unit vectors, so it grows like
``√n`` (each sample adds its squared residual ``||R f(x_i) − f(a(x_i))||² ∈ [0, 4]``).
Compare numbers only at equal n — the reference curve with itself, the test value with
other test values on the same test set — or divide by ``√n`` to get the root-mean-square
per-sample residual, which lies in [0, 2] whatever n.

Optionally (CARE Fig. 6) histograms of ``cos(f(x), f(a(x)))`` over all samples and draws go
to TensorBoard: one for the measured augmentation and one per augmentation type (crop, flip,
colour jitter, grayscale by default), each over its own K draws — so figures cost one more
set of K forward passes of the reference set per type; keep them for occasional epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from torch.utils.data import DataLoader

from ssl_geom.augment.batch import SINGLE_KINDS, BatchAugmentation
from ssl_geom.callbacks._protocol import (
    PROJECTOR_NAMES,
    BatchFn,
    ModuleSpec,
    default_batch_fn,
    encoder_fn,
    resolve,
)
from ssl_geom.callbacks._reference import first_loader
from ssl_geom.callbacks._runtime import measurement_mode, seeded
from ssl_geom.callbacks.augmented import (
    SHARED_AUGMENTATIONS_EVERY_N_EPOCHS,
    SharedAugmentationCallback,
    Space,
    apply,
    select,
)
from ssl_geom.callbacks.base import Transform, Values, as_features
from ssl_geom.callbacks.figures import log_histogram
from ssl_geom.metrics import wahba_errors


class WahbaError(SharedAugmentationCallback):
    """Log ``geometry/wahba_mean`` and ``geometry/wahba_max`` over K shared augmentations.

    Args:
        transform, n_augmentations, space, every_n_epochs: see
            :class:`~ssl_geom.callbacks.augmented.SharedAugmentationCallback`; by default it
            measures every 20 epochs, as ``RelativeEquivariance``, with which it shares the K
            augmented embeddings. CARE measures at the end of training (``test_set=True``).
        test_set: also measure over the whole test dataset at the end of
            ``trainer.test(...)`` (CARE Fig. 2c), logged as ``geometry/wahba_test_mean`` and
            ``geometry/wahba_test_max``.
        log_figures: also log histograms of ``cos(f(x), f(a(x)))`` (CARE Fig. 6) as
            ``geometry/cos_fx_fax`` (the measured augmentation) and
            ``geometry/cos_fx_fax/<name>`` for each of ``figure_transforms``.
        figure_transforms: ``{name: transform}`` for the per-type histograms; default one
            :class:`~ssl_geom.callbacks.BatchAugmentation` per single op (crop, flip,
            color_jitter, grayscale).
        **kwargs: see :class:`~ssl_geom.callbacks.GeometryCallback`.
    """

    def __init__(
        self,
        transform: Transform | None = None,
        n_augmentations: int = 20,
        space: Space = "projector",
        test_set: bool = False,
        log_figures: bool = False,
        figure_transforms: Mapping[str, Transform] | None = None,
        every_n_epochs: int = SHARED_AUGMENTATIONS_EVERY_N_EPOCHS,
        **kwargs: Any,
    ) -> None:
        super().__init__(transform, n_augmentations, space, every_n_epochs, **kwargs)
        self.test_set = test_set
        self.log_figures = log_figures
        if figure_transforms is None:
            figure_transforms = {kind: BatchAugmentation(kind) for kind in SINGLE_KINDS}
        for name, figure_transform in figure_transforms.items():
            if not callable(figure_transform):
                raise ValueError(
                    f"figure_transforms[{name!r}] must be a callable batch transform, got "
                    f"{type(figure_transform).__name__}"
                )
        self.figure_transforms = dict(figure_transforms)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        f, draws = self.augmented_embeddings(trainer, pl_module, self.resolved_transform(trainer))
        errors = wahba_errors(f, draws)
        if self.log_figures:
            log_histogram(trainer, "geometry/cos_fx_fax", _cosines(f, draws))
            for name, figure_transform in self.figure_transforms.items():
                typed = self.augmented_embeddings(trainer, pl_module, figure_transform)
                log_histogram(trainer, f"geometry/cos_fx_fax/{name}", _cosines(*typed))
        return {"geometry/wahba_mean": errors.mean(), "geometry/wahba_max": errors.max()}

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader = first_loader(trainer.test_dataloaders)
        if not self.test_set or loader is None:
            return
        # Every process reads the whole dataset in order (no DistributedSampler), so each
        # computes the full-test-set value itself; duplicated work, but no gather to pad.
        sequential = DataLoader(
            loader.dataset, batch_size=loader.batch_size or 256, collate_fn=loader.collate_fn
        )
        errors = loader_wahba_errors(
            pl_module,
            sequential,
            self.resolved_transform(trainer),
            n_augmentations=self.n_augmentations,
            seed=self.seed,
            space=self.space,
            encoder=self.encoder,
            projector=self.projector,
            batch_fn=self.reference.batch_fn,
        )
        self.log_values(
            pl_module,
            {"geometry/wahba_test_mean": errors.mean(), "geometry/wahba_test_max": errors.max()},
        )


def loader_augmented_embeddings(
    pl_module: LightningModule,
    loader: DataLoader,
    transform: Transform,
    *,
    n_augmentations: int = 20,
    seed: int = 0,
    space: Space = "projector",
    encoder: ModuleSpec = None,
    projector: ModuleSpec = None,
    batch_fn: BatchFn = default_batch_fn,
) -> tuple[Tensor, list[Tensor]]:
    """``(f, [f_a1, ..., f_aK])``: embeddings of every sample of ``loader`` before and after each
    of K shared augmentations (CPU tensors, rows in loader order).

    Augmentation k is drawn with the RNG seeded to ``seed + k`` *for every batch*, so all
    batches get the same parameters (``transforms.v2`` draws them per call, independently of
    the batch size) and only the embeddings are kept in memory, never all augmented images.
    Iterate ``loader`` in a fixed order (no shuffling). :class:`~ssl_geom.callbacks.BatchAugmentation`
    maps each batch to [0, 1] by that batch's own range, so its colour ops differ slightly
    between batches; a datamodule's ``same_params_transform()`` has no such dependence.
    """
    encode = encoder_fn(pl_module, encoder)
    head = (
        resolve(pl_module, projector, PROJECTOR_NAMES, "projector")
        if space == "projector"
        else None
    )

    def embed(x: Tensor) -> Tensor:
        h = as_features(encode(x))
        return select(
            h, as_features(head(h), "projector") if head is not None else None, space
        ).cpu()

    originals: list[Tensor] = []
    augmented: list[list[Tensor]] = [[] for _ in range(n_augmentations)]
    with measurement_mode(pl_module):
        for batch in loader:
            x = batch_fn(batch).x.to(pl_module.device)
            originals.append(embed(x))
            for k in range(n_augmentations):
                with seeded(seed + k):
                    augmented[k].append(embed(apply(transform, x)))
    if not originals:
        raise ValueError("loader_augmented_embeddings: the loader yielded no batches")
    return torch.cat(originals), [torch.cat(parts) for parts in augmented]


def loader_wahba_errors(
    pl_module: LightningModule, loader: DataLoader, transform: Transform, **kwargs: Any
) -> Tensor:
    """``W_f`` of each of K shared augmentations over every sample of ``loader`` (shape ``(K,)``).

    CARE Fig. 2c on a trained module (no Trainer needed); ``kwargs`` as
    :func:`loader_augmented_embeddings`.
    """
    f, augmented = loader_augmented_embeddings(pl_module, loader, transform, **kwargs)
    return wahba_errors(f, torch.stack(augmented))


def _cosines(f: Tensor, draws: Tensor) -> Tensor:
    """``cos(f(x_i), f(a_k(x_i)))`` for every draw k and sample i (the embeddings are unit-norm)."""
    return (draws * f).sum(dim=-1).flatten()
