"""SimCLR view throughput: per-sample CPU transforms vs batched device augmentation vs kornia.

Three ways to make SimCLR views of CIFAR-size uint8 images (32 px, 3 channels, strength of
``simclr_params(32)``), each with per-sample random parameters:

* ``cpu_per_sample``: the loader-worker pipeline (``SSLDataModule.view_transform()``: v2 ops
  on one uint8 image at a time, then ToDtype + Normalize), on one core: multiply by the
  loader workers you have;
* ``device``: ``ssl_geom.augment.DeviceSimCLRAugment`` on a whole batch on
  ``--device``;
* ``kornia``: ``kornia.augmentation`` with the same parameters (skipped when kornia is not
  installed), on ``--device``.

Reported in views per second (median of ``--rounds``), and each batched one as a ratio to the
per-sample CPU pipeline. GPU timings synchronise before reading the clock.

Usage: python benchmarks/gpu_augment.py --device cuda --batch-size 512
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from ssl_geom.augment import DeviceSimCLRAugment, simclr_params
from ssl_geom.data import CIFAR10DataModule


def timed(fn: Callable[[], object], device: torch.device, repeats: int, rounds: int) -> float:
    """Median seconds of one ``fn()`` call over ``rounds`` rounds of ``repeats`` calls."""
    fn()
    times = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def kornia_pipeline(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    s = simclr_params(32).jitter_strength
    dm = CIFAR10DataModule
    seq = torch.nn.Sequential(
        K.RandomResizedCrop((32, 32), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.Normalize(torch.tensor(dm.mean), torch.tensor(dm.std)),
    ).to(device)
    return lambda x: seq(x.float().div_(255.0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cpu-samples", type=int, default=256, help="images for the CPU pipeline")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.batch_size, 3, 32, 32), dtype=torch.uint8)

    dm = CIFAR10DataModule(root="unused", num_workers=0)
    per_sample = dm.view_transform()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one loader worker = one core
    cpu_s = timed(
        lambda: [per_sample(img) for img in images[: args.cpu_samples]],
        torch.device("cpu"),
        1,
        args.rounds,
    )
    torch.set_num_threads(threads)
    rates = {"cpu_per_sample (1 core)": args.cpu_samples / cpu_s}

    on_device = images.to(device)
    aug = DeviceSimCLRAugment(32, 3, simclr_params(32), dm.mean, dm.std)
    rates[f"device ({device.type})"] = args.batch_size / timed(
        lambda: aug(on_device), device, args.repeats, args.rounds
    )
    kornia = kornia_pipeline(device)
    if kornia is not None:
        rates[f"kornia ({device.type})"] = args.batch_size / timed(
            lambda: kornia(on_device), device, args.repeats, args.rounds
        )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"SimCLR views, CIFAR size, batch {args.batch_size}, device {name}, threads {threads}")
    base = rates["cpu_per_sample (1 core)"]
    for key, rate in rates.items():
        print(f"  {key:26s} {rate:12.0f} views/s  ({rate / base:7.1f}x the 1-core CPU pipeline)")
    if kornia is None:
        print("  kornia not installed: skipped")


if __name__ == "__main__":
    main()
