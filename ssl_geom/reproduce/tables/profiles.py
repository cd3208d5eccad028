"""The ``local``, ``gpu`` and ``paper`` profiles of every table, built one way.

``local``: 2 shared CPU cores, about 45 minutes a table, two single-threaded runs at a time;
3 seeds so every claim has a spread to be judged by. ``gpu``: one H100-class GPU, about 10
minutes a table. ``paper``: the paper's own settings (its configs as they are), a cluster.
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
GPU = (
    "--trainer.accelerator=gpu",
    "--trainer.devices=1",
    "--trainer.precision=bf16-mixed",
    "--data.num_workers=8",
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
        "gpu": trained("gpu", GPU_SEEDS, (*GPU, *gpu_overrides), gpu_text),
    }
    if paper_text is not None:
        profiles["paper"] = Profile(
            name="paper",
            seeds=paper_seeds,
            overrides=(),
            description=f"paper profile: {paper_text}",
        )
    return profiles
