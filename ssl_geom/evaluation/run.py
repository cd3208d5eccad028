"""``evaluate_checkpoint``: linear evaluation + kNN of one checkpoint from Python, in one call.

The command line does the same with ``lightning fit`` / ``lightning test`` and an
``experiments/linear_*.yaml`` config; this function is for notebooks and the reproduce
tables, which evaluate a checkpoint they just trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ssl_geom.data.base import SSLDataModule
from ssl_geom.evaluation.data import Augment, LinearEvalData
from ssl_geom.evaluation.linear import LinearEval


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: SSLDataModule,
    max_epochs: int = 100,
    augment: Augment = False,
    cache_features: bool = True,
    batch_size: int | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    **linear_kwargs: Any,
) -> dict[str, float]:
    """Train :class:`LinearEval` on ``dataset`` and return its test metrics.

    Returns the values logged at test time (fractions in [0, 1]): ``linear/test_acc`` (mean
    over the classifiers), ``linear/test_acc_std``, ``linear/test_acc_<i>`` and
    ``knn/test_acc``; when ``dataset`` holds out a validation split (``val_samples``), also
    the trained classifiers' ``linear/val_acc`` (and ``_std``, ``_<i>``) on it, which is what
    a choice between protocols or pretrained runs may read. ``batch_size`` overrides the dataset's. ``linear_kwargs`` go to :class:`LinearEval` (``n_classifiers``,
    ``optimizer``, ``lr``, ...); ``trainer_kwargs`` to the ``Trainer`` (default: no logger,
    no checkpoints, no progress bar, CPU-or-GPU as Lightning picks).
    """
    data = LinearEvalData(
        dataset, augment=augment, cache_features=cache_features, batch_size=batch_size
    )
    model = LinearEval(
        str(checkpoint),
        num_classes=dataset.num_classes,
        in_channels=dataset.in_channels,
        **linear_kwargs,
    )
    settings = {
        "max_epochs": max_epochs,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **(trainer_kwargs or {}),
    }
    trainer = L.Trainer(**settings)
    trainer.fit(model, datamodule=data)
    metrics: dict[str, float] = {}
    if dataset.has_validation_split:
        validated = trainer.validate(model, datamodule=data, verbose=False)
        metrics.update({name: float(value) for name, value in validated[0].items()})
    results = trainer.test(model, datamodule=data, verbose=False)
    metrics.update({name: float(value) for name, value in results[0].items()})
    return metrics
