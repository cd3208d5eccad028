"""Data-loading throughput: SimCLR two-view loaders and the batched same-parameter transform.

Measures, on fake data written in the real formats to a temporary folder:

* the SimCLR two-view SSL train loader at CIFAR size (32 px, 3 channels) with 0, 1 and 2
  loader workers, in samples/s (each sample = two views);
* the same at MNIST size (28 px, 1 channel): it must keep up with small MNIST models on 2 cores;
* the batched same-parameter transform (one draw per batch, CARE chunks / Wahba probe) on CPU,
  in ms per batch and images/s, with the per-sample loader pipeline on one core as the
  baseline ratio.

Usage::

    python benchmarks/dataloading.py            # full: 5,000 images, batch 256
    python benchmarks/dataloading.py --quick    # tiny run to check it works
    python benchmarks/dataloading.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ssl_geom.data import CIFAR10DataModule, MNISTDataModule
from ssl_geom.data.fake import write_fake_dataset


def loader_throughput(dm, n_batches: int) -> float:
    """Samples per second over the first ``n_batches`` SSL train batches of an epoch.

    Timed from creating the iterator, so worker start-up counts: skipping a warm-up batch
    instead would credit the batches other workers prefetched meanwhile to the timed part.
    """
    loader = dm.train_dataloader()
    start = time.perf_counter()
    it = iter(loader)
    count = 0
    for _ in range(n_batches):
        views, _ = next(it)
        count += len(views[0])
    return count / (time.perf_counter() - start)


def same_params_throughput(dm, batch_size: int, repeats: int) -> tuple[float, float]:
    """(ms per batch, images/s) of ``dm.augmentation.same_params()`` on a CPU batch."""
    t = dm.augmentation.same_params()
    batch = torch.randn(batch_size, dm.in_channels, dm.image_size, dm.image_size)
    t(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        t(batch)
    seconds = (time.perf_counter() - start) / repeats
    return 1000 * seconds, batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run (checks the script)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    n_images, batch_size, n_batches, repeats = (
        (256, 32, 3, 3) if args.quick else (5000, 256, 19, 20)
    )
    torch.set_num_threads(1)  # loader workers and the main process each get one core
    results: dict[str, dict] = {"config": vars(args) | {"json": str(args.json), "n": n_images}}
    with tempfile.TemporaryDirectory() as tmp:
        families = {
            "cifar10": (CIFAR10DataModule, {}),
            "mnist": (MNISTDataModule, {}),
        }
        for name, (cls, extra) in families.items():
            root = write_fake_dataset(name, Path(tmp) / name, n_train=n_images, n_test=64)
            row = {}
            for workers in args.workers:
                dm = cls(root=str(root), batch_size=batch_size, num_workers=workers, **extra)
                row[f"workers={workers}"] = loader_throughput(dm, n_batches)
                print(
                    f"{name:8s} SimCLR 2-view loader, {workers} workers: "
                    f"{row[f'workers={workers}']:8.0f} samples/s"
                )
            dm = cls(root=str(root), batch_size=batch_size, num_workers=0, **extra)
            ms, per_s = same_params_throughput(dm, batch_size, repeats)
            row["same_params_ms_per_batch"] = ms
            row["same_params_images_per_s"] = per_s
            # Ratio against the per-sample pipeline on one core (views/s = 2 x samples/s).
            row["same_params_vs_per_sample_views"] = per_s / (
                2 * row.get("workers=0", float("nan"))
            )
            print(
                f"{name:8s} same-params transform, batch {batch_size}: {ms:7.2f} ms/batch "
                f"= {per_s:8.0f} images/s ({row['same_params_vs_per_sample_views']:.1f}x the "
                "per-sample views on one core)"
            )
            results[name] = row
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
