"""Checkpoints written whole or not at all, beside their target.

Lightning's ``TorchCheckpointIO`` saves "atomically" through an fsspec transaction, which for
a local path writes a temporary file in the system's temp folder and then ``shutil.move``-s
it over the target: a rename when that folder is on the same file system, but a *copy* when
it is not (a tmpfs ``/tmp``, or a cluster node's local ``/tmp`` with the results on a network
share). A job killed during that copy leaves a truncated ``last.ckpt`` that every later resume
fails on, and a job killed before it leaves the temporary file in ``/tmp``.
:class:`AtomicCheckpointIO` writes local paths with :func:`ssl_geom.io.write_atomic` instead
(a temporary file beside the target, ``fsync``, one rename); what a killed save leaves is
removed by :func:`ssl_geom.io.remove_stale_temporaries` (the reproduce sweep does, at start).
Other file systems (``s3://``, ...) keep Lightning's way.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ssl_geom.io import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves go through :func:`ssl_geom.io.write_atomic`."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or get_protocol(str(path)) != "file":
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, buffer.getvalue(), overwrite=True)
