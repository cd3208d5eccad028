"""Cost of the geometry callbacks at their defaults, per callback and in total.

Setup: SimCLR (lightly's ``NTXentLoss``, temperature 0.5) with a small CNN ``backbone`` and a
linear ``projection_head`` (the geometry paper's projector, which FVU needs at its defaults)
defined here, trained on Fashion-MNIST through ``ssl_geom.data.MNISTDataModule(variant=
"fashion")`` (all 60,000 training images by default, validation on the 10,000 test images
with a feature-norm readout as a stand-in for an online probe). One epoch per ``fit``; the two
arms alternate (none, all, all, none, ...) in the same process so drifts in machine speed hit
both.

In the "all" arm every callback is built at its defaults and then made to measure in that
epoch, whatever its default cadence, so every measurement is timed: a callback that measures
every N epochs costs one measurement / N per epoch (an epoch where it skips is not free, it is
where the cost is spread). Each measurement is split into the work the callbacks share (the
reference-set embedding, the K augmented embeddings, the per-sample views) and each callback's
own part, by timing each of these calls less the shared calls nested inside it. A shared part
is counted in every epoch where at least one of its callbacks measures. Drawing the per-sample
views and loading the reference inputs happen once per run (at the first measurement); they are
reported apart from the per-epoch total.

Reported (medians over ``--repeats``): seconds per measurement of each part, its cadence, and
its cost per epoch as a percentage of the epoch without callbacks, by two estimates: against
the median epoch of the arm without callbacks, and paired (each run's seconds against the same
epoch less the time inside the callbacks' hook, which drifts less when the load of a shared
machine changes between epochs); the total of each; also the end-to-end epoch times of both
arms and the time inside the callbacks' hook (every callback measuring). A markdown table goes
to stdout, everything to ``--json``.

Usage::

    python benchmarks/callbacks.py --max-train-samples 20000 --repeats 3   # the issue's setting
    python benchmarks/callbacks.py --quick                 # tiny run to check it works
    python benchmarks/callbacks.py --max-train-samples 20000 --json out.json
    python benchmarks/callbacks.py --max-train-samples 20000 --repeats 2 --profiler simple
    python benchmarks/callbacks.py --max-train-samples 20000 --accelerator gpu   # on a GPU

Needs Fashion-MNIST in ``/usr/share/datasets/fashion-mnist`` (``apt-get install
dataset-fashion-mnist``) or under ``--root``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightly.loss import NTXentLoss
from quiet_trainer import quiet_trainer
from torch import Tensor, nn

import ssl_geom.callbacks as geometry
from ssl_geom.data import MNISTDataModule

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


class SmallSimCLR(L.LightningModule):
    """A user's own SimCLR module: lightly-style ``backbone`` + ``projection_head``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            *_block(1, 32, stride=2),
            *_block(32, 64, stride=2),
            *_block(64, 128, stride=2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.projection_head = nn.Linear(128, 64, bias=False)
        self.criterion = NTXentLoss(temperature=0.5)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        (x1, x2), _ = batch
        z1 = self.projection_head(self.backbone(x1))
        z2 = self.projection_head(self.backbone(x2))
        loss = self.criterion(z1, z2)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, _ = batch
        self.log("val/feature_norm", self.backbone(x).norm(dim=1).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class EpochTimer(L.Callback):
    """Wall time from the start of the training epoch to its end (validation included)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class HookTimer(L.Callback):
    """Pair of callbacks placed around the geometry callbacks; times their validation hook."""

    def __init__(self, record: list[float], is_end: bool) -> None:
        self.record = record
        self.is_end = is_end

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.is_end:
            self.record[-1] = time.perf_counter() - self.record[-1]
        else:
            self.record.append(time.perf_counter())


@dataclass(frozen=True)
class Part:
    """A timed part of a measurement: a method of ``users``' callbacks, or a callback's own
    ``measure`` (less the parts nested in it). ``once_per_run`` parts are cached for the run."""

    name: str
    method: str
    users: tuple[str, ...]
    once_per_run: bool = False


# Every callback of ssl_geom.callbacks; each is named by its class below.
CLASSES: tuple[type[L.Callback], ...] = (
    geometry.ProjectorRank,
    geometry.WahbaError,
    geometry.RelativeEquivariance,
    geometry.FractionUnexplainedVariance,
    geometry.LabelMatch,
    geometry.KNNAccuracy,
)
CALLBACKS = RANK, WAHBA, GAMMA, FVU, LABEL, KNN = tuple(c.__name__ for c in CLASSES)
PARTS = (
    Part("reference-set embedding (shared)", "reference_features", (RANK, WAHBA, GAMMA)),
    Part("K augmented embeddings (shared)", "augmented_embeddings", (WAHBA, GAMMA)),
    Part("per-sample views embedded (shared)", "view_features", (FVU, LABEL)),
    *(Part(name, "measure", (name,)) for name in CALLBACKS),
    Part("reference inputs loaded", "reference_samples", CALLBACKS, once_per_run=True),
    Part("per-sample views drawn", "per_sample_views", (FVU, LABEL), once_per_run=True),
)


class Stopwatch:
    """Seconds inside each wrapped call, less the wrapped calls nested inside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._nested.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - self._nested.pop()
                if self._nested:
                    self._nested[-1] += elapsed

        return timed


def measuring_now(stopwatch: Stopwatch) -> tuple[list[L.Callback], dict[str, int]]:
    """The callbacks at their defaults, each measuring this epoch and timed by ``stopwatch``;
    and each one's default cadence (``every_n_epochs``)."""
    callbacks = [cls() for cls in CLASSES]
    cadences = {}
    for callback in callbacks:
        name = type(callback).__name__
        cadences[name] = callback.every_n_epochs
        callback.every_n_epochs = 1
        for part in PARTS:
            if name in part.users and hasattr(callback, part.method):
                timed = stopwatch.wrap(part.name, getattr(callback, part.method))
                setattr(callback, part.method, timed)
    return callbacks, cadences


def share_of_epochs(cadences: list[int]) -> float:
    """Fraction of epochs in which at least one of these cadences measures."""
    period = math.lcm(*cadences)
    return sum(any(e % c == 0 for c in cadences) for e in range(1, period + 1)) / period


def run_epoch(
    datamodule: MNISTDataModule,
    with_callbacks: bool,
    limit: int | float,
    hooks: list[float],
    parts: list[dict[str, float]],
    profiler: str | None = None,
    accelerator: str = "cpu",
) -> tuple[float, dict[str, int]]:
    """Seconds of one training epoch (with validation) of a fresh model, and the cadences.

    With callbacks, the seconds of each :data:`PARTS` entry are appended to ``parts`` and the
    time inside the geometry callbacks' hook to ``hooks``. ``profiler="simple"`` prints
    Lightning's per-hook times after the fit.
    """
    torch.manual_seed(0)
    timer = EpochTimer()
    callbacks: list[L.Callback] = []
    cadences: dict[str, int] = {}
    stopwatch = Stopwatch()
    if with_callbacks:
        geometry, cadences = measuring_now(stopwatch)
        callbacks = [HookTimer(hooks, False), *geometry, HookTimer(hooks, True)]
    trainer = quiet_trainer(
        max_epochs=1,
        num_sanity_val_steps=0,
        limit_train_batches=limit,
        callbacks=[*callbacks, timer],
        profiler=profiler,
        accelerator=accelerator,
    )
    trainer.fit(SmallSimCLR(), datamodule=datamodule)
    if with_callbacks:
        parts.append({part.name: stopwatch.seconds.get(part.name, 0.0) for part in PARTS})
    return timer.seconds[0], cadences


def cost_table(
    parts: list[dict[str, float]],
    cadences: dict[str, int],
    epoch_s: float,
    paired_epochs_s: list[float],
) -> list[dict[str, Any]]:
    """One row per part: median seconds per measurement, cadence, per-epoch cost.

    ``percent_of_epoch`` relates the median seconds to ``epoch_s`` (the median epoch of the
    arm without callbacks); ``percent_paired`` relates each run's seconds to the same run's
    epoch less the time inside the callbacks' hook (``paired_epochs_s``), then takes the
    median: both halves of that ratio were timed minutes apart at most, so it drifts less when
    the machine's load changes between epochs.
    """
    rows = []
    for part in PARTS:
        runs = [run[part.name] for run in parts]
        share = 1.0
        row: dict[str, Any] = {
            "part": part.name,
            "users": list(part.users),
            "seconds": statistics.median(runs),
            "once_per_run": part.once_per_run,
        }
        if not part.once_per_run:
            share = share_of_epochs([cadences[name] for name in part.users])
            row["share_of_epochs"] = share
        row["percent_of_epoch"] = 100 * row["seconds"] * share / epoch_s
        row["percent_paired"] = statistics.median(
            100 * seconds * share / paired
            for seconds, paired in zip(runs, paired_epochs_s, strict=True)
        )
        rows.append(row)
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-epoch total of the parts measured at a cadence, by each estimate."""
    per_epoch = [row for row in rows if not row["once_per_run"]]
    return {
        "percent_of_epoch": sum(row["percent_of_epoch"] for row in per_epoch),
        "percent_paired": sum(row["percent_paired"] for row in per_epoch),
    }


def markdown(rows: list[dict[str, Any]], cadences: dict[str, int], epoch_s: float) -> str:
    lines = [
        f"epoch without callbacks: {epoch_s:.2f} s (median of that arm)",
        "",
        "| part | used by | s per measurement | measured | % of the epoch | % paired |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        users = ", ".join(row["users"]) if len(row["users"]) < len(CALLBACKS) else "all"
        if row["once_per_run"]:
            when = "once per run"
        else:
            when = f"in {100 * row['share_of_epochs']:.0f} % of epochs"
        lines.append(
            f"| {row['part']} | {users} | {row['seconds']:.3f} | {when} | "
            f"{row['percent_of_epoch']:.2f} | {row['percent_paired']:.2f} |"
        )
    total = totals(rows)
    lines += [
        f"| **total per epoch** | | | | **{total['percent_of_epoch']:.2f}** | "
        f"**{total['percent_paired']:.2f}** |",
        "",
        "% of the epoch: median seconds / median epoch without callbacks; % paired: median "
        "over runs of seconds / (the same epoch - the time inside the callbacks' hook).",
        "cadences (every_n_epochs): "
        + ", ".join(f"{name} {cadence}" for name, cadence in cadences.items()),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="Fashion-MNIST folder (default: Debian's)")
    parser.add_argument("--max-train-samples", type=int, default=None, help="default: all")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per arm")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="tiny run (checks the script)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profiler", choices=("simple",), default=None, help="print per-hook times per epoch"
    )
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()
    if args.root is None and not FASHION_DIR.is_dir():
        raise SystemExit(
            f"Fashion-MNIST not found in {FASHION_DIR}: apt-get install dataset-fashion-mnist, "
            "or pass --root"
        )
    limit: int | float = 1.0
    if args.quick:
        args.max_train_samples, args.repeats, limit = 2048, 1, 2

    datamodule = MNISTDataModule(
        root=args.root,
        variant="fashion",
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        max_train_samples=args.max_train_samples,
    )
    # warm-up: file reading, worker start, lazy imports
    run_epoch(datamodule, True, 2, [], [], accelerator=args.accelerator)
    times: dict[str, list[float]] = {"none": [], "all": []}
    hooks: list[float] = []
    parts: list[dict[str, float]] = []
    cadences: dict[str, int] = {}
    for repeat in range(args.repeats):
        order = ("none", "all") if repeat % 2 == 0 else ("all", "none")
        for arm in order:
            seconds, arm_cadences = run_epoch(
                datamodule, arm == "all", limit, hooks, parts, args.profiler, args.accelerator
            )
            cadences.update(arm_cadences)
            times[arm].append(seconds)
            print(f"repeat {repeat} {arm:4s}: {seconds:7.2f} s/epoch", flush=True)

    none, every = statistics.median(times["none"]), statistics.median(times["all"])
    hook = statistics.median(hooks)
    paired = [epoch - inside for epoch, inside in zip(times["all"], hooks, strict=True)]
    rows = cost_table(parts, cadences, none, paired)
    results = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_samples": len(datamodule.source("ssl_train")),
        "seconds_per_epoch": times,
        "callback_seconds_per_epoch": hooks,
        "parts_seconds": parts,
        "cadences": cadences,
        "median_none_s": none,
        "median_all_s": every,
        "all_measuring_epoch_ratio": every / none - 1,
        "all_measuring_hook_ratio": hook / none,
        "cost_table": rows,
        "total_percent_per_epoch": totals(rows),
    }
    print(markdown(rows, cadences, none))
    print(
        f"train samples {results['train_samples']}; with every callback measuring in the same "
        f"epoch: {every:.2f} s vs {none:.2f} s ({100 * results['all_measuring_epoch_ratio']:+.1f}"
        f" %), {hook:.2f} s inside their hook ({100 * results['all_measuring_hook_ratio']:.1f} %)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
