"""Keep the progress of a run that stops on an exception, without touching ``last.ckpt``.

Written here rather than using Lightning's ``OnExceptionCheckpoint``, which does the same
save but also (Lightning 2.6): makes every ``fit`` without ``--ckpt_path`` resume silently
from the newest ``last.ckpt``/``on_exception.ckpt`` it can find (``ckpt_path="last"`` is
implied whenever one is attached -- bypassing the CLI's config check, and picking up an
earlier run's files when ``checkpoint.dirpath`` is fixed); needs its folder at construction
(the run's ``checkpoints/`` folder is known only once the logger has picked a version);
overwrites a file of the same name; and deletes ``on_exception.ckpt`` after any successful
run in that folder, also one an earlier crash left there. This callback:

- writes next to the run's ``ModelCheckpoint`` files, resolved when the exception happens;
- never to ``last.ckpt`` (a model that raised ``DivergedError`` on a NaN loss must not replace
  the last good state), and never over an existing file: ``on_exception.ckpt``, else
  ``on_exception-v1.ckpt``, ...;
- only while fitting and after at least one optimiser step (a data error at setup leaves
  nothing worth saving), and a failure to save is a warning, never a second exception that
  would hide the first;
- deletes nothing and implies no resuming.

In a multi-process run ``Trainer.save_checkpoint`` synchronises the processes, so an
exception raised on one rank only can still hang there, as with Lightning's class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class ExceptionCheckpoint(Callback):
    """Save ``<checkpoint dir>/on_exception[-vN].ckpt`` when ``fit`` stops on an exception.

    A plain ``Callback``, not a Lightning ``Checkpoint``: the Trainer treats the first
    ``Checkpoint`` as *the* checkpoint callback (``trainer.checkpoint_callback``).

    Args:
        dirpath: folder to write into; default: the trainer's ``ModelCheckpoint`` folder.
        filename: file name without extension.
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | None = None, filename: str = "on_exception") -> None:
        if not filename:
            raise ValueError("filename must not be empty, e.g. filename='on_exception'")
        self.dirpath = dirpath
        self.filename = filename
        self.saved_path: Path | None = None

    def _folder(self, trainer: pl.Trainer) -> Path | None:
        if self.dirpath is not None:
            return Path(self.dirpath)
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None)
        return None if folder is None else Path(folder)

    def _free_path(self, folder: Path) -> Path:
        path = folder / f"{self.filename}{self.FILE_EXTENSION}"
        version = 0
        while path.exists():
            version += 1
            path = folder / f"{self.filename}-v{version}{self.FILE_EXTENSION}"
        return path

    def on_exception(self, trainer: pl.Trainer, *_: Any, **__: Any) -> None:
        folder = self._folder(trainer)
        if trainer.state.fn != "fit" or trainer.global_step == 0 or folder is None:
            return
        path = self._free_path(folder)
        try:
            trainer.save_checkpoint(path)
        except Exception as err:  # the original exception must stay the one the user sees
            rank_zero_warn(f"training stopped on an exception, and saving {path} failed: {err}")
            return
        self.saved_path = path
        rank_zero_info(
            f"training stopped on an exception at step {trainer.global_step}; its state is in "
            f"{path} (resume with --ckpt_path {path} once the cause is fixed)"
        )
