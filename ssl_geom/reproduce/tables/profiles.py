"""The ``local``, ``gpu`` and ``paper`` profiles of every table, built one way.

``local``: 2 shared CPU cores, about 45 minutes a table, two single-threaded runs at a time;
3 seeds so every claim has a spread to be judged by. ``gpu``: one H100-class GPU (16 CPU cores),
four runs at a time sharing it; its time per table is an estimate until measured
(docs/reproduce.md, "The gpu profile's estimate"). ``paper``: the paper's own settings (its configs as they are), a cluster.
A table gives only what is its own (:func:`table_profiles`); how each table's local budget
was chosen is told in docs/reproduce.md.
"""

from __future__ import annotations

from typing import Any

from ..schema import Profile, Row, UsesSelection

CPU = (
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.precision=32-true",
    "--data.num_workers=2",
)
# The GPU machine: 16 CPU cores for GPU_PARALLEL_RUNS runs side by side on its one GPU (a
# run's start-up, validation and linear evaluation leave the GPU idle, which another run
# fills: pool.py). Each run's main process and its loader workers fit its share of the cores:
# GPU_PARALLEL_RUNS x (1 + GPU_DATA_WORKERS) <= GPU_CORES.
GPU_CORES = 16
GPU_PARALLEL_RUNS = 4
GPU_DATA_WORKERS = GPU_CORES // GPU_PARALLEL_RUNS - 1
GPU = (
    "--trainer.accelerator=gpu",
    "--trainer.devices=1",
    "--trainer.precision=bf16-mixed",
    f"--data.num_workers={GPU_DATA_WORKERS}",
)
LOCAL_SEEDS = (0, 1, 2)
LOCAL_PARALLEL_RUNS = 2
GPU_SEEDS = (0, 1, 2)
PAPER_SEEDS = (0, 1, 2)
# The H-SSL MNIST CNNs at a quarter of their width (8/16/32 instead of 32/64/128 channels):
# at full width a CPU budget allows too few epochs.
QUARTER_WIDTH = '--model.backbone_kwargs={"channels": [8, 16, 32]}'


def table_profiles(
    *,
    local_overrides: tuple[str, ...],
    local_text: str,
    gpu_overrides: tuple[str, ...],
    gpu_text: str,
    paper_text: str | None,
    local_seeds: tuple[int, ...] = LOCAL_SEEDS,
    paper_seeds: tuple[int, ...] = PAPER_SEEDS,
    rows: tuple[Row, ...] | None = None,
    substitutes: dict[str, tuple[str, tuple[str, ...]]] | None = None,
    method_overrides: dict[str, tuple[str, ...]] | None = None,
    local_row_overrides: dict[str, tuple[str, ...]] | None = None,
    uses_selection: UsesSelection | None = None,
) -> dict[str, Profile]:
    """One table's profiles from its own pieces.

    ``local`` and ``gpu`` train with the shared device settings (:data:`CPU`, :data:`GPU`)
    followed by ``local_overrides`` / ``gpu_overrides``, on ``rows`` (``None``: the table's)
    with ``substitutes``, ``method_overrides`` and ``uses_selection``; ``local`` alone has
    per-row overrides. Every row of a profile runs the same seeds. ``paper`` (left out when
    ``paper_text`` is ``None``) runs the table's own rows with their configs unchanged. Each description reads ``"<name> profile: <n> seeds"`` followed
    by ``local_text`` / ``gpu_text``, and ``"paper profile: "`` followed by ``paper_text``.
    """

    def trained(
        name: str, seeds: tuple[int, ...], overrides: tuple[str, ...], text: str, **own: Any
    ) -> Profile:
        return Profile(
            name=name,
            seeds=seeds,
            overrides=overrides,
            description=f"{name} profile: {len(seeds)} seeds{text}",
            substitutes=dict(substitutes or {}),
            rows=rows,
            method_overrides=dict(method_overrides or {}),
            uses_selection=uses_selection,
            **own,
        )

    profiles = {
        "local": trained(
            "local",
            local_seeds,
            (*CPU, *local_overrides),
            local_text,
            row_overrides=dict(local_row_overrides or {}),
            parallel_runs=LOCAL_PARALLEL_RUNS,
        ),
        "gpu": trained(
            "gpu", GPU_SEEDS, (*GPU, *gpu_overrides), gpu_text, parallel_runs=GPU_PARALLEL_RUNS
        ),
    }
    if paper_text is not None:
        profiles["paper"] = Profile(
            name="paper",
            seeds=paper_seeds,
            overrides=(),
            description=f"paper profile: {paper_text}",
        )
    return profiles
