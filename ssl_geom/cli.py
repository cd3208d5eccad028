"""Command line: ``lightning fit --config experiments/care_cifar10.yaml`` (also ``ssl-geom``).

A ``LightningCLI`` in subclass mode: ``model`` is any ``LightningModule`` (an
:class:`~ssl_geom.methods.SSLMethod` to pretrain, :class:`~ssl_geom.evaluation.LinearEval` to
evaluate a checkpoint) and ``data`` any ``LightningDataModule``, both chosen by ``class_path``
in the YAML, so a new method or dataset needs no change here. Subcommands: ``fit``, ``validate``, ``test``,
``predict``; ``--print_config`` shows the resolved config, ``--ckpt_path`` resumes.

What it adds to plain ``LightningCLI``:

- a :class:`~ssl_geom.symmetry.Symmetry` argument (H-SSL's ``transformation``) is read and
  printed as its value (``rotation``), not as jsonargparse's default for an Enum, the
  member name (``ROTATION``);
- links ``data.num_classes``, ``data.in_channels`` and ``data.batch_size`` into the model
  (``apply_on="instantiate"``: they are DataModule attributes). ``data.batch_size`` is the
  *global* batch (the papers' number); each process loads ``batch_size / world_size``
  (:mod:`ssl_geom.global_batch`), and a batch that does not split over
  ``trainer.world_size`` is refused right after the trainer is built;
- links ``data.augmentation`` (an ssl_geom DataModule's
  :class:`~ssl_geom.augment.Augmentation`) into ``model.init_args.same_params_transform``,
  so CARE draws its equivariance pairs with its DataModule's augmentations. jsonargparse
  skips the link for a model without that argument, and for a DataModule without
  ``augmentation``; a model's ``hparams`` (and so its checkpoint) record only the linked
  values it was given, so no other model stores the augmentation object;
- a ``ModelCheckpoint`` that writes ``last.ckpt`` (configurable under ``checkpoint.*``),
  each checkpoint whole or not at all (:class:`~ssl_geom.checkpoint_io.AtomicCheckpointIO`,
  unless the config brings its own checkpoint plugin);
- Lightning's ``RichProgressBar`` unless the config brings its own progress bar or sets
  ``trainer.enable_progress_bar: false``;
- :class:`~ssl_geom.exception_checkpoint.ExceptionCheckpoint` (unless the config brings an
  ``OnExceptionCheckpoint``): a run that stops on an exception (a corrupt file reached
  mid-epoch, ``DivergedError``, Ctrl-C) leaves ``checkpoints/on_exception.ckpt`` beside
  ``last.ckpt``, which it never overwrites;
- a ``fit`` of a GPU-sized config (half precision, or a step estimated at more than half the
  machine's memory) that resolved to the CPU warns at start, with the estimate and the
  overrides of a CPU smoke test (:mod:`ssl_geom.step_memory`);
- TensorBoard is the logger (Lightning's default when ``tensorboard`` is installed), and
  the resolved config is saved next to the logs by ``SaveConfigCallback``, which refuses
  to overwrite an existing one;
- ``--ckpt_path`` is checked, not obeyed blindly. Plain ``LightningCLI`` silently replaces
  the model config with the checkpoint's ``hyper_parameters`` (class included), so
  ``--config care.yaml --ckpt_path simclr/last.ckpt`` trains SimCLR and a changed lr is
  ignored. Here the checkpoint is read with ``weights_only=True`` (a file ``lightning fit``
  did not write is refused), its class must be the config's, and every hyper-parameter and,
  for ``fit``, ``trainer.max_epochs`` / ``max_steps`` (the lr schedule's length) are compared
  with the resolved config; a mismatch is refused with the differing keys listed.
  :class:`~ssl_geom.resume_check.ResumeCheck` then compares the optimizer settings and lr
  schedule Lightning restores with those the config builds (this catches the schedule length
  of checkpoints that predate the recorded ``max_epochs``). ``--allow_changed_config true``
  resumes anyway *with the config's values* (e.g. a new lr, or more epochs on purpose):
  hyper-parameters, optimizer settings and a schedule rebuilt for the new length, continuing
  from the checkpoint's step; each difference is warned about and recorded in the
  checkpoints written afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from jsonargparse import Namespace
from jsonargparse.typing import register_type
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, _InstantiatorFn
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_warn

from ssl_geom.checkpoint_file import LIGHTNING_CHECKPOINT, CheckpointFileError, read_checkpoint
from ssl_geom.checkpoint_io import AtomicCheckpointIO
from ssl_geom.data import SSLDataModule  # also registers the DataModules' short class names

# Also makes the classes known for class_path short names: the methods (pretraining) and
# LinearEval / LinearEvalData (evaluation).
from ssl_geom.evaluation import LinearEval
from ssl_geom.resume_check import ResumeCheck
from ssl_geom.step_memory import cpu_fit_warning
from ssl_geom.symmetry import Symmetry, parse_symmetry

_PROGRESS_BARS = ("ProgressBar", "RichProgressBar", "TQDMProgressBar")

# jsonargparse reads and writes an Enum by member *name* ("ROTATION"); configs spell a
# Symmetry by its value ("rotation"), as the methods' docs and every experiment do.
register_type(Symmetry, serializer=str, deserializer=partial(parse_symmetry, what="symmetry"))


_Module = TypeVar("_Module")


class _GivenLinksOnly(_InstantiatorFn):
    """Lightning's model instantiator, recording in ``hparams`` only the linked values passed.

    jsonargparse hands an instantiator every applied instantiation link, including one whose
    target the class does not have (it then passes nothing). Lightning's instantiator adds
    them all to the module's ``hparams``, so SimCLR would store the DataModule's
    ``Augmentation`` linked for CARE, which is no plain data: its checkpoint could no longer
    be read with ``weights_only=True``, and a resume would compare two objects.
    """

    def __call__(
        self,
        class_type: type[_Module],
        *args: Any,
        applied_instantiation_links: dict,
        **kwargs: Any,
    ) -> _Module:
        prefix = f"{self.key}.init_args."
        given = {
            key: value
            for key, value in applied_instantiation_links.items()
            if not key.startswith(prefix) or key[len(prefix) :].split(".")[0] in kwargs
        }
        return super().__call__(class_type, *args, applied_instantiation_links=given, **kwargs)


class SSLGeomCLI(LightningCLI):
    """``LightningCLI`` with the data -> model links and default callbacks described above."""

    def _add_instantiators(self) -> None:
        super()._add_instantiators()
        self.parser.add_instantiator(
            _GivenLinksOnly(cli=self, key="model"), LightningModule, prepend=True
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for attr in ("num_classes", "in_channels", "batch_size"):
            parser.link_arguments(f"data.{attr}", f"model.init_args.{attr}", apply_on="instantiate")
        parser.link_arguments(
            "data.augmentation", "model.init_args.same_params_transform", apply_on="instantiate"
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        parser.add_argument(
            "--allow_changed_config",
            type=bool,
            default=False,
            help="with --ckpt_path: resume even though the model config, the training length "
            "or the optimizer settings differ from the checkpoint's, using the config's values",
        )

    def _parse_ckpt_path(self) -> None:
        """Read the checkpoint's hyper-parameters; refuse another class before building anything.

        Replaces Lightning's version, which overwrites the model config with them. The
        per-key comparison waits for the model (:meth:`after_instantiate_classes`): the
        values linked from the DataModule exist only then.
        """
        self._ckpt_hparams: dict[str, Any] | None = None
        self._ckpt_length: dict[str, Any] = {}
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():  # "last"/"best" or a missing file:
            return  # Lightning resolves or reports those itself
        checkpoint = read_checkpoint(ckpt_path)
        if not {"state_dict", "pytorch-lightning_version"} <= set(checkpoint):
            raise CheckpointFileError(
                f"--ckpt_path {ckpt_path} is not a checkpoint that Lightning wrote (it has no "
                f"'state_dict' and 'pytorch-lightning_version'; keys: {sorted(checkpoint)[:8]}); "
                f"pass {LIGHTNING_CHECKPOINT}"
            )
        self._ckpt_hparams = dict(checkpoint.get("hyper_parameters") or {})
        states = checkpoint.get("callbacks") or {}
        self._ckpt_length = dict(
            states.get(ResumeCheck.__qualname__, {}).get("training_length", {})
        )
        recorded = self._ckpt_hparams.get("_class_path", _NOT_SET)
        if recorded not in (_NOT_SET, config.model.class_path):
            # Never allowed: the checkpoint's weights belong to its own class.
            raise ValueError(
                f"{ckpt_path} is a checkpoint of another class:\n  - class_path: checkpoint "
                f"{recorded!r}, config {config.model.class_path!r}\nResume it with the config it "
                "was trained with (config.yaml in its log folder); --allow_changed_config "
                "cannot change the class"
            )

    def after_instantiate_classes(self) -> None:
        if isinstance(self.datamodule, SSLDataModule):
            self.datamodule.split_batch(self.trainer.world_size)
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not the config's own
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        config = self.config[self.subcommand] if self.subcommand else self.config
        check = ResumeCheck(allow_changes=bool(config.get("allow_changed_config")))
        self.trainer.callbacks.append(check)  # type: ignore[attr-defined]
        if self.subcommand == "fit":
            advice = cpu_fit_warning(self.trainer, self.model, self.datamodule)
            if advice is not None:
                rank_zero_warn(advice)
        scoring = self.subcommand in ("validate", "test")
        if scoring and isinstance(self.model, LinearEval) and not config.get("ckpt_path"):
            self.model.require_trained(str(self.subcommand))  # before any feature is computed
        if self._ckpt_hparams is None:
            return
        current = dict(self.model.hparams)
        current.setdefault("_class_path", config.model.class_path)
        differences = hparam_differences(self._ckpt_hparams, current)
        if self.subcommand == "fit" and self._ckpt_length:
            length = {k: getattr(self.trainer, k) for k in ("max_epochs", "max_steps")}
            recorded = {f"trainer.{k}": v for k, v in self._ckpt_length.items()}
            differences += hparam_differences(
                recorded, {f"trainer.{k}": v for k, v in length.items()}
            )
        if differences:
            self._refuse_or_warn(config, config.ckpt_path, differences)
            check.model_changes = differences

    def _refuse_or_warn(self, config: Namespace, ckpt_path: str, differences: list[str]) -> None:
        listing = "\n".join(f"  - {d}" for d in differences)
        if config.get("allow_changed_config"):
            rank_zero_warn(
                f"--allow_changed_config: resuming from {ckpt_path} with the config's values "
                f"where they differ from the checkpoint:\n{listing}\nThe lr schedule is rebuilt "
                "for the config's length and continues from the checkpoint's step."
            )
            return
        raise ValueError(
            f"the config differs from what {ckpt_path} was trained with:\n{listing}\n"
            "Resume with the config the checkpoint was trained with (saved as config.yaml in its "
            "log folder), or pass --allow_changed_config true to train on with the config's "
            "values on purpose (a longer run then follows the config's lr schedule, rebuilt "
            "for the new length, from the checkpoint's step on)"
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        callbacks = trainer.get("callbacks") or []
        if not isinstance(callbacks, list):
            callbacks = [callbacks]
        added = []
        show_bar = trainer.get("enable_progress_bar") is not False
        if show_bar and not any(_class_name(c).endswith(_PROGRESS_BARS) for c in callbacks):
            added.append("lightning.pytorch.callbacks.RichProgressBar")
        if not any(_class_name(c).endswith("ExceptionCheckpoint") for c in callbacks):
            added.append("ssl_geom.exception_checkpoint.ExceptionCheckpoint")
        if added:
            new = [Namespace(class_path=path, init_args=Namespace()) for path in added]
            trainer.callbacks = [*callbacks, *new]


_NOT_SET = "<not set>"
_CLI_BOOKKEEPING = ("_instantiator",)


def hparam_differences(checkpoint: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key: checkpoint A, config B"`` for every hyper-parameter that differs (class first).

    Values are compared as plain data (tuples as lists), since a YAML list and the tuple a
    default holds mean the same thing.
    """
    keys = sorted(set(checkpoint) | set(current), key=lambda k: (k != "_class_path", k))
    differences = []
    for key in keys:
        if key in _CLI_BOOKKEEPING:
            continue
        before, after = _plain(checkpoint.get(key, _NOT_SET)), _plain(current.get(key, _NOT_SET))
        if before != after:
            name = "class_path" if key == "_class_path" else key
            differences.append(f"{name}: checkpoint {before!r}, config {after!r}")
    return differences


def _plain(value: Any) -> Any:
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _class_name(callback: object) -> str:
    if isinstance(callback, Namespace):
        return str(callback.get("class_path", ""))
    return type(callback).__name__


_CLI_KWARGS: dict[str, Any] = {
    "model_class": LightningModule,
    "datamodule_class": LightningDataModule,
    "subclass_mode_model": True,
    "subclass_mode_data": True,
    "auto_configure_optimizers": False,
    "save_config_kwargs": {"overwrite": False},
}


def build_cli(args: list[str] | None = None, run: bool = True) -> SSLGeomCLI:
    """Parse ``args`` (default ``sys.argv``) and, with ``run``, execute the subcommand."""
    return SSLGeomCLI(**_CLI_KWARGS, args=args, run=run)


class _ParseOnlyCLI(SSLGeomCLI):
    """Stops after parsing: nothing is instantiated (see :func:`parse_config`)."""

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def after_instantiate_classes(self) -> None:
        pass

    def _parse_ckpt_path(self) -> None:
        self._ckpt_hparams = None
        self._ckpt_length = {}


def parse_config(args: list[str]) -> Namespace:
    """The resolved, type-checked config of ``args`` without building model, data or trainer.

    Cheap enough to validate every ``experiments/*.yaml`` (class paths, argument names and
    types) before a sweep; value checks inside ``__init__`` still need :func:`build_cli`.
    """
    return _ParseOnlyCLI(**_CLI_KWARGS, args=args, run=False).config


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning`` and ``ssl-geom`` console scripts."""
    build_cli(args)


if __name__ == "__main__":
    main()
