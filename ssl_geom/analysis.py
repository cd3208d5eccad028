"""Read back what a training run left on disk, for notebooks and plots.

Three things a finished (or running) Lightning run leaves that analyses need:

- TensorBoard scalars (every ``self.log`` value) — :func:`read_scalars` returns them as numpy
  arrays together with the *epoch* of each value, so curves can be drawn per epoch whatever
  the logging interval was. Parsing is tensorboard's ``EventAccumulator``; ours is only the
  step → epoch join: Lightning writes an ``epoch`` scalar at every step it logs anything.
- Spectra kept by :class:`ssl_geom.callbacks.ProjectorRank` in its checkpoint state —
  :func:`read_spectra` (TensorBoard holds only the rank, a spectrum is a vector per epoch).
- The trained method itself — :func:`load_method` picks the class from the ``_class_path``
  that ``lightning fit`` (LightningCLI) stores in the checkpoint. Plain
  ``SSLMethod.load_from_checkpoint`` is not enough: Lightning 2.6 then builds the *base*
  class and drops the method's own arguments. A checkpoint whose hyper-parameters or weights
  no longer fit the class (written by another version of ssl_geom) is refused with
  :class:`CheckpointMismatchError`, naming the file, the class and what does not fit.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ssl_geom
from ssl_geom.checkpoint_file import CheckpointFileError, read_checkpoint
from ssl_geom.methods import SSLMethod

SPECTRA = {"projector": "projector_spectra", "embedding": "embedding_spectra"}


@dataclass(frozen=True)
class Scalars:
    """One logged scalar: values in logging order, the global step and epoch of each.

    ``epochs`` is float with NaN where the run logged no ``epoch`` at that step (runs not
    written by Lightning).
    """

    steps: np.ndarray
    epochs: np.ndarray
    values: np.ndarray

    @property
    def last(self) -> float:
        """The most recent value (what ``trainer.callback_metrics`` held at the end)."""
        return float(self.values[-1])


def _event_files(log_dir: Path) -> list[Path]:
    return sorted(log_dir.glob("events.out.tfevents.*"))


def read_scalars(log_dir: str | Path) -> dict[str, Scalars]:
    """All scalars of one TensorBoard run folder (e.g. ``lightning_logs/version_0``).

    Raises FileNotFoundError naming the folder when it holds no event file, pointing to
    the version folders below it when the user passed their parent.
    """
    log_dir = Path(log_dir)
    if not _event_files(log_dir):
        below = sorted({p.parent for p in log_dir.rglob("events.out.tfevents.*")})
        hint = (
            f"; run folders below it: {[str(p) for p in below]}"
            if below
            else "; pass the run's version folder, e.g. lightning_logs/version_0 (trainer.log_dir)"
        )
        raise FileNotFoundError(
            f"no TensorBoard event file (events.out.tfevents.*) in {log_dir}{hint}"
        )
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    raw = {tag: accumulator.Scalars(tag) for tag in accumulator.Tags()["scalars"]}
    epoch_at_step = {event.step: event.value for event in raw.get("epoch", [])}
    series = {}
    for tag, events in raw.items():
        steps = np.array([e.step for e in events], dtype=np.int64)
        epochs = np.array([epoch_at_step.get(int(s), np.nan) for s in steps], dtype=np.float64)
        values = np.array([e.value for e in events], dtype=np.float64)
        series[tag] = Scalars(steps=steps, epochs=epochs, values=values)
    return series


def read_spectra(checkpoint: str | Path, kind: str = "projector") -> list[tuple[int, np.ndarray]]:
    """``[(epoch, spectrum)]`` that :class:`~ssl_geom.callbacks.ProjectorRank` kept.

    ``kind="projector"``: singular values of the projector layer (geometry paper Fig. 1);
    ``"embedding"``: eigenvalues of the probe embeddings' covariance (Fig. 10).
    """
    if kind not in SPECTRA:
        raise ValueError(f"kind must be one of {list(SPECTRA)}, got {kind!r}")
    states = read_checkpoint(checkpoint).get("callbacks", {})
    matches = [s for key, s in states.items() if key.split("{")[0] == "ProjectorRank"]
    if not matches:
        raise ValueError(
            f"{checkpoint} holds no ProjectorRank callback state (callbacks saved: "
            f"{list(states)}); train with ssl_geom.callbacks.ProjectorRank attached"
        )
    return [(int(epoch), values.numpy()) for epoch, values in matches[0][SPECTRA[kind]]]


class CheckpointMismatchError(CheckpointFileError):
    """A checkpoint whose class, hyper-parameters or weights do not fit this ssl_geom version."""


def load_method(checkpoint: str | Path, method: type[SSLMethod] | None = None) -> SSLMethod:
    """The trained method of ``checkpoint``, in eval mode on the CPU.

    The class is ``method`` when given, else the ``_class_path`` that ``lightning fit``
    stored; a checkpoint from a plain ``Trainer`` has none and needs ``method=``.

    Raises:
        CheckpointMismatchError: the recorded class does not exist in this version, is no
            :class:`~ssl_geom.methods.SSLMethod` (e.g. a linear evaluation's checkpoint), or
            its hyper-parameters or weights do not fit it (another version of ssl_geom).
    """
    hparams = read_checkpoint(checkpoint).get("hyper_parameters", {})
    if method is None:
        class_path = hparams.get("_class_path")
        if class_path is None:
            raise ValueError(
                f"{checkpoint} does not record its method class (it was not written by "
                "`lightning fit`); pass method=, e.g. load_method(path, method=CARE)"
            )
        module_name, _, name = class_path.rpartition(".")
        if not module_name.startswith("ssl_geom."):
            raise ValueError(
                f"{checkpoint} asks for class {class_path!r}, outside ssl_geom; import it "
                "yourself and pass method="
            )
        try:
            method = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            raise CheckpointMismatchError(
                f"{checkpoint} was written by a version of ssl_geom with a class "
                f"{class_path!r}, which this version ({ssl_geom.__version__}) does not have. "
                f"{_OTHER_VERSION_FIX}"
            ) from None
    if not (isinstance(method, type) and issubclass(method, SSLMethod)):
        raise CheckpointMismatchError(
            f"{checkpoint} is a checkpoint of {method!r}, not of a self-supervised method: "
            "method must be an SSLMethod subclass. Pass the last.ckpt of a pretraining run "
            "(`lightning fit --config experiments/<method>_*.yaml`)"
        )
    unknown = sorted(set(hparams) - _init_arguments(method) - {"_class_path", "_instantiator"})
    if unknown:
        raise CheckpointMismatchError(
            f"{checkpoint} records hyper-parameters that {method.__name__} of this ssl_geom "
            f"version ({ssl_geom.__version__}) does not take: {unknown}; it was written by "
            f"another version. {_OTHER_VERSION_FIX}"
        )
    try:
        model = method.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as error:
        raise CheckpointMismatchError(
            f"{checkpoint} does not fit {method.__name__} of this ssl_geom version "
            f"({ssl_geom.__version__}): {type(error).__name__}: {_first_lines(error)}; it was "
            f"probably written by another version. {_OTHER_VERSION_FIX}"
        ) from error
    return model.eval()


_OTHER_VERSION_FIX = (
    "Load it with the version that wrote it (the git commit in its run's record, or the "
    "checkout that trained it), or retrain with this one"
)


def _init_arguments(method: type[SSLMethod]) -> set[str]:
    """Every keyword the ``__init__`` chain of ``method`` accepts (subclasses forward **kwargs)."""
    names: set[str] = set()
    for cls in method.__mro__:
        if "__init__" in vars(cls) and issubclass(cls, SSLMethod):
            names |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    return names


def _first_lines(error: Exception, limit: int = 300) -> str:
    """The error's message on one line, cut at ``limit`` characters."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text.rstrip(".") if len(text) <= limit else text[:limit] + " ..."


def run_checkpoint(log_dir: str | Path) -> Path:
    """``<log_dir>/checkpoints/last.ckpt``, or the newest ``*.ckpt`` there."""
    folder = Path(log_dir) / "checkpoints"
    last = folder / "last.ckpt"
    if last.is_file():
        return last
    found = sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"no checkpoint in {folder}; train with a ModelCheckpoint callback "
            "(`lightning fit` adds one writing last.ckpt)"
        )
    return found[-1]
