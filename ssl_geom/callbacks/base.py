"""Shared protocol of the geometry callbacks: when to measure, on what, and how to log.

Every callback here measures on a *fixed probe set* — ``probe_size`` samples picked once
from the validation dataset (see :mod:`ssl_geom.callbacks._probe`) — every
``every_n_epochs`` epochs: at the end of validation if validation runs that epoch, else at
the end of the training epoch. The measurement runs in eval mode under ``torch.no_grad``
with its own seeded random streams, and restores every submodule's ``.training`` flag,
the grad mode and the global RNG states afterwards.

DDP: every process holds the same probe inputs, embeds a contiguous shard of them and
all-gathers the embeddings, so every metric is computed on the *global* probe set exactly
as in a single process and every rank logs the same number (``sync_dist=True`` then
averages identical values, which keeps Lightning's multi-device checks quiet).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor

from ssl_geom.callbacks._probe import concatenate, evaluation_loader, iterate, select_indices
from ssl_geom.callbacks._protocol import (
    PROJECTOR_NAMES,
    BatchFn,
    ModuleSpec,
    ProbeBatch,
    default_batch_fn,
    encoder_fn,
    resolve,
)
from ssl_geom.callbacks._runtime import cached, gather_rows, measurement_mode, shard_bounds

Transform = Callable[[Tensor], Tensor]


def positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class GeometryCallback(Callback, ABC):
    """Base class: subclasses implement :meth:`measure` returning ``{name: value}``.

    Args:
        every_n_epochs: measure at the end of epochs ``N-1, 2N-1, ...`` (0-based).
        probe_size: number of validation samples in the fixed probe set.
        probe_seed: seed of the probe subset; ``None`` takes the first ``probe_size``.
        seed: seed of the measurement's own random draws (augmentations, views).
        encoder: attribute path or callable ``x -> features``; default ``backbone``.
        projector: attribute path or callable ``h -> z``; default ``projector`` or
            ``projection_head``.
        batch_fn: ``batch -> ProbeBatch(x, [y, (y_coarse)])``; default reads ``(x, y)``,
            ``(x, y, y_coarse)``, ``(views, y)``.
        chunk_size: rows per forward pass when embedding the probe set.
    """

    def __init__(
        self,
        *,
        every_n_epochs: int = 1,
        probe_size: int = 512,
        probe_seed: int | None = 0,
        seed: int = 0,
        encoder: ModuleSpec = None,
        projector: ModuleSpec = None,
        batch_fn: BatchFn | None = None,
        chunk_size: int = 256,
    ) -> None:
        self.every_n_epochs = positive_int("every_n_epochs", every_n_epochs)
        self.probe_size = positive_int("probe_size", probe_size)
        if probe_size < 2:
            raise ValueError(f"probe_size must be at least 2 (pairs are needed), got {probe_size}")
        self.probe_seed = probe_seed
        self.seed = seed
        self.encoder = encoder
        self.projector = projector
        self.batch_fn = batch_fn or default_batch_fn
        self.chunk_size = positive_int("chunk_size", chunk_size)
        self._last_epoch: int | None = None

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        """Compute this callback's metrics (already in eval mode, under no_grad)."""

    def check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fail at setup, before training, on anything that would fail at measurement."""
        encoder_fn(pl_module, self.encoder)

    # ------------------------------------------------------------------ lightning hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._last_epoch = None
        if stage == "fit":
            self.check(trainer, pl_module)

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
        for name, value in values.items():
            pl_module.log(name, float(value), on_step=False, on_epoch=True, sync_dist=True)

    # ------------------------------------------------------------------ helpers
    def probe(self, trainer: Trainer) -> ProbeBatch:
        """The fixed probe set (CPU), loaded once per trainer and shared by callbacks."""
        loader = evaluation_loader(trainer)
        key = ("probe", id(loader.dataset), self.probe_size, self.probe_seed, self.batch_fn)

        def load() -> ProbeBatch:
            indices = select_indices(loader, self.probe_size, self.probe_seed)
            probe = concatenate(iterate(loader, indices, self.probe_size, self.batch_fn))
            if probe.x.shape[0] < 2:
                raise ValueError(f"the probe set has {probe.x.shape[0]} sample(s); need >= 2")
            return probe

        return cached(trainer, key, load, per_evaluation=False)

    def module_key(self) -> tuple[Any, ...]:
        """What identifies 'the same embedding' for the shared cache."""
        return (self.encoder, self.projector, self.chunk_size)

    def features(
        self, trainer: Trainer, pl_module: LightningModule, x: Tensor, project: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Encoder vectors ``h`` (and projector outputs ``z``) of all rows of ``x``.

        Each process embeds its shard of rows; the result is gathered, so it is the same
        full ``(n, ·)`` matrix on every process.
        """
        encode = encoder_fn(pl_module, self.encoder)
        head = resolve(pl_module, self.projector, PROJECTOR_NAMES, "projector") if project else None
        n = x.shape[0]
        lo, hi = shard_bounds(n, trainer.world_size, trainer.global_rank)
        hs, zs = [], []
        for start in range(lo, hi, self.chunk_size):
            chunk = x[start : min(start + self.chunk_size, hi)].to(pl_module.device)
            h = encode(chunk)
            if h.ndim != 2:
                raise ValueError(f"encoder embedding must be (B, D); got {tuple(h.shape)}")
            hs.append(h.float())
            if head is not None:
                zs.append(head(h).float())
        h_local = torch.cat(hs) if hs else self._empty(pl_module, x, encode)
        h_all = gather_rows(trainer, h_local, n)
        if head is None:
            return h_all, None
        z_local = torch.cat(zs) if zs else head(h_local).float()
        return h_all, gather_rows(trainer, z_local, n)

    @staticmethod
    def _empty(pl_module: LightningModule, x: Tensor, encode: Callable[[Tensor], Tensor]) -> Tensor:
        # A rank with no rows (more processes than probe samples) still needs the width.
        return encode(x[:1].to(pl_module.device)).float()[:0]
