"""Read a user-supplied checkpoint file without running code from it.

A Lightning checkpoint is a pickle; unpickling an arbitrary one can execute anything
(``os.system`` in a ``__reduce__``). Every path a user hands us (``--ckpt_path``,
:mod:`ssl_geom.analysis`, the linear evaluation's pretrained checkpoint) goes through
:func:`read_checkpoint`, which uses
``torch.load(..., weights_only=True)``: tensors, numbers, strings and plain containers only.
Checkpoints written by this project's runs hold nothing else (checked by the tests that
resume and analyse real runs), so no ``torch.serialization.add_safe_globals`` allowlist is
needed. What torch's message says is reworded so the user learns *which* file failed, why,
and which file to pass instead (``expected``: each caller accepts its own kinds).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

LIGHTNING_CHECKPOINT = (
    "a checkpoint that `lightning fit` wrote (under <log_dir>/checkpoints/; last.ckpt with "
    "ModelCheckpoint(save_last=True))"
)


class CheckpointFileError(ValueError):
    """A file that is not a readable checkpoint, or one holding objects we refuse to unpickle."""


def read_checkpoint(path: str | Path, expected: str = LIGHTNING_CHECKPOINT) -> dict[str, Any]:
    """The checkpoint dict stored at ``path``, loaded on the CPU with ``weights_only=True``.

    ``expected`` describes the files the caller accepts and how they are made; every error
    ends with "pass <expected>".

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointFileError: ``"not a checkpoint file: <path>"`` for anything that is not a
            saved dict (text, truncated file, folder), or a refusal naming the object when
            the file holds pickled objects beyond plain data (possibly crafted).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass {expected}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        global_line = _refused_global(str(err))
        if global_line is None:  # bytes that are no pickle torch writes (text, garbage)
            raise CheckpointFileError(
                f"not a checkpoint file: {path} ({_first_line(err)}); pass {expected}"
            ) from None
        raise CheckpointFileError(
            f"refusing to load {path}: it holds pickled objects other than tensors and plain "
            f"data ({global_line}), and unpickling them could run code. Pass {expected}, "
            "which holds only those; or, if you trust whoever wrote this file, load it "
            "yourself with torch.load and its weights_only check turned off"
        ) from None
    except Exception as err:  # a non-checkpoint file fails anywhere in the unpickler
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise CheckpointFileError(
            f"not a checkpoint file: {path} ({reason}); pass {expected}"
        ) from err
    if not isinstance(loaded, dict):
        raise CheckpointFileError(
            f"not a checkpoint file: {path} (it holds a {type(loaded).__name__}, expected the "
            f"dict that Trainer.save_checkpoint / torch.save writes); pass {expected}"
        )
    return loaded


def _refused_global(message: str) -> str | None:
    """The line of torch's weights-only refusal naming the blocked global, if it names one."""
    for line in message.splitlines():
        if "GLOBAL" in line:
            return line.strip().rstrip(".")
    return None


def _first_line(err: Exception) -> str:
    """The detail of an unpickling failure: torch's specific line, not its generic preamble."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    specific = [line for line in lines if line.startswith("Unsupported") or "load key" in line]
    return (specific or lines or [type(err).__name__])[0]
