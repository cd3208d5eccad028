"""``SSLMethod``: the LightningModule every self-supervised method extends.

What the base does, so a method file only writes its loss:

- builds ``self.backbone`` from the backbone registry (``backbone`` name +
  ``backbone_kwargs``, ``in_channels`` linked from the DataModule); the geometry callbacks
  find it, and the projector a method builds, under ``backbone`` and ``projector``;
- offers :meth:`SSLMethod.make_projector` (an MLP or a single linear layer from the
  ``projector_*`` arguments, see :func:`ssl_geom.methods.heads.build_projector`);
- trains an **online linear probe** on the detached backbone map and logs
  ``probe/train_acc`` and, on validation, ``probe/acc`` (``probe/test_acc`` on test);
- stops a **diverged run**: the first step whose loss (or any logged loss term) is not
  finite is recorded on the device and raised as :class:`DivergedError` (step, terms,
  lr) every ``divergence_check_every_n_steps`` steps, at epoch ends, before validation and
  before any checkpoint is written (see :mod:`ssl_geom.methods.divergence`);
- configures the optimizer (LARS / SGD / Adam / AdamW), the per-step warm-up + cosine
  schedule, weight-decay exclusion of biases and norm parameters, and logs the effective
  learning rate ``lr`` every step;
- unpacks batches: SSL train batches ``(views, y)`` (``views`` a list of ``(B, C, H, W)``
  tensors, the un-augmented original last when the DataModule has
  ``include_original=True``); eval batches ``(x, y)`` or ``(x, y_fine, y_coarse)``.

Why an online probe (H-SSL's "detached classifier"): a linear classifier trained on the
detached backbone map alongside the SSL objective gives a cheap, continuous readout of
representation quality during training. Because its input is detached it never sends
gradients into the backbone: it *measures* the representation rather than shaping it, so
the SSL run is the same with or without it (up to its own parameters). It reads the map
through the backbone's classifier readout (``backbone.build_readout()``:
H-SSL App. A's readout for H-SSL backbones, global average pooling for plain ResNets),
whose parameters belong to the probe. It has its own parameter group (``probe_lr``, no
weight decay, no LARS adaptation). The readout's output is standardised by a
``BatchNorm1d`` without affine parameters (H-SSL App. A puts a BatchNorm before its
classifier too): the backbone's features can be tiny — a frozen random MNIST CNN gives
``embed`` values of std 0.07 — and a plain linear layer at ``probe_lr`` then barely moves
in a short run (the measurement: docs/methods.md).
Samples with label ``< 0`` (STL10's unlabeled split) get zero weight in the probe's loss
and accuracy (a weighted mean, so no step synchronises the GPU to count them); they do
take part in the probe's BatchNorm statistics, which standardise features of the same
image distribution. It is not a substitute for the final linear evaluation on frozen
features.

How a subclass plugs in
-----------------------
1. Define ``__init__`` with the method's own type-hinted arguments plus ``**kwargs``
   forwarded to ``super().__init__(**kwargs)``. ``save_hyperparameters()`` (called here)
   records the arguments of the whole ``__init__`` chain, so every one is settable
   from YAML (name arguments YAML cannot hold in the class attribute
   ``hparams_ignore``).
2. *After* ``super().__init__()`` build what the method needs from ``self.backbone`` and
   ``self.hparams`` (solo-learn's pattern): usually
   ``self.projector = self.make_projector(self.backbone.embed_dim)``, or another input
   size (H-SSL: the length of a fiber bundle). The base builds no projector, so a method
   that needs none (Supervised, Frozen) has none.
3. Implement :meth:`ssl_step` ``(views, batch_idx) -> SSLStepOutput``: the SSL loss,
   the ``(B, C, G, H, W)`` backbone map of one view for the probe (or ``None``), and a
   dict of extra scalars to log (logged as ``train/<name>``). Keep it free of host-device
   synchronisation (no ``.item()``, ``bool(tensor)``, boolean-mask indexing or tensors
   built from Python values on the device): the training loop never waits for the GPU.
4. Extra trainable modules assigned as attributes are optimised with the backbone
   (frozen ones, ``requires_grad=False``, are skipped); override :meth:`ssl_modules`
   to change that set.
5. Random draws of a step (fiber positions, augmentation pairs) take their source from
   :meth:`draw_generator` / :meth:`draw_seed`: ``None`` on rank 0 (draw as before, from the
   global RNG), a source of its own on every other rank, seeded by the run's seed, the rank
   and the step, whose step count is saved in checkpoints (:mod:`ssl_geom.rank_draws`).

``batch_size`` is the *global* batch, the paper's (the CLI links it from ``data.batch_size``);
each of the ``world_size`` processes trains on ``batch_size / world_size`` samples
(:meth:`SSLMethod.per_process_batch_size`), so a run on 1, 8 or 64 GPUs optimises the same
objective with the same learning rate. Methods check shape-dependent options against it at
construction and against the per-process share in ``setup``; ``lr_scaling`` scales by it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import lightning as L
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from ssl_geom.backbones import StructuredBackbone, build_backbone, structured_to_vector
from ssl_geom.global_batch import per_process_batch_size
from ssl_geom.methods.divergence import DivergenceMonitor
from ssl_geom.methods.heads import build_projector
from ssl_geom.methods.optim import (
    LR_SCALINGS,
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_schedule,
    check_choice,
    scaled_lr,
    weight_decay_groups,
)
from ssl_geom.methods.probe import OnlineProbe, ProbeAccuracy
from ssl_geom.protocols import ProvidesBatchSize, attached_datamodule
from ssl_geom.rank_draws import RankDraws

OptimizerName = Literal["lars", "sgd", "adam", "adamw"]
ScheduleName = Literal["warmup_cosine", "constant"]
LRScaling = Literal["none", "linear", "sqrt"]


@dataclass
class SSLStepOutput:
    """What :meth:`SSLMethod.ssl_step` returns.

    ``loss``: the SSL objective to minimise; ``probe_features``: the ``(B, C, G, H, W)``
    backbone map of one view for the online probe (detached by the base, read through the
    probe's readout), ``None`` to skip the probe this step; ``logs``: extra scalars, logged
    as ``train/<name>`` and watched for divergence like the loss.
    """

    loss: torch.Tensor
    probe_features: torch.Tensor | None = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class SSLMethod(L.LightningModule):
    """Base LightningModule: backbone, projector, online probe, optimizer; see module doc.

    Args:
        backbone: registered backbone name (``ssl_geom.backbones.list_backbones()``).
        backbone_kwargs: extra keyword arguments for the backbone factory.
        in_channels: image channels (linked from ``data.in_channels`` by the CLI);
            ``None`` keeps the backbone's default.
        num_classes: classes of the online probe (linked from ``data.num_classes``);
            ``None`` trains no probe.
        batch_size: global batch size over all processes (linked from ``data.batch_size``),
            used for early validation and ``lr_scaling``; ``None`` = read it from the DataModule.
        projector_hidden_dims: hidden widths of the projection MLP that
            :meth:`make_projector` builds (methods without a projector ignore the
            ``projector_*`` arguments); ``[]`` = one linear layer.
        projector_out_dim: projection (loss-space) dimension.
        projector_batch_norm: BatchNorm after each hidden layer.
        projector_final_batch_norm: BatchNorm after the last layer.
        projector_bias: bias in every linear layer; ``None`` = only where no BN follows.
            The geometry paper's linear projector ``g(h) = Wᵀh`` has ``False``.
        optimizer: ``lars``, ``sgd``, ``adam`` or ``adamw``.
        lr: base learning rate (after warm-up), used as given unless ``lr_scaling`` says otherwise.
        weight_decay: weight decay of the decayed group.
        momentum: momentum of SGD / LARS.
        betas: Adam / AdamW betas.
        exclude_bias_norm_from_wd: biases and norm parameters get no weight decay (nor LARS
            adaptation).
        lr_schedule: ``warmup_cosine`` or ``constant``; stepped every optimizer step.
        warmup_epochs: linear warm-up length in epochs (fractions allowed; converted to steps).
        warmup_steps: warm-up length in optimizer steps; overrides ``warmup_epochs`` when set.
        final_lr_ratio: the cosine ends at ``final_lr_ratio * lr``.
        lr_scaling: ``none`` (default), ``linear`` or ``sqrt`` in ``global_batch /
            lr_reference_batch_size``; the scaled value is printed and logged as ``lr``.
        lr_reference_batch_size: the batch size ``lr`` refers to when scaling.
        probe_lr: learning rate of the online probe (same optimizer and schedule).
        channels_last: store the model's conv weights channels_last (NHWC),
            the layout the GPU's tensor-core convolutions use, so no step transposes
            them. ``None`` (default): on CUDA, when every 4-D parameter of the backbone is an
            ``nn.Conv2d`` weight (the ResNets; not the e2cnn/SESN backbones, whose filters are
            expanded from a basis each step). ``False`` opts out.
        divergence_check_every_n_steps: how often (in training steps) the device-side
            record of a non-finite loss is read (one host-device synchronisation); it is
            also read at every epoch end, before validation and before every checkpoint.
    """

    #: ``__init__`` arguments kept out of ``hparams`` (objects that YAML cannot hold,
    #: e.g. a transform passed from Python).
    hparams_ignore: ClassVar[tuple[str, ...]] = ()
    #: Built by the methods that project (see "How a subclass plugs in"); Supervised and
    #: Frozen have none. Declared so that :meth:`project` type-checks.
    projector: nn.Module

    @property
    def hparams(self) -> AttributeDict:
        """The saved ``__init__`` arguments, read as attributes (``self.hparams.lr``).

        Lightning types the property ``AttributeDict | MutableMapping``, on which a type
        checker refuses attribute access; ``save_hyperparameters`` always stores an
        ``AttributeDict``, so this only narrows the type.
        """
        return cast(AttributeDict, super().hparams)

    def __init__(
        self,
        backbone: str = "resnet18_cifar",
        backbone_kwargs: dict[str, Any] | None = None,
        in_channels: int | None = None,
        num_classes: int | None = None,
        batch_size: int | None = None,
        projector_hidden_dims: Sequence[int] = (2048,),
        projector_out_dim: int = 128,
        projector_batch_norm: bool = True,
        projector_final_batch_norm: bool = False,
        projector_bias: bool | None = None,
        optimizer: OptimizerName = "lars",
        lr: float = 0.3,
        weight_decay: float = 1e-6,
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        exclude_bias_norm_from_wd: bool = True,
        lr_schedule: ScheduleName = "warmup_cosine",
        warmup_epochs: float = 10.0,
        warmup_steps: int | None = None,
        final_lr_ratio: float = 0.0,
        lr_scaling: LRScaling = "none",
        lr_reference_batch_size: int = 256,
        probe_lr: float = 0.1,
        channels_last: bool | None = None,
        divergence_check_every_n_steps: int = 50,
    ) -> None:
        super().__init__()
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_choice("lr_schedule", lr_schedule, SCHEDULES)
        check_choice("lr_scaling", lr_scaling, LR_SCALINGS)
        if optimizer == "lars" and weight_decay == 0:
            raise ValueError(
                "optimizer='lars' with weight_decay=0: lightly's LARS skips the layer-wise "
                "adaptation for groups without weight decay, so this would be plain SGD. "
                "Use optimizer='sgd' or a positive weight_decay."
            )
        for name, value in (("lr", lr), ("probe_lr", probe_lr), ("weight_decay", weight_decay)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if warmup_steps is not None and warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0 (or None), got {warmup_steps}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or None), got {batch_size}")
        if divergence_check_every_n_steps < 1:
            raise ValueError(
                f"divergence_check_every_n_steps must be >= 1, got {divergence_check_every_n_steps}"
            )
        self.save_hyperparameters(ignore=list(self.hparams_ignore))

        kwargs = dict(backbone_kwargs or {})
        if in_channels is not None:
            if kwargs.get("in_channels", in_channels) != in_channels:
                raise ValueError(
                    f"backbone_kwargs.in_channels={kwargs['in_channels']} contradicts "
                    f"in_channels={in_channels} (linked from the data); drop one of them"
                )
            kwargs["in_channels"] = in_channels
        self.backbone: StructuredBackbone = build_backbone(backbone, **kwargs)
        self.probe: OnlineProbe | None = None
        if num_classes is not None:
            if num_classes < 2:
                raise ValueError(
                    f"num_classes must be >= 2 (or None for no probe), got {num_classes}"
                )
            self.probe = OnlineProbe(self.backbone.build_readout(), num_classes)
            self.probe_train_acc = ProbeAccuracy()
            self.probe_val_acc = ProbeAccuracy()
            self.probe_test_acc = ProbeAccuracy()
        self._divergence = DivergenceMonitor()
        self._draws = RankDraws()

    # ------------------------------------------------------------------ memory format
    def configure_model(self) -> None:
        """Switch to channels_last before the strategy moves the model and wraps it (DDP)."""
        if self._wants_channels_last():
            # Every 4-D parameter and buffer: the backbone, and the copies some methods keep
            # (MoCo's key encoder). A method without a projector (Supervised, Frozen) is fine.
            self.to(memory_format=torch.channels_last)

    def _wants_channels_last(self) -> bool:
        choice = self.hparams.get("channels_last")
        if choice is not None:
            return bool(choice)
        trainer = self._trainer
        if trainer is None or trainer.strategy.root_device.type != "cuda":
            return False
        conv_weights = {id(m.weight) for m in self.backbone.modules() if isinstance(m, nn.Conv2d)}
        four_d = [p for p in self.backbone.parameters() if p.ndim == 4]
        return bool(four_d) and all(id(p) in conv_weights for p in four_d)

    # ------------------------------------------------------------------ subclass hooks
    def make_projector(self, input_dim: int) -> nn.Module:
        """A projection head ``input_dim -> projector_out_dim`` from the ``projector_*`` args."""
        hp = self.hparams
        return build_projector(
            input_dim,
            list(hp.projector_hidden_dims),
            hp.projector_out_dim,
            batch_norm=hp.projector_batch_norm,
            final_batch_norm=hp.projector_final_batch_norm,
            bias=hp.projector_bias,
        )

    def ssl_step(self, views: list[torch.Tensor], batch_idx: int) -> SSLStepOutput:
        """The method's SSL loss on one train batch's ``views`` (see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must implement ssl_step")

    def ssl_modules(self) -> list[nn.Module]:
        """Modules optimised with the SSL loss: every child except the probe and metrics."""
        return [
            m
            for name, m in self.named_children()
            if name != "probe" and not name.startswith("probe_")
        ]

    def draw_seed(self) -> int | None:
        """The seed of this step's random draws: ``None`` on rank 0, its own on other ranks.

        Call it once per training step (it counts the steps); see :mod:`ssl_geom.rank_draws`.
        """
        return self._draws.next_seed(self.global_rank)

    def draw_generator(self, device: torch.device) -> torch.Generator | None:
        """:meth:`draw_seed` as a generator on ``device`` (``None``: the global RNG)."""
        return self._draws.next_generator(self.global_rank, device)

    # ------------------------------------------------------------------ forward passes
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downstream representation ``(B, C)``: ``backbone.embed(x)``."""
        return self.backbone.embed(x)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(map, projector(embed))``: the backbone map (for the probe) and the projection.

        ``embed`` is the backbone's pooled vector (max over ``G``, mean over space), so
        this is the A-SSL pipeline ``projector(backbone.embed(x))`` for one batch; needs
        ``self.projector``.
        """
        z = self.backbone(x)
        return z, self.projector(structured_to_vector(z))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        views, y = self.unpack_train_batch(batch)
        out = self.ssl_step(views, batch_idx)
        n = y.shape[0]
        # Not on the progress bar: Lightning reads every step-level progress-bar value with
        # .item() after each batch, a host-device synchronisation per step (issue 11). The
        # logger still gets it every log_every_n_steps, and the bar shows lr and probe/acc.
        self.log("train/loss", out.loss, batch_size=n)
        for name, value in out.logs.items():
            self.log(f"train/{name}", value, batch_size=n)
        lr = self._current_lr()
        # A CPU tensor: Lightning would turn a float into a device tensor, and that
        # pageable host-to-device copy synchronises the GPU every step (the Trainer against
        # a bare loop: benchmarks/training_step.py, docs/benchmarks.md).
        self.log("lr", torch.tensor(lr), prog_bar=True, batch_size=n)
        loss = out.loss
        terms = {"train/loss": out.loss, **{f"train/{k}": v for k, v in out.logs.items()}}
        # The probe's BatchNorm needs two samples; the batch length is known without a sync.
        if self.probe is not None and out.probe_features is not None and n >= 2:
            probe_loss = self.probe_loss(out.probe_features.detach(), y, self.probe_train_acc)
            loss = loss + probe_loss
            terms["probe/train_loss"] = probe_loss
        self._divergence.record(terms, self.global_step, lr)
        return loss

    def probe_loss(
        self, z: torch.Tensor, y: torch.Tensor, metric: ProbeAccuracy, stage: str = "train"
    ) -> torch.Tensor:
        """Cross-entropy of the probe on map ``z``, ignoring labels ``< 0``; logs loss and acc.

        No host-device synchronisation: unlabelled samples get weight 0 instead of being
        dropped by boolean indexing, and the logged batch size is the batch length.
        """
        assert self.probe is not None
        logits = self.probe(z.to(self.probe.dtype))
        keep = (y >= 0).to(logits.dtype)
        per_sample = F.cross_entropy(logits, y.clamp_min(0), reduction="none")
        loss = (per_sample * keep).sum() / keep.sum().clamp_min(1.0)
        metric.update((logits.detach().argmax(dim=1) == y).to(logits.dtype), keep)
        n = y.shape[0]
        self.log(f"probe/{stage}_loss", loss, batch_size=n)
        self.log(f"probe/{stage}_acc", metric, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.probe_val_acc if self.probe is not None else None, "acc")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.probe_test_acc if self.probe is not None else None, "test_acc")

    # ------------------------------------------------------------------ batches
    @staticmethod
    def unpack_train_batch(batch: Any) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(views, y)`` from an SSL train batch, with a clear error for other layouts."""
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2):
            raise ValueError(
                "SSL train batches must be (views, y) with views a list of (B, C, H, W) "
                f"tensors; got a {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else "")
            )
        views, y = batch
        if isinstance(views, torch.Tensor):
            views = [views]
        return list(views), y

    def _eval_step(self, batch: Any, metric: ProbeAccuracy | None, name: str) -> None:
        if self.probe is None or metric is None:
            return
        x, y = batch[0], batch[1]
        with torch.no_grad():
            logits = self.probe(self.backbone(x).to(self.probe.dtype))
        metric.update((logits.argmax(dim=1) == y).to(logits.dtype), (y >= 0).to(logits.dtype))
        self.log(f"probe/{name}", metric, prog_bar=name == "acc", batch_size=y.shape[0])

    # ------------------------------------------------------------------ divergence
    def _check_divergence(self) -> None:
        """Raise :class:`DivergedError` if a recorded step had a non-finite loss term."""
        trainer = self._trainer
        combine = None
        if trainer is not None and trainer.world_size > 1:
            strategy = trainer.strategy

            def combine(local: bool) -> bool:
                return strategy.reduce_boolean_decision(local, all=False)

        self._divergence.check(combine)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._divergence.pending >= self.hparams.divergence_check_every_n_steps:
            self._check_divergence()

    def on_train_epoch_end(self) -> None:
        self._check_divergence()

    def on_validation_start(self) -> None:
        # Before validation logs anything (and before a checkpoint keyed on it is written).
        self._check_divergence()

    def on_train_end(self) -> None:
        self._check_divergence()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write a checkpoint of a diverged run (runs before the file is written);
        save how many steps drew random numbers (so a resumed run draws on from there)."""
        self._check_divergence()
        checkpoint["rank_draws"] = self._draws.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "rank_draws" in checkpoint:
            self._draws.load_state_dict(checkpoint["rank_draws"])

    # ------------------------------------------------------------------ optimisation
    def global_batch_size(self) -> int | None:
        """``batch_size`` if set, else the attached DataModule's (global) one, else ``None``."""
        if self.hparams.batch_size is not None:
            return int(self.hparams.batch_size)
        dm = attached_datamodule(self._trainer)
        if isinstance(dm, ProvidesBatchSize) and dm.batch_size is not None:
            return int(dm.batch_size)
        return None

    def per_process_batch_size(self) -> int | None:
        """This process's share of :meth:`global_batch_size` (``None`` when unknown)."""
        size = self.global_batch_size()
        trainer = self._trainer
        world_size = trainer.world_size if trainer is not None else 1
        if size is None:
            return None
        return per_process_batch_size(size, world_size)

    def effective_lr(self) -> float:
        """The base lr after the (explicit, optional) batch-size scaling rule."""
        hp = self.hparams
        if hp.lr_scaling == "none":
            return float(hp.lr)
        batch = self.global_batch_size()
        if batch is None:
            raise ValueError(
                f"lr_scaling={hp.lr_scaling!r} needs the batch size: set model.batch_size "
                "or train with a DataModule that has batch_size"
            )
        global_batch = batch * self.trainer.accumulate_grad_batches
        lr = scaled_lr(hp.lr, hp.lr_scaling, global_batch, hp.lr_reference_batch_size)
        rank_zero_info(
            f"lr_scaling={hp.lr_scaling!r}: lr {hp.lr} x ({global_batch}/"
            f"{hp.lr_reference_batch_size}) -> {lr:.6g}"
        )
        return lr

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        hp = self.hparams
        lr = self.effective_lr()
        groups = weight_decay_groups(
            self.ssl_modules(), hp.weight_decay, hp.exclude_bias_norm_from_wd
        )
        for g in groups:
            g["lr"] = lr
        if self.probe is not None:
            groups.append(
                {
                    "params": list(self.probe.parameters()),
                    "weight_decay": 0.0,
                    "lr": hp.probe_lr,
                    "name": "probe",
                }
            )
        optimizer = build_optimizer(
            hp.optimizer, groups, lr=lr, momentum=hp.momentum, betas=tuple(hp.betas)
        )
        total = int(self.trainer.estimated_stepping_batches)
        batches = self.trainer.num_training_batches  # known once the line above ran
        steps_per_epoch = (
            math.ceil(batches / self.trainer.accumulate_grad_batches)
            if math.isfinite(batches)
            else total
        )
        schedule = build_schedule(
            optimizer,
            hp.lr_schedule,
            total_steps=total,
            warmup_steps=(
                hp.warmup_steps
                if hp.warmup_steps is not None
                else round(hp.warmup_epochs * steps_per_epoch)
            ),
            final_lr_ratio=hp.final_lr_ratio,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1},
        }

    def _current_lr(self) -> float:
        """The lr the SSL parameters use in this step (first param group)."""
        return float(self.trainer.optimizers[0].param_groups[0]["lr"])
