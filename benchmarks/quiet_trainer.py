"""The ``Trainer`` the CPU benchmarks time: one CPU device, writing nothing.

No logger, checkpoints, progress bar or model summary: their output is not what a benchmark
measures, and their time would be counted in it. Imported by the scripts beside it
(``python benchmarks/<name>.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

from typing import Any

import lightning as L


def quiet_trainer(**settings: Any) -> L.Trainer:
    """``L.Trainer(**settings)``, on one CPU device and silent unless ``settings`` say otherwise."""
    quiet = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**quiet, **settings})
