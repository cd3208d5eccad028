"""What every geometry callback shares: when to measure, on what, and how to log.

A measurement reads top-down in each subclass's :meth:`GeometryCallback.measure`: the
reference samples (:meth:`reference_samples`) → their features (:meth:`features`) → a
function of :mod:`ssl_geom.metrics` → the returned ``{name: value}``, which this class logs.

When: while fitting, every ``every_n_epochs`` epochs, at the end of validation if validation
runs that epoch, else at the end of the training epoch; at the end of every
``trainer.validate(...)`` (asked for explicitly, so whatever the cadence). In eval mode under
``torch.no_grad`` with isolated random streams, restoring every submodule's ``.training``
flag afterwards (:mod:`ssl_geom.callbacks._runtime`).

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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
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
#: What :meth:`GeometryCallback.measure` returns: 0-d tensors (left on the device until the
#: one transfer in :meth:`GeometryCallback.log_values`) or Python numbers.
Values = Mapping[str, Tensor | float]


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


def in_chunks(
    fn: Callable[[Tensor], Tensor], parts: Iterable[Tensor], chunk_size: int, device: torch.device
) -> Tensor:
    """``fn`` applied to the rows of all ``parts`` in order, ``chunk_size`` rows per call.

    Consecutive parts share a call (the K augmented copies of a small reference set make a
    few full chunks, not K small ones); each part is consumed as it comes, so only one part
    and one chunk are held at a time.
    """
    outputs: list[Tensor] = []
    pending: list[Tensor] = []
    count = 0
    for part in parts:
        pending.append(part)
        count += part.shape[0]
        while count >= chunk_size:
            block = torch.cat(pending)
            outputs.append(fn(block[:chunk_size].to(device)))
            pending, count = [block[chunk_size:]], count - chunk_size
    if count:
        outputs.append(fn(torch.cat(pending).to(device)))
    return torch.cat(outputs)


def to_host(values: Values) -> dict[str, float]:
    """``values`` as Python floats, with one device-to-host transfer for all the tensors."""
    tensors = {name: value for name, value in values.items() if isinstance(value, Tensor)}
    host = {name: float(value) for name, value in values.items() if name not in tensors}
    if tensors:
        device = next(iter(tensors.values())).device
        # float64 keeps every value as measured (MPS has none; Lightning logs float32 anyway).
        dtype = torch.float32 if device.type == "mps" else torch.float64
        stacked = torch.stack([t.to(device, dtype).reshape(()) for t in tensors.values()])
        host.update(zip(tensors, stacked.cpu().tolist(), strict=True))
    return {name: host[name] for name in values}


class GeometryCallback(Callback, ABC):
    """Base class: subclasses implement :meth:`measure` returning ``{name: value}``.

    Args:
        every_n_epochs: while fitting, measure at the end of epochs ``N-1, 2N-1, ...``
            (0-based); ``trainer.validate`` always measures.
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
    def measure(self, trainer: Trainer, pl_module: LightningModule) -> Values:
        """Compute this callback's metrics (already in eval mode, under no_grad).

        Return tensors as they are: :meth:`log_values` moves all of them to the host at once.
        """

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
        fitting = trainer.state.fn == TrainerFn.FITTING
        if (fitting and (epoch + 1) % self.every_n_epochs != 0) or self._last_epoch == epoch:
            return
        self._last_epoch = epoch
        with measurement_mode(pl_module):
            values = self.measure(trainer, pl_module)
        self.log_values(pl_module, values)

    @staticmethod
    def log_values(pl_module: LightningModule, values: Values) -> None:
        for name, value in to_host(values).items():
            pl_module.log(name, value, on_step=False, on_epoch=True, sync_dist=True)

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

    def reference_features(
        self, trainer: Trainer, pl_module: LightningModule, project: bool
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`features` of the reference set, computed once per evaluation for all callbacks.

        The encoder pass is shared by every callback with the same reference set and encoder
        (``ProjectorRank`` needs only ``h``; ``WahbaError`` and ``RelativeEquivariance``
        project it too), so the reference set is embedded once whichever of them measure.
        """
        stamp = self.stamp(trainer)
        h = self._store.get(
            ("reference_h", self.reference, self.encoder, self.chunk_size),
            lambda: self.features(
                trainer, pl_module, self.reference_samples(trainer).x, project=False
            )[0],
            stamp,
        )
        if not project:
            return h, None
        z = self._store.get(
            ("reference_z", self.reference, self.module_key()),
            lambda: self.project(pl_module, h),
            stamp,
        )
        return h, z

    def features(
        self, trainer: Trainer, pl_module: LightningModule, x: Tensor, project: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Encoder vectors ``h`` (and projector outputs ``z``) of all rows of ``x``."""
        h, z = self.draw_features(trainer, pl_module, x.shape[0], lambda: iter([x]), project)
        return h[0], (z[0] if z is not None else None)

    def draw_features(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        n: int,
        draws: Callable[[], Iterator[Tensor]],
        project: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """``h`` (and ``z``), shape ``(K, n, ·)``, of the K batches of n rows ``draws()`` yields.

        The batches (e.g. K augmentations of the reference set) are embedded in chunks of
        ``chunk_size`` rows across batches, so K small batches make a few full forward passes.
        Each process embeds its shard of every batch's rows, and the result is the same full
        tensor on every process. The projector is applied to the gathered ``h`` (it costs
        little next to the encoder).
        """
        encode = encoder_fn(pl_module, self.encoder)

        def embed_rows(lo: int, hi: int) -> tuple[Tensor, ...]:
            h = in_chunks(
                lambda x: as_features(encode(x)),
                (batch[lo:hi] for batch in draws()),
                self.chunk_size,
                pl_module.device,
            )
            # rows first: the shards are gathered along the rows of every batch
            return (h.view(-1, hi - lo, h.shape[1]).transpose(0, 1),)

        (rows,) = embed_sharded(trainer, n, embed_rows)
        h = rows.transpose(0, 1)
        return h, (self.project(pl_module, h) if project else None)

    def project(self, pl_module: LightningModule, h: Tensor) -> Tensor:
        """The projector's outputs of encoder vectors ``h`` (``(..., D)``), in chunks."""
        head = resolve(pl_module, self.projector, PROJECTOR_NAMES, "projector")
        z = in_chunks(
            lambda rows: as_features(head(rows), "projector"),
            [h.reshape(-1, h.shape[-1])],
            self.chunk_size,
            pl_module.device,
        )
        return z.view(*h.shape[:-1], z.shape[-1])
