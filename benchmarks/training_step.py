"""Training throughput: SimCLR through the Lightning Trainer vs a bare PyTorch loop, and CARE.

What is compared (same process, same device, rounds alternating which runs first):

- ``bare``: a hand-written loop over the same ``SimCLR`` module's backbone, projector,
  ``info_nce`` loss, optimizer groups and per-step schedule (``ssl_geom.methods.optim``),
  under ``torch.autocast`` for ``bf16-mixed``;
- ``lightning``: ``Trainer.fit`` of ``SimCLR`` (logging ``train/loss``, ``train/info_nce``
  and ``lr`` every step, as in real runs; no probe, checkpointing, logger or progress bar);
- ``care``: ``CARE`` (SimCLR base, ``--n-split`` chunks, the dataset's batched
  same-parameters SimCLR transform) through the Trainer, to give CARE's cost relative
  to SimCLR;
- ``care_device`` (``--care-device-views``): the same with ``augment_on="device"``'s
  grouped transform, which draws all chunks' parameters in one call per view.

Input: one synthetic batch of 2 views (+ the original for CARE) created once in device
memory and fed every step, so data loading is excluded (``benchmarks/dataloading.py``
measures that). Throughput is source images per second (each image is seen as 2 views;
CARE also forwards 2 equivariance views). Steady state: ``--warmup`` untimed steps, then
``--steps`` timed ones; the median over ``--rounds`` is reported. Target: lightning/bare
>= 0.95.

Example (GPU): python benchmarks/training_step.py --device cuda --backbone resnet18_cifar \
    --batch-size 512 --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable

import lightning as L
import torch

from ssl_geom.data import CIFAR10DataModule, MNISTDataModule
from ssl_geom.losses import info_nce
from ssl_geom.methods import CARE, SimCLR
from ssl_geom.methods.optim import build_optimizer, build_schedule, weight_decay_groups

SHAPES = {"cifar10": (3, 32), "mnist": (1, 28)}
MODULES = {"cifar10": CIFAR10DataModule, "mnist": MNISTDataModule}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backbone", default="resnet18_cifar")
    p.add_argument("--dataset", choices=tuple(SHAPES), default="cifar10", help="image shape")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", choices=("32", "bf16-mixed"), default="32")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating repetitions")
    p.add_argument("--n-split", type=int, default=16, help="CARE chunks per batch")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    p.add_argument("--skip-care", action="store_true")
    p.add_argument(
        "--care-device-views",
        action="store_true",
        help="also time CARE with the batched device views (augment_on='device'): one "
        "grouped call per view instead of one transform call per chunk",
    )
    p.add_argument(
        "--count-ops",
        action="store_true",
        help="after the timed rounds, profile --steps steady steps of the bare loop and of the "
        "Trainer (torch.profiler) and print, per step, the operator calls each makes, the calls "
        "the Trainer adds, and the host reads of tensor values (aten::item, which synchronise "
        "when the tensor is on a GPU)",
    )
    p.add_argument(
        "--profile-lightning",
        action="store_true",
        help="after the timed rounds, one more (untimed) Trainer.fit of SimCLR under Lightning's "
        "SimpleProfiler, printing where a step's host time goes (hooks, logging, optimizer)",
    )
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_kwargs(args: argparse.Namespace) -> dict:
    channels, _ = SHAPES[args.dataset]
    return {
        "backbone": args.backbone,
        "in_channels": channels,
        "batch_size": args.batch_size,
        "optimizer": "lars",
        "lr": 0.3,
        "weight_decay": 1e-6,
        "warmup_epochs": 0,
        # Explicit, so the Trainer run has the bare loop's memory format (the default, None,
        # switches to channels_last on CUDA).
        "channels_last": args.channels_last,
    }


def prepare(model: L.LightningModule, args: argparse.Namespace) -> L.LightningModule:
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.backbone = torch.compile(model.backbone)
    return model


def make_batch(args: argparse.Namespace, device: torch.device, n_views: int) -> tuple:
    channels, size = SHAPES[args.dataset]
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    views = [
        torch.randn(args.batch_size, channels, size, size, generator=g)
        .to(device)
        .contiguous(memory_format=fmt)
        for _ in range(n_views)
    ]
    labels = torch.zeros(args.batch_size, dtype=torch.long, device=device)
    return views, labels


def time_bare(
    args: argparse.Namespace, device: torch.device, profiler: torch.profiler.profile | None = None
) -> float:
    """Seconds for ``args.steps`` steps of the hand-written SimCLR loop (profiled when given)."""
    torch.manual_seed(0)
    model = prepare(SimCLR(**model_kwargs(args)).to(device), args).train()
    groups = weight_decay_groups(model.ssl_modules(), 1e-6)
    for g in groups:
        g["lr"] = 0.3
    optimizer = build_optimizer("lars", groups, lr=0.3)
    schedule = build_schedule(optimizer, "warmup_cosine", args.warmup + args.steps, 0)
    views, _ = make_batch(args, device, 2)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=args.precision != "32")

    def step() -> None:
        with autocast:
            z1 = model.project(views[0])[1]
            z2 = model.project(views[1])[1]
            loss = info_nce(z1, z2, temperature=0.5)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    sync(device)
    if profiler is not None:
        profiler.start()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    elapsed = time.perf_counter() - start
    if profiler is not None:
        profiler.stop()
    return elapsed


class Repeat:
    """An iterable train loader yielding the same batch object ``n`` times."""

    def __init__(self, batch: tuple, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return (self.batch for _ in range(self.n))


class StepTimer(L.Callback):
    """Wall time from the first timed step's start to the last step's end (profiled if given)."""

    def __init__(
        self,
        warmup: int,
        device: torch.device,
        profiler: torch.profiler.profile | None = None,
    ) -> None:
        self.warmup, self.device, self.profiler = warmup, device, profiler
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            sync(self.device)
            if self.profiler is not None:
                self.profiler.start()
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        sync(self.device)
        self.end = time.perf_counter()
        if self.profiler is not None:
            self.profiler.stop()


def time_lightning(
    args: argparse.Namespace,
    device: torch.device,
    build: Callable[[], L.LightningModule],
    profiler: str | None = None,
    op_profiler: torch.profiler.profile | None = None,
) -> float:
    """Seconds for ``args.steps`` timed steps of ``Trainer.fit`` on the synthetic batch.

    ``profiler``: a Lightning profiler name; ``op_profiler``: a torch profiler run over the
    timed steps (started and stopped by the timer).
    """
    torch.manual_seed(0)
    model = prepare(build(), args)
    n_views = 3 if isinstance(model, CARE) else 2
    batch = make_batch(args, device, n_views)
    timer = StepTimer(args.warmup, device, op_profiler)
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision="32-true" if args.precision == "32" else "bf16-mixed",
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        profiler=profiler,
    )
    trainer.fit(model, train_dataloaders=Repeat(batch, args.warmup + args.steps))
    if profiler is not None:
        print(trainer.profiler.summary())
    return timer.end - timer.start


def op_counts(prof: torch.profiler.profile, steps: int) -> Counter[str]:
    """Calls per step of each operator the profiler saw (every nesting level)."""
    return Counter({e.key: e.count / steps for e in prof.key_averages()})


def count_ops(args: argparse.Namespace, device: torch.device) -> None:
    """Print what the Trainer runs per step on top of the bare loop (see ``--count-ops``)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    bare_prof = torch.profiler.profile(activities=activities)
    time_bare(args, device, bare_prof)
    trainer_prof = torch.profiler.profile(activities=activities)
    time_lightning(args, device, lambda: SimCLR(**model_kwargs(args)), op_profiler=trainer_prof)
    bare, trainer = op_counts(bare_prof, args.steps), op_counts(trainer_prof, args.steps)
    aten = {name for name in {*bare, *trainer} if name.startswith("aten::")}
    print(
        f"operator calls per step (aten::*, all nesting levels): bare {sum(bare[n] for n in aten):.1f}"
        f", Trainer {sum(trainer[n] for n in aten):.1f}"
    )
    extra = sorted(((trainer[n] - bare[n], n) for n in aten), reverse=True)
    listed = ", ".join(f"{name} {d:+.1f}" for d, name in extra if abs(d) >= 0.5)
    print(f"  the Trainer's extra calls per step: {listed or 'none'}")
    for name in ("aten::item", "aten::_local_scalar_dense", "aten::nonzero"):
        print(f"  {name} per step: bare {bare[name]:.2f}, Trainer {trainer[name]:.2f}")
    if device.type == "cuda":
        for label, prof in (("bare", bare_prof), ("Trainer", trainer_prof)):
            kernels = sum(
                e.count
                for e in prof.key_averages()
                if e.device_type == torch.autograd.DeviceType.CUDA
            )
            print(f"  {label}: {kernels / args.steps:.1f} CUDA kernels/copies per step")


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but torch.cuda.is_available() is False")
    datamodule = MODULES[args.dataset](root="unused", num_workers=0)

    def care() -> CARE:
        return CARE(
            n_split=args.n_split,
            same_params_transform=datamodule.augmentation,
            **model_kwargs(args),
        )

    runs: dict[str, Callable[[], float]] = {
        "bare": lambda: time_bare(args, device),
        "lightning": lambda: time_lightning(args, device, lambda: SimCLR(**model_kwargs(args))),
    }
    if not args.skip_care:
        runs["care"] = lambda: time_lightning(args, device, care)
    if args.care_device_views:
        on_device = MODULES[args.dataset](root="unused", num_workers=0, augment_on="device")

        def care_device() -> CARE:
            return CARE(
                n_split=args.n_split,
                same_params_transform=on_device.augmentation,
                **model_kwargs(args),
            )

        runs["care_device"] = lambda: time_lightning(args, device, care_device)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in order:
            seconds[name].append(runs[name]())
    rate = {k: args.batch_size * args.steps / statistics.median(v) for k, v in seconds.items()}
    print(
        f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'})"
        f" backbone={args.backbone} batch={args.batch_size} precision={args.precision} "
        f"steps={args.steps} warmup={args.warmup} rounds={args.rounds} "
        f"threads={torch.get_num_threads()} channels_last={args.channels_last} "
        f"compile={args.compile}; synthetic batch resident on the device"
    )
    for name, value in rate.items():
        spread = ", ".join(f"{args.batch_size * args.steps / s:.0f}" for s in seconds[name])
        print(f"  {name:9s} {value:10.1f} images/s  (rounds: {spread})")
    ratio = rate["lightning"] / rate["bare"]
    print(f"  lightning / bare = {ratio:.3f} (target >= 0.95)")
    for name in ("care", "care_device"):
        if name in rate:
            print(
                f"  {name} / SimCLR time per step = {rate['lightning'] / rate[name]:.2f}x "
                f"(n_split={args.n_split}; target <= 2.1)"
            )
    if args.count_ops:
        count_ops(args, device)
    if args.profile_lightning:
        time_lightning(args, device, lambda: SimCLR(**model_kwargs(args)), profiler="simple")


if __name__ == "__main__":
    main()
