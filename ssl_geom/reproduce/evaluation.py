"""Linear evaluation of a table's pretrained runs, where the paper evaluates that way.

- CARE Table 1 reports "top-1 linear probe accuracy ... the mean performance from 3 different
  random initializations for the linear classifier" (Gupta et al., arXiv:2306.13924, App.
  E.3): its cells are this linear evaluation (``TableSpec.linear_eval == "headline"``).
- H-SSL Tables 1-2 report the *detached* classifier trained online (Keller et al.,
  arXiv:2211.08282, App. A), which stays their headline; under a short budget that probe need
  not have converged, so the linear evaluation (trained after pretraining, through the readout
  its protocol names) is shown beside it, in its own labelled table (``"beside"``).

The protocol of each dataset is a config of ``experiments/`` (epochs, batch size, optimiser,
readout): ``schema.LINEAR_CONFIGS``, or a table's own (``TableSpec.linear_configs``). It is
read here so the command line and the tables cannot drift apart;
the images and subsets are the pretraining DataModule's (the profile's budget). Datasets
without a linear config (MNIST, Tiny ImageNet: no paper evaluates them linearly) get none.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ssl_geom.data.base import SSLDataModule
from ssl_geom.evaluation import evaluate_checkpoint

from .configs import experiments_dir
from .schema import LINEAR_CONFIGS, LinearEvalMode, TableSpec


def linear_config(
    dataset: SSLDataModule,
    experiments: Path | None = None,
    configs: Mapping[str, str] = LINEAR_CONFIGS,
) -> Path | None:
    """The linear-evaluation config of ``dataset`` (file names by dataset name: ``configs``;
    in ``experiments``, default the installed or checked-out folder), or ``None`` when the
    papers have none."""
    name = configs.get(dataset.name)
    return (experiments or experiments_dir()) / name if name is not None else None


def protocol_for(
    mode: LinearEvalMode,
    dataset: SSLDataModule,
    experiments: Path,
    configs: Mapping[str, str] = LINEAR_CONFIGS,
) -> Path | None:
    """The linear config that will evaluate a run, checked to exist before the run trains.

    ``mode`` and ``configs`` are the table's ``linear_eval`` and ``linear_configs`` (carried by
    the run's spec); ``experiments`` the folder of the run's own config, whose linear configs
    its id hashes (plan.linear_protocols). ``None`` when the table shows no linear evaluation
    or the dataset has no linear config.
    """
    config = linear_config(dataset, experiments, configs)
    if mode == "none" or config is None:
        return None
    if not config.is_file():
        raise FileNotFoundError(
            f"the linear evaluation of {dataset.name} reads {config}, which does not exist; "
            f"put {config.name} beside the run's config (a copy of the installed experiments' "
            "one) or plan the table with linear_eval='none'"
        )
    return config


def evaluate_run(
    config: Path | None, checkpoint: str | Path, dataset: SSLDataModule
) -> dict[str, Any] | None:
    """Linear evaluation + kNN of one pretrained run by ``config`` (:func:`protocol_for`).

    Returns ``{"config", "protocol", "metrics" (fractions), "wall_time_s"}`` for the run's
    record, or ``None`` when there is no config.
    """
    if config is None:
        return None
    protocol = yaml.safe_load(config.read_text())
    start = time.perf_counter()
    metrics = evaluate_checkpoint(
        checkpoint,
        dataset,
        max_epochs=protocol["trainer"]["max_epochs"],
        augment=protocol["data"]["init_args"]["augment"],
        cache_features=protocol["data"]["init_args"]["cache_features"],
        batch_size=protocol["data"]["init_args"]["dataset"]["init_args"]["batch_size"],
        trainer_kwargs={"devices": 1},
        **protocol["model"]["init_args"],
    )
    return {
        "config": str(config),
        "protocol": protocol,
        "metrics": metrics,
        "wall_time_s": time.perf_counter() - start,
    }


def headline_caption(table: TableSpec) -> str:
    """What a cell of the main table is."""
    if table.linear_eval == "headline":
        return (
            "Each cell: ours, top-1 % of a linear evaluation of the frozen pretrained backbone "
            "(the mean over 3 classifier initialisations, experiments/linear_*.yaml), mean ± std "
            "over seeds (n = number of finished seeds) / *paper*."
        )
    return (
        "Each cell: ours, top-1 % of the detached linear classifier on the test split, "
        "mean ± std over seeds (n = number of finished seeds) / *paper*."
    )
