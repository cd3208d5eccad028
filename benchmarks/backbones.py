"""Backbone cost: forward+backward time of each registered backbone next to its plain CNN.

What is measured: for each backbone, one training step's network work, i.e. ``out =
backbone(x)``, ``out.float().mean().backward()`` in train mode (BatchNorm batch statistics),
on one synthetic batch resident on the device, at the backbone's natural input size:

    hssl_mnist_*          1x28x28   (baseline hssl_mnist_translation)
    hssl_resnet20_tin_*   3x64x64   (baseline hssl_resnet20_tin_translation)
    hssl_resnet20_*       3x32x32   (baseline hssl_resnet20_translation)
    resnet18, resnet50    3x224x224 (their own baseline)
    *_cifar               3x32x32   (their own baseline)

No optimizer step, loss head or data loading (``benchmarks/training_step.py`` and
``benchmarks/dataloading.py`` measure those). Gradients are reset to ``None`` before each
step, outside the timed region, so every step allocates them alike.

Why ratios: absolute times depend on the machine and on whoever else uses it, but a ratio
of two networks timed in the same process, interleaved, mostly does not. Each backbone is
timed in a group with its plain-CNN counterpart (same architecture, same input, ``G = 1``);
in every round all members of a group are timed once, in list order on even rounds and in
reverse order on odd ones, so drift in machine load hits the candidate and its baseline
alike. A structured backbone's map has ``G`` times the numbers of the plain one (C channels
per group element), so the expected cost is about ``G`` times the plain one: ``ratio / G``
is the cost per group element, and ``ratio / G`` near 1 means the structure costs what ``G``
plain networks would, below 1 cheaper, above 1 dearer (overhead of the steered kernels).

Backbones with more than 100M parameters (``hssl_resnet20_cnn6x``, ~560M, the H-SSL Table 2
"CNN (6 x CHW)" baseline) are built, counted, reported as skipped and dropped unless
``--include-heavy`` is given.

Commands:

    # GPU, everything at batch 128
    python benchmarks/backbones.py --device cuda --include-heavy --json backbones_cuda.json

    # 2-core CPU: the H-SSL ResNet20s take ~6 s (plain) to ~50 s (scale) per step at batch 8,
    # so they and the ImageNet-size torchvision ResNets get smaller batches; a group's
    # members must share a batch size (ratios compare equal work), which is checked
    python benchmarks/backbones.py --batch-size 128 --rounds 3 \
        --batch-override 'hssl_resnet20*=8' --batch-override 'resnet18=32' \
        --batch-override 'resnet50=32' --json /tmp/backbones_bench.json
    # (~17 min wall on the shared 2-core machine at load ~4, 2 torch threads)

How to read the table: ``ms`` is the median over ``--rounds`` of one forward+backward at the
row's ``batch`` (``rounds`` lists every round); ``ratio`` = ms / ms of the group's baseline
(1 for the baseline itself; > 1 is slower); ``ratio/G`` as above; ``out`` is the per-sample
structured map ``(C, G, H, W)``; ``params`` in millions.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch

from ssl_geom.backbones import StructuredBackbone, build_backbone, list_backbones
from ssl_geom.io import write_atomic

HEAVY_PARAMS = 100_000_000
T = TypeVar("T")

# fnmatch pattern -> per-sample input shape; first match wins, so specific patterns come first.
INPUT_SHAPES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("hssl_mnist_*", (1, 28, 28)),
    ("hssl_resnet20_tin_*", (3, 64, 64)),
    ("hssl_resnet20_*", (3, 32, 32)),
    ("*_cifar", (3, 32, 32)),
    ("resnet18", (3, 224, 224)),
    ("resnet50", (3, 224, 224)),
)

# fnmatch pattern -> plain-CNN baseline; names matching none are their own baseline.
BASELINES: tuple[tuple[str, str], ...] = (
    ("hssl_mnist_*", "hssl_mnist_translation"),
    ("hssl_resnet20_tin_*", "hssl_resnet20_tin_translation"),
    ("hssl_resnet20_*", "hssl_resnet20_translation"),
)


@dataclass
class Result:
    """One row of the table (and of the JSON ``results`` list)."""

    name: str
    baseline: str
    group: str
    group_size: int
    params_m: float
    output_shape: tuple[int, ...]
    batch_size: int
    ms: float
    ms_rounds: list[float]
    ratio: float
    ratio_per_group_element: float


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--names", nargs="+", help="backbones to time (default: all registered)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument(
        "--batch-override",
        action="append",
        default=[],
        metavar="PATTERN=SIZE",
        help="batch size for backbones matching an fnmatch PATTERN (repeatable; last match "
        "wins); a backbone and its baseline must end up with the same size",
    )
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed steps per model")
    p.add_argument("--rounds", type=positive_int, default=3, help="alternating repetitions")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=positive_int, help="torch.set_num_threads (default: torch's)")
    p.add_argument(
        "--include-heavy",
        action="store_true",
        help=f"also time backbones with more than {HEAVY_PARAMS / 1e6:.0f}M parameters",
    )
    p.add_argument("--json", type=Path, help="write results here (must not exist yet)")
    return p


def lookup(name: str, table: tuple[tuple[str, T], ...]) -> T | None:
    """The value of the first ``(fnmatch pattern, value)`` pair whose pattern matches ``name``."""
    return next((value for pattern, value in table if fnmatch.fnmatchcase(name, pattern)), None)


def input_shape(name: str) -> tuple[int, int, int]:
    shape = lookup(name, INPUT_SHAPES)
    if shape is None:
        raise ValueError(
            f"no natural input size known for backbone {name!r}; add a pattern for it to "
            "INPUT_SHAPES in benchmarks/backbones.py"
        )
    return shape


def baseline_of(name: str) -> str:
    return lookup(name, BASELINES) or name


def parse_overrides(specs: list[str], registered: list[str]) -> list[tuple[str, int]]:
    """``["PATTERN=SIZE", ...]`` -> ``[(pattern, size), ...]``; a pattern must match a backbone."""
    overrides = []
    for spec in specs:
        pattern, sep, size = spec.rpartition("=")
        if not sep or not pattern or not size.isdigit() or int(size) < 1:
            raise ValueError(
                f"--batch-override {spec!r}: expected PATTERN=SIZE with SIZE >= 1, "
                "e.g. 'hssl_resnet20*=8'"
            )
        if not fnmatch.filter(registered, pattern):
            raise ValueError(
                f"--batch-override pattern {pattern!r} matches no registered backbone; "
                f"registered: {', '.join(registered)}"
            )
        overrides.append((pattern, int(size)))
    return overrides


def batch_size_for(name: str, overrides: list[tuple[str, int]], default: int) -> int:
    sizes = [size for pattern, size in overrides if fnmatch.fnmatchcase(name, pattern)]
    return sizes[-1] if sizes else default


def plan_groups(names: list[str], batch_of: dict[str, int]) -> dict[str, list[str]]:
    """Baseline -> its group (baseline first), checking that a group shares one batch size."""
    groups: dict[str, list[str]] = {}
    for name in names:
        base = baseline_of(name)
        if batch_of[name] != batch_of[base]:
            raise ValueError(
                f"{name} would run at batch {batch_of[name]} but its baseline {base} at "
                f"{batch_of[base]}; ratios need equal batches, so give both the same "
                "--batch-override"
            )
        group = groups.setdefault(base, [base])
        if name not in group:
            group.append(name)
    return groups


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_input(name: str, batch_size: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, *input_shape(name), generator=generator).to(device)


def step(
    model: StructuredBackbone, x: torch.Tensor, device: torch.device
) -> tuple[float, tuple[int, ...]]:
    """Seconds for one forward+backward, and the output's per-sample shape."""
    model.zero_grad(set_to_none=True)
    sync(device)
    start = time.perf_counter()
    out = model(x)
    out.float().mean().backward()
    sync(device)
    return time.perf_counter() - start, tuple(out.shape[1:])


def time_group(
    models: dict[str, StructuredBackbone],
    inputs: dict[str, torch.Tensor],
    args: argparse.Namespace,
    device: torch.device,
) -> tuple[dict[str, list[float]], dict[str, tuple[int, ...]]]:
    """Per-name step seconds over the rounds (order alternating per round) and output shapes."""
    names = list(models)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in names:
        for _ in range(args.warmup):
            step(models[name], inputs[name], device)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else reversed(names):
            elapsed, shapes[name] = step(models[name], inputs[name], device)
            seconds[name].append(elapsed)
    return seconds, shapes


def build_group(
    group: list[str], device: torch.device, include_heavy: bool
) -> tuple[dict[str, StructuredBackbone], dict[str, int], list[str]]:
    """Built models (train mode, on ``device``), parameter counts, and skip messages.

    A heavy model is built on the CPU to count its parameters and dropped unless
    ``include_heavy``; a group whose baseline is dropped is skipped whole (no ratios).
    """
    models: dict[str, StructuredBackbone] = {}
    params: dict[str, int] = {}
    skipped: list[str] = []
    for name in group:
        model = build_backbone(name)
        params[name] = count_params(model)
        if params[name] > HEAVY_PARAMS and not include_heavy:
            skipped.append(
                f"{name}: {params[name] / 1e6:.1f}M parameters > {HEAVY_PARAMS / 1e6:.0f}M "
                "(pass --include-heavy to time it)"
            )
            if name == group[0]:
                skipped += [f"{other}: its baseline {name} was skipped" for other in group[1:]]
                return {}, params, skipped
            continue
        models[name] = model.to(device).train()
    return models, params, skipped


def measure_group(
    group: list[str], batch_size: int, args: argparse.Namespace, device: torch.device
) -> tuple[list[Result], list[str]]:
    models, params, skipped = build_group(group, device, args.include_heavy)
    if not models:
        return [], skipped
    inputs = {name: make_input(name, batch_size, device) for name in models}
    seconds, shapes = time_group(models, inputs, args, device)
    base_ms = 1e3 * statistics.median(seconds[group[0]])
    results = []
    for name, model in models.items():
        ms = 1e3 * statistics.median(seconds[name])
        results.append(
            Result(
                name=name,
                baseline=group[0],
                group=model.group,
                group_size=model.group_size,
                params_m=params[name] / 1e6,
                output_shape=shapes[name],
                batch_size=batch_size,
                ms=ms,
                ms_rounds=[1e3 * s for s in seconds[name]],
                ratio=ms / base_ms,
                ratio_per_group_element=ms / base_ms / model.group_size,
            )
        )
    return results, skipped


def format_table(results: list[Result]) -> str:
    header = (
        f"{'name':28s} {'group':8s} {'G':>2s} {'params':>8s} {'out (C,G,H,W)':>17s} "
        f"{'batch':>5s} {'ms':>10s} {'ratio':>7s} {'ratio/G':>7s}  rounds (ms)"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        out = "x".join(map(str, r.output_shape))
        rounds = ", ".join(f"{ms:.0f}" if ms >= 10 else f"{ms:.2f}" for ms in r.ms_rounds)
        lines.append(
            f"{r.name:28s} {r.group:8s} {r.group_size:2d} {r.params_m:7.2f}M {out:>17s} "
            f"{r.batch_size:5d} {r.ms:10.1f} {r.ratio:7.2f} {r.ratio_per_group_element:7.2f}"
            f"  {rounds}"
        )
    return "\n".join(lines)


def resolve_names(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """Requested names (deduplicated, in order), with the registry's error for unknown ones."""
    registered = list_backbones()
    names = list(dict.fromkeys(args.names or registered))
    for name in names:
        if name not in registered:
            try:
                build_backbone(name)  # raises the registry's error listing what is registered
            except ValueError as err:
                parser.error(str(err))
    return names


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    if args.json is not None and args.json.exists():
        parser.error(f"--json {args.json} already exists; choose a new path (never overwritten)")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: directory {args.json.parent} does not exist")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = resolve_names(args, parser)
    try:
        overrides = parse_overrides(args.batch_override, list_backbones())
        batch_of = {
            n: batch_size_for(n, overrides, args.batch_size)
            for name in names
            for n in (name, baseline_of(name))
        }
        for name in batch_of:
            input_shape(name)
        groups = plan_groups(names, batch_of)
    except ValueError as err:
        parser.error(str(err))

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device={device} ({device_name}) torch={torch.__version__} "
        f"threads={torch.get_num_threads()} batch={args.batch_size} "
        f"overrides={args.batch_override or 'none'} warmup={args.warmup} rounds={args.rounds}; "
        "forward + out.float().mean().backward(), train mode, synthetic batch on the device"
    )
    start = time.perf_counter()
    results: list[Result] = []
    skipped: list[str] = []
    for base, group in groups.items():
        print(f"timing {', '.join(group)} ...", file=sys.stderr, flush=True)
        group_results, group_skipped = measure_group(group, batch_of[base], args, device)
        results += group_results
        skipped += group_skipped
    wall = time.perf_counter() - start

    print(format_table(results))
    for message in skipped:
        print(f"skipped {message}")
    print(f"wall time {wall:.0f} s")
    if args.json is not None:
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {
            "config": {**config, "torch": torch.__version__, "device_name": device_name},
            "results": [asdict(r) for r in results],
            "skipped": skipped,
            "wall_s": wall,
        }
        try:
            write_atomic(args.json, json.dumps(payload, indent=2))
        except FileExistsError:
            raise SystemExit(
                f"--json {args.json} appeared during the run; not overwriting it"
            ) from None
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
