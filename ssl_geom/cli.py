"""Command line: ``lightning fit --config experiments/care_cifar10.yaml`` (also ``ssl-geom``).

A ``LightningCLI`` in subclass mode: ``model`` is any ``LightningModule`` (an
:class:`~ssl_geom.methods.SSLMethod` to pretrain, :class:`~ssl_geom.evaluation.LinearEval` to
evaluate a checkpoint) and ``data`` any ``LightningDataModule``, both chosen by ``class_path``
in the YAML, so a new method or dataset needs no change here. Subcommands: ``fit``, ``validate``, ``test``,
``predict``; ``--print_config`` shows the resolved config, ``--ckpt_path`` resumes.

What it adds to plain ``LightningCLI``:

- links ``data.num_classes``, ``data.in_channels`` and ``data.batch_size`` (per-process)
  into the model (``apply_on="instantiate"``: they are DataModule attributes);
- a ``ModelCheckpoint`` that writes ``last.ckpt`` (configurable under ``checkpoint.*``);
- Lightning's ``RichProgressBar`` unless the config brings its own progress bar or sets
  ``trainer.enable_progress_bar: false``;
- TensorBoard is the logger (Lightning's default when ``tensorboard`` is installed), and
  the resolved config is saved next to the logs by ``SaveConfigCallback``, which refuses
  to overwrite an existing one.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

# Imported so their classes are known for class_path short names: the DataModules, the
# methods (pretraining) and LinearEval / LinearEvalData (evaluation).
import ssl_geom.data
import ssl_geom.evaluation
import ssl_geom.methods  # noqa: F401

_PROGRESS_BARS = ("ProgressBar", "RichProgressBar", "TQDMProgressBar")


class SSLGeomCLI(LightningCLI):
    """``LightningCLI`` with the data -> model links and default callbacks described above."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for attr in ("num_classes", "in_channels", "batch_size"):
            parser.link_arguments(f"data.{attr}", f"model.init_args.{attr}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        if trainer.get("enable_progress_bar") is False:
            return
        callbacks = trainer.get("callbacks") or []
        if not isinstance(callbacks, list):
            callbacks = [callbacks]
        if any(_class_name(c).endswith(_PROGRESS_BARS) for c in callbacks):
            return
        bar = Namespace(
            class_path="lightning.pytorch.callbacks.RichProgressBar", init_args=Namespace()
        )
        trainer.callbacks = [*callbacks, bar]


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
