"""``LinearEval``: the papers' final evaluation of a pretrained encoder, as a LightningModule.

The numbers the papers publish come from a trained encoder evaluated afterwards, not from the
online probe trained beside the SSL loss (which the README calls "not a substitute"):

- CARE (Gupta et al., "Structuring Representation Geometry with Rotationally Equivariant
  Contrastive Learning", arXiv:2306.13924), App. E.3: "We train a linear classifier on frozen
  features for 100 epochs with a batch size of 512 ... Adam optimizer with a learning rate of
  1e-3 and a weight decay of 1e-6"; ImageNet100: 60 epochs, batch 128, lr 30, steps x0.1 at
  30/40/50; Table 1 reports "the mean performance from 3 different random initializations".
- H-SSL (Keller et al., "Homomorphic Self-Supervised Learning", arXiv:2211.08282), App. A: the
  classifier reads the backbone through its readout (max over the group axis, BatchNorm, ReLU,
  spatial mean, BatchNorm on CIFAR/TIN; an extra conv on MNIST).

What it does: loads the backbone of any checkpoint (:func:`~ssl_geom.evaluation.load_backbone`),
freezes it (eval mode, no gradient, kept in eval mode when Lightning calls ``train()``), reads
features through ``backbone.build_readout()`` (global average pooling for plain
ResNets, the H-SSL readout for H-SSL backbones; ``readout="global_pool"`` uses the
parameter-free pooled vector for every backbone, ``readout="grid_pool"`` the map average-pooled
to a small grid), and trains ``n_classifiers`` linear
classifiers from different initialisations at once (:class:`ClassifierBank`). Logged:

- every validation epoch: ``linear/val_acc`` (mean over classifiers), ``linear/val_acc_std``,
  ``linear/val_acc_<i>``;
- on test: the same as ``linear/test_*``, and the weighted kNN accuracy ``knn/test_acc``
  (k = 200, temperature 0.1: lightly's ``knn_predict``, Wu et al. 2018) on the
  cosine-normalised vectors of the parameter-free part of the readout (the global average pool
  or the grid-pooled vector; for a trainable readout, max over the group axis and mean over
  space, ``backbone.embed``), with the
  whole train split (eval transform) as bank and the test split as queries.

Std is the sample standard deviation (ddof = 1) over the classifiers, as the reproduce tables
use over seeds. Accuracies are fractions in [0, 1].

The data comes from :class:`~ssl_geom.evaluation.LinearEvalData`, which caches the frozen
features when the training transform is deterministic; batches hold either images or those
features, told apart by their number of dimensions (images are ``(B, C, H, W)``).

No accuracy from a run that did not do what it says:

- a checkpoint with non-finite weights (a diverged pretraining) is refused when it is loaded
  (:func:`~ssl_geom.evaluation.load_backbone`);
- a non-finite training loss, or non-finite features or logits in validation or test, stop
  the evaluation with :class:`~ssl_geom.methods.DivergedError` before anything is logged
  (recorded on the device each step, read at epoch ends, as pretraining does:
  :mod:`ssl_geom.methods.divergence`);
- ``validate``/``test`` outside ``fit`` (``lightning test`` without ``--ckpt_path``) score
  only classifiers that were trained: in this process, or by the checkpoint they load.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast, get_args

import lightning as L
import torch
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict
from lightning.fabric.utilities.data import AttributeDict
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ssl_geom.backbones import structured_to_vector
from ssl_geom.backbones.readout import GlobalPoolReadout, GridPoolReadout, Readout
from ssl_geom.evaluation.checkpoint import load_backbone
from ssl_geom.evaluation.data import LinearEvalData
from ssl_geom.evaluation.heads import ClassifierBank
from ssl_geom.methods.divergence import DivergedError, DivergenceMonitor
from ssl_geom.protocols import attached_datamodule

OptimizerName = Literal["adam", "sgd"]
FEATURE_NORM_EPS = 1e-10
# Training steps between reads of the device-side divergence record (one synchronisation
# each); it is also read at every epoch end, before validation and before a checkpoint.
DIVERGENCE_CHECK_EVERY_N_STEPS = 50
ReadoutName = Literal["backbone", "global_pool", "grid_pool"]


def _has_state(module: nn.Module) -> bool:
    """Whether training could change ``module``: parameters, or buffers such as BatchNorm's
    running statistics (stricter than ``Readout.has_parameters``: those change too)."""
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _accuracies(metrics: nn.ModuleList) -> list[MulticlassAccuracy]:
    """The accuracy metrics held in ``metrics`` (a ModuleList is typed to yield nn.Module)."""
    return [cast(MulticlassAccuracy, metric) for metric in metrics]


class LinearEval(L.LightningModule):
    """Linear evaluation (and kNN) of a frozen pretrained backbone; see the module docstring.

    Args:
        checkpoint: a ``lightning fit`` checkpoint of any method, or a backbone state dict.
        backbone: registry name of the expected backbone (required for a state dict; for a
            Lightning checkpoint, its weights are checked against it when given).
        backbone_kwargs: that backbone's keyword arguments.
        num_classes: classes (linked from ``data.num_classes`` by the CLI).
        in_channels: image channels (linked from the data); passed to a configured backbone.
        batch_size: linked from the data by the CLI; the data's batch size is the one used.
        n_classifiers: classifiers trained from different initialisations (CARE: 3).
        classifier_seed: classifier ``i`` is initialised with seed ``classifier_seed + i``.
        optimizer: ``adam`` (CARE CIFAR/STL10) or ``sgd`` (CARE ImageNet100, momentum 0.9).
        lr: learning rate.
        weight_decay: L2 penalty of the optimizer.
        momentum: SGD momentum.
        lr_milestones: epochs at which the lr is multiplied by ``lr_gamma`` (empty: constant).
        lr_gamma: that factor.
        knn_k: neighbours of the kNN vote (clipped to the bank size).
        knn_temperature: temperature of the ``exp(sim / t)`` vote weights.
        readout: ``backbone``: the backbone's own classifier readout (``build_readout``: the
            H-SSL App. A readout for H-SSL backbones, global average pooling for plain
            ResNets); ``global_pool``: the parameter-free max over the group axis and mean
            over space for every backbone (CARE's global-average-pooled vector; what the
            Fashion-MNIST config uses, because the H-SSL MNIST readout's trainable conv costs
            about 2 s per batch of 512 on 2 CPU cores, hours for 100 epochs); ``grid_pool``:
            max over the group axis and average pooling to ``grid_size x grid_size``, flattened
            (:class:`~ssl_geom.backbones.readout.GridPoolReadout`: the coarse spatial layout the
            H-SSL MNIST readout's conv reads, without its parameters, so it is cached too).
        grid_size: the grid of ``readout="grid_pool"`` (unused by the other readouts).
        standardize: standardise the pooled vector before the classifiers (a BatchNorm without
            affine parameters whose statistics are the training features' running average:
            at test time a fixed affine map, so the classifier stays linear in the features;
            the linear probe of MAE, He et al., arXiv:2111.06377, and the final BatchNorm of
            H-SSL's own readout). Adam moves each weight by at most ``lr`` a step, so on
            features of small scale a fixed budget of steps ends far from convergence and
            ranks backbones by their feature *scale*: measured on a frozen random H-SSL MNIST
            CNN at 1/4 width (feature std 0.023), 1,200 Adam steps at lr 1e-3 reach 31.9% on
            Fashion-MNIST raw and 60.9% standardised. Needs a parameter-free readout
            (``global_pool``, ``grid_pool``, or a backbone whose own readout has none).
    """

    def __init__(
        self,
        checkpoint: str,
        backbone: str | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        num_classes: int | None = None,
        in_channels: int | None = None,
        batch_size: int | None = None,
        n_classifiers: int = 3,
        classifier_seed: int = 0,
        optimizer: OptimizerName = "adam",
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        momentum: float = 0.9,
        lr_milestones: Sequence[int] = (),
        lr_gamma: float = 0.1,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        readout: ReadoutName = "backbone",
        grid_size: int = 3,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        if num_classes is None or num_classes < 2:
            raise ValueError(
                f"num_classes must be >= 2, got {num_classes}; the CLI links it from "
                "data.num_classes, from Python pass it explicitly"
            )
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if readout not in get_args(ReadoutName):
            raise ValueError(
                f"readout must be one of {', '.join(map(repr, get_args(ReadoutName)))}, "
                f"got {readout!r}"
            )
        if grid_size < 1:
            raise ValueError(f"grid_size must be >= 1, got {grid_size}")
        if knn_k < 1 or knn_temperature <= 0:
            raise ValueError(
                f"knn_k must be >= 1 and knn_temperature > 0, got {knn_k} and {knn_temperature}"
            )
        self.save_hyperparameters()
        kwargs = dict(backbone_kwargs or {})
        if backbone is not None and in_channels is not None:
            kwargs.setdefault("in_channels", in_channels)
        self.backbone = load_backbone(checkpoint, backbone, kwargs).requires_grad_(False)
        built = self._build_readout()
        self.trainable_readout = _has_state(built)
        # A parameter-free readout is part of the frozen encoder and its output is cached;
        # a trainable one belongs to each classifier, which gets its own copy.
        self.pool = None if self.trainable_readout else built
        if standardize and self.trainable_readout:
            raise ValueError(
                f"standardize=True needs a parameter-free readout, but readout={readout!r} of "
                f"{type(self.backbone).__name__} is trainable (it is each classifier's own); "
                "use readout='global_pool' or 'grid_pool', or standardize=False"
            )
        # momentum=None: the running statistics are the plain average over all training
        # batches, i.e. the training features' own statistics once an epoch has passed. eps
        # far below any real feature variance (BatchNorm's 1e-5 would dominate a dimension
        # of std 3e-3, and the point is that scale does not matter).
        self.feature_norm: nn.Module = (
            nn.BatchNorm1d(built.out_features, eps=FEATURE_NORM_EPS, affine=False, momentum=None)
            if standardize
            else nn.Identity()
        )
        self.classifiers = ClassifierBank(
            built.out_features,
            num_classes,
            n_classifiers,
            seed=classifier_seed,
            readout=self._build_readout if self.trainable_readout else None,
        )
        self.val_acc = nn.ModuleList(
            MulticlassAccuracy(num_classes, average="micro") for _ in range(n_classifiers)
        )
        self.test_acc = nn.ModuleList(
            MulticlassAccuracy(num_classes, average="micro") for _ in range(n_classifiers)
        )
        self.knn_acc = MulticlassAccuracy(num_classes, average="micro")
        self._frozen_shape: tuple[int, ...] | None = None
        self._bank: tuple[torch.Tensor, torch.Tensor] | None = None
        self._divergence = DivergenceMonitor()
        # Whether every feature and logit of the current validation/test epoch was finite:
        # a device flag (no synchronisation per step), read once at the epoch's end.
        self._finite = torch.ones((), dtype=torch.bool)
        # Optimizer steps the classifiers have had: in this process, or in the run that wrote
        # the checkpoint they were loaded from.
        self.trained_steps = 0

    def _build_readout(self) -> Readout:
        if self.hparams.readout == "global_pool":
            return GlobalPoolReadout(self.backbone.out_channels)
        if self.hparams.readout == "grid_pool":
            return GridPoolReadout(self.backbone.out_channels, self.hparams.grid_size)
        return self.backbone.build_readout()

    @property
    def hparams(self) -> AttributeDict:
        """The saved ``__init__`` arguments, read as attributes (``self.hparams.lr``).

        Lightning types the property ``AttributeDict | MutableMapping``, on which a type
        checker refuses attribute access; ``save_hyperparameters`` always stores an
        ``AttributeDict``, so this only narrows the type.
        """
        return cast(AttributeDict, super().hparams)

    # ------------------------------------------------------------------ frozen encoder
    def train(self, mode: bool = True) -> LinearEval:
        """Lightning switches modules to train mode each epoch; the encoder stays frozen."""
        super().train(mode)
        self.backbone.eval()
        if self.pool is not None:
            self.pool.eval()
        return self

    @torch.no_grad()
    def frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> features up to the first trainable layer (what the data caches)."""
        z = self.backbone(x.to(self.device))
        return z if self.pool is None else self.pool(z)

    def frozen_feature_shape(self) -> tuple[int, ...]:
        if self._frozen_shape is None:
            raise RuntimeError("frozen_feature_shape is known once setup() has run")
        return self._frozen_shape

    def knn_vectors(self, features: torch.Tensor) -> torch.Tensor:
        """Cosine-normalised parameter-free vectors of frozen ``features``, for the kNN."""
        vectors = features if features.ndim == 2 else structured_to_vector(features)
        return F.normalize(vectors.float(), dim=1)

    def _classifier_input(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        # augmented SSL batches: (views, y), one view used
        images = x if isinstance(x, torch.Tensor) else x[0]
        return self.frozen_features(images) if images.ndim == 4 else images

    def head_input(self, features: torch.Tensor) -> torch.Tensor:
        """Frozen features as the classifiers read them (standardised if ``standardize``)."""
        return self.feature_norm(features.float())

    # ------------------------------------------------------------------ checks before fitting
    def require_trained(self, subcommand: str) -> None:
        """Refuse to score classifiers that were never trained (``validate`` or ``test``).

        Trained means: by ``fit`` in this process, or by the run whose checkpoint was loaded
        (``--ckpt_path``). The CLI calls this before building anything; the hooks below again
        before the first batch, for ``Trainer.test(model)`` from Python.
        """
        if self.trained_steps:
            return
        metric = "val_acc" if subcommand == "validate" else "test_acc"
        raise ValueError(
            f"{subcommand} would score {self.hparams.n_classifiers} linear classifiers that were "
            f"never trained (their accuracy is chance, yet printed as linear/{metric}). Train "
            "them first with `lightning fit --config <linear config> --model.init_args."
            f"checkpoint <run>`, then `lightning {subcommand}` the same config with --ckpt_path "
            "<that evaluation's log_dir>/checkpoints/last.ckpt; from Python, "
            "evaluate_checkpoint() does both"
        )

    def setup(self, stage: str) -> None:
        data = attached_datamodule(self.trainer)
        if not isinstance(data, LinearEvalData):
            raise TypeError(
                "LinearEval reads its data through ssl_geom.evaluation.LinearEvalData (which "
                f"caches frozen features); got {type(data).__name__}. In the config: data: "
                "{class_path: ssl_geom.evaluation.LinearEvalData, init_args: {dataset: ...}}"
            )
        if data.num_classes != self.hparams.num_classes:
            raise ValueError(
                f"the data has {data.num_classes} classes, the classifiers "
                f"{self.hparams.num_classes}; set model.init_args.num_classes to match"
            )
        shape = data.image_shape
        try:
            z = self.frozen_features(torch.zeros(2, *shape, device=self.device))
        except (RuntimeError, ValueError) as error:
            raise ValueError(
                f"the backbone {type(self.backbone).__name__} cannot take {data.dataset.name} "
                f"images of shape {shape} (C, H, W): {error}. Evaluate on the dataset the "
                "checkpoint was pretrained on, or configure a backbone for these inputs"
            ) from error
        self._frozen_shape = tuple(z.shape[1:])

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        features, y = self._classifier_input(batch[0]), batch[1]
        keep = y >= 0  # STL10's unlabeled images (augmented training only)
        if not bool(keep.any()):
            return None
        losses = self.classifiers.losses(self.head_input(features[keep]), y[keep])
        self.log("linear/train_loss", losses.mean(), on_step=False, on_epoch=True)
        lr = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        self._divergence.record({"linear/train_loss": losses.sum()}, self.global_step, lr)
        return losses.sum()  # each classifier gets exactly its own gradient

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        features = self._classifier_input(batch[0])
        heads = self._checked_heads(features)
        for metric, head in zip(_accuracies(self.val_acc), heads, strict=True):
            metric.update(head, batch[1])

    def on_validation_epoch_end(self) -> None:
        self._check_finite("validation")
        self._log_accuracies(self.val_acc, "val")

    def on_test_start(self) -> None:
        self.require_trained("test")
        self._bank = self._knn_bank()
        if not bool(torch.isfinite(self._bank[0]).all()):
            raise DivergedError(
                "the kNN bank (the frozen backbone's features of the train split) is not "
                "finite; no accuracy is reported. The pretrained weights are finite, so the "
                "features overflow: evaluate another checkpoint of the run"
            )

    def test_step(self, batch: Any, batch_idx: int) -> None:
        features, y = self._classifier_input(batch[0]), batch[1]
        heads = self._checked_heads(features)
        for metric, head in zip(_accuracies(self.test_acc), heads, strict=True):
            metric.update(head, y)
        if self._bank is None:
            raise RuntimeError("the kNN bank is built in on_test_start(), which has not run")
        bank, labels = self._bank
        predicted = knn_predict(
            self.knn_vectors(features),
            bank,
            labels,
            num_classes=self.hparams.num_classes,
            knn_k=min(self.hparams.knn_k, labels.numel()),
            knn_t=self.hparams.knn_temperature,
        )[:, 0]
        self.knn_acc.update(predicted, y)

    def on_test_epoch_end(self) -> None:
        self._check_finite("test")
        self._log_accuracies(self.test_acc, "test")
        self.log("knn/test_acc", self.knn_acc.compute())
        self.knn_acc.reset()
        self._bank = None

    # ------------------------------------------------------------------ finiteness
    def _checked_heads(self, features: torch.Tensor) -> torch.Tensor:
        """The classifiers' logits; notes on the device whether they and ``features`` are finite."""
        heads = self.classifiers(self.head_input(features))
        finite = torch.isfinite(features).all() & torch.isfinite(heads).all()
        self._finite = self._finite.to(finite.device) & finite
        return heads

    def _check_finite(self, stage: str) -> None:
        """Raise before an epoch's accuracies are logged if any feature or logit was not finite."""
        finite, self._finite = bool(self._finite), torch.ones((), dtype=torch.bool)
        if not finite:
            raise DivergedError(
                f"non-finite features or classifier outputs in the {stage} epoch: the "
                f"evaluation stopped before reporting accuracy (linear/"
                f"{'val' if stage == 'validation' else 'test'}_acc). The loaded weights are "
                "finite, so the frozen features overflow or the classifiers diverged: lower the "
                "lr (model.init_args.lr), set standardize: true, or evaluate another checkpoint"
            )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._divergence.pending >= DIVERGENCE_CHECK_EVERY_N_STEPS:
            self._divergence.check()

    def on_train_epoch_end(self) -> None:
        self._divergence.check()

    def on_validation_start(self) -> None:
        if self.trainer.state.fn == "validate":
            self.require_trained("validate")
        self._divergence.check()

    def on_train_end(self) -> None:
        self._divergence.check()
        self.trained_steps = self.trainer.global_step

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write the classifiers of a diverged evaluation."""
        self._divergence.check()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Classifiers loaded to be scored must have been trained by the checkpoint's run."""
        self.trained_steps = int(checkpoint.get("global_step", 0))
        fitting = self._trainer is not None and self._trainer.state.fn == "fit"
        if not self.trained_steps and not fitting:
            raise ValueError(
                "the LinearEval checkpoint being loaded was written before any training step "
                "(global_step 0): its classifiers are untrained and would score chance. Pass "
                "the last.ckpt of a finished `lightning fit` of the linear config"
            )

    def _log_accuracies(self, metrics: nn.ModuleList, stage: str) -> None:
        accuracies = torch.stack([metric.compute() for metric in _accuracies(metrics)])
        for metric in _accuracies(metrics):
            metric.reset()
        for i, value in enumerate(accuracies):
            self.log(f"linear/{stage}_acc_{i}", value)
        self.log(f"linear/{stage}_acc", accuracies.mean(), prog_bar=True)
        if len(accuracies) > 1:
            self.log(f"linear/{stage}_acc_std", accuracies.std())

    def _knn_bank(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D, N)`` normalised train vectors and their ``(N,)`` labels."""
        data = cast(LinearEvalData, attached_datamodule(self.trainer))  # checked in setup()
        if data.use_cache():
            cached = data.features("train")
            vectors, labels = self.knn_vectors(cached.features.to(self.device)), cached.labels
        else:
            rows, targets = [], []
            for batch in data.dataset.train_eval_dataloader():
                rows.append(self.knn_vectors(self.frozen_features(batch[0])))
                targets.append(batch[1])
            vectors, labels = torch.cat(rows), torch.cat(targets)
        return vectors.T.contiguous(), labels.to(self.device)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = list(self.classifiers.parameters())
        optimizer: torch.optim.Optimizer
        if hp.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay
            )
        if not hp.lr_milestones:
            return optimizer
        schedule = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(hp.lr_milestones), gamma=hp.lr_gamma
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }
