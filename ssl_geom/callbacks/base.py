"""What every geometry callback shares: when to measure, on what, and how to log.

A measurement reads top-down in each subclass's :meth:`GeometryCallback.measure`: the
reference samples (:meth:`reference_samples`) → their features (:meth:`features`) → a
function of :mod:`ssl_geom.metrics` → the returned ``{name: value}``, which this class logs.

When: every ``every_n_epochs`` epochs, at the end of validation if validation runs that
epoch, else at the end of the training epoch; in eval mode under ``torch.no_grad`` with
isolated random streams, restoring every submodule's ``.training`` flag afterwards
(:mod:`ssl_geom.callbacks._runtime`).

Early failure: at ``setup`` the callback checks what needs no data (attributes, layers);
at ``on_train_start`` it runs its whole pipeline on two reference samples, so a backbone
that returns a tuple, an unlabelled dataset or a transform that changes the batch size
fails before the first training step, not after epoch 0's work is lost.

DDP: every process holds the same reference inputs, embeds a contiguous shard and the rows
are all-gathered, so every metric is computed on the *global* reference set exactly as in
a single process and every rank logs the same number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._protocol import (
    PROJECTOR_NAMES,
    BatchFn,
    ModuleSpec,
    Samples,
    default_batch_fn,
    encoder_fn,
    resolve,
)
from ssl_geom.callbacks._reference import ReferenceSet, Source
from ssl_geom.callbacks._runtime import embed_sharded, measurement_mode
from ssl_geom.callbacks._shared import SharedStore

Transform = Callable[[Tensor], Tensor]


def positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def as_features(h: object, role: str = "encoder") -> Tensor:
    """``h`` if it is a ``(B, D)`` tensor, else a ValueError saying how to pass the ``role``."""
    if not isinstance(h, Tensor) or h.ndim != 2:
        got = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(
            f"the {role}'s output must be one (B, D) tensor, got {got}; pass {role}=callable "
            "returning it (e.g. encoder=lambda x: model.backbone(x)[0] for a tuple output)"
        )
    return h.float()


class GeometryCallback(Callback, ABC):
    """Base class: subclasses implement :meth:`measure` returning ``{name: value}``.

    Args:
        every_n_epochs: measure at the end of epochs ``N-1, 2N-1, ...`` (0-based).
        reference_size: number of samples in the fixed reference set.
        reference_seed: seed of the reference subset; ``None`` takes the first ones.
        reference_source: ``"validation"`` (default) or ``"train"`` (the training split).
        seed: seed of the measurement's own random draws (augmentations, views).
        encoder: attribute path or callable ``x -> features``; default ``backbone``.
        projector: attribute path or callable ``h -> z``; default ``projector`` or
            ``projection_head``.
        batch_fn: ``batch -> Samples(x, [y, (y_coarse)])``; default reads ``(x, y)``,
            ``(x, y, y_coarse)``, ``(views, y)``.
        chunk_size: rows per forward pass when embedding the reference set.
    """

    def __init__(
        self,
        *,
        every_n_epochs: int = 1,
        reference_size: int = 512,
        reference_seed: int | None = 0,
        reference_source: Source = "validation",
        seed: int = 0,
        encoder: ModuleSpec = None,
        projector: ModuleSpec = None,
        batch_fn: BatchFn | None = None,
        chunk_size: int = 256,
    ) -> None:
        self.every_n_epochs = positive_int("every_n_epochs", every_n_epochs)
        self.reference = ReferenceSet(
            reference_size, reference_seed, reference_source, batch_fn or default_batch_fn
        )
        self.seed = seed
        self.encoder = encoder
        self.projector = projector
        self.chunk_size = positive_int("chunk_size", chunk_size)
        self.shared = SharedStore()
        self._store = self.shared
        self._last_epoch: int | None = None

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        """Compute this callback's metrics (already in eval mode, under no_grad)."""

    def check_setup(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fail at setup on what needs no data: the encoder (and projector) can be found."""
        encoder_fn(pl_module, self.encoder)

    def check_samples(self, trainer: Trainer, pl_module: LightningModule, samples: Samples) -> None:
        """Fail at fit start: run what :meth:`measure` runs on two reference samples."""
        self.features(trainer, pl_module, samples.x, project=False)

    # ------------------------------------------------------------------ lightning hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning sets Trainer.callbacks at run time without declaring it on the class
        callbacks = trainer.callbacks  # type: ignore[attr-defined]
        first = next(c for c in callbacks if isinstance(c, GeometryCallback))
        if first is self:
            self.shared.clear()
        self._store = first.shared
        self._last_epoch = None
        if stage == "fit":
            self.check_setup(trainer, pl_module)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        with measurement_mode(pl_module):
            self.check_samples(trainer, pl_module, self.reference.load(trainer, limit=2))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._maybe_run(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._maybe_run(trainer, pl_module)

    def _maybe_run(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs != 0 or self._last_epoch == epoch:
            return
        self._last_epoch = epoch
        with measurement_mode(pl_module):
            values = self.measure(trainer, pl_module)
        self.log_values(pl_module, values)

    @staticmethod
    def log_values(pl_module: LightningModule, values: dict[str, float]) -> None:
        for name, value in values.items():
            pl_module.log(name, float(value), on_step=False, on_epoch=True, sync_dist=True)

    # ------------------------------------------------------------------ helpers
    def stamp(self, trainer: Trainer) -> tuple[int, int]:
        """Identifies 'the current weights' for values shared within one evaluation."""
        return trainer.current_epoch, trainer.global_step

    def reference_samples(self, trainer: Trainer) -> Samples:
        """The fixed reference set (CPU), loaded once per run and shared by equal specs."""
        return self._store.get(("reference", self.reference), lambda: self.reference.load(trainer))

    def module_key(self) -> tuple[Any, ...]:
        """What identifies 'the same embedding' in the shared store."""
        return (self.encoder, self.projector, self.chunk_size)

    def features(
        self, trainer: Trainer, pl_module: LightningModule, x: Tensor, project: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Encoder vectors ``h`` (and projector outputs ``z``) of all rows of ``x``.

        Each process embeds its shard of rows; the result is the same full ``(n, ·)``
        matrix on every process.
        """
        encode = encoder_fn(pl_module, self.encoder)
        head = resolve(pl_module, self.projector, PROJECTOR_NAMES, "projector") if project else None

        def embed_rows(lo: int, hi: int) -> tuple[Tensor, ...]:
            hs, zs = [], []
            for start in range(lo, hi, self.chunk_size):
                h = as_features(
                    encode(x[start : min(start + self.chunk_size, hi)].to(pl_module.device))
                )
                hs.append(h)
                if head is not None:
                    zs.append(as_features(head(h), "projector"))
            return (torch.cat(hs), torch.cat(zs)) if head is not None else (torch.cat(hs),)

        out = embed_sharded(trainer, x.shape[0], embed_rows)
        return out[0], (out[1] if head is not None else None)
