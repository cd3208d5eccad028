"""Shared test configuration and the one quiet Trainer every Lightning-level test builds.

Small thread pools so parallel workers don't thrash 2 cores. ``quiet_trainer`` is a plain
function rather than a fixture so that the DDP tests can call it inside their spawned
processes too (``from tests.conftest import quiet_trainer``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

torch.set_num_threads(1)


def quiet_trainer(**overrides: Any) -> L.Trainer:
    """A CPU ``Trainer`` that writes nothing (no logger, checkpoints, progress bar or model
    summary) and runs no validation; ``overrides`` replace or add any ``Trainer`` argument.

    The caller sets the run's length (``max_steps`` / ``max_epochs``), which is what each
    test is about.
    """
    options: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "limit_val_batches": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(overrides)
    return L.Trainer(**options)
