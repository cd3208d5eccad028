"""Cost of MoCo's single-device shuffled BatchNorm: one MoCo-v2 step with the key encoder's
BatchNorm over ``--bn-splits`` shuffled sub-batches vs whole-batch BatchNorm.

Both variants are the same ``MoCoV2`` module (same backbone, queue, loss) built with
``shuffle_bn=True, bn_splits=k`` and with ``shuffle_bn=False``; a step is ``ssl_step``
(EMA update, two online forwards when symmetric else one, the key forward, the queue
write), ``backward`` and an SGD step, on one synthetic batch of two views kept in device
memory (no data loading). Rounds alternate which variant runs first; the median
images/s over ``--rounds`` is reported, and the ratio split/whole.

Example (GPU): python benchmarks/moco_key_bn.py --device cuda --backbone resnet18_cifar \
    --batch-size 256 --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ssl_geom.methods import MoCoV2


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backbone", default="resnet18_cifar")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--bn-splits", type=int, default=8)
    p.add_argument("--precision", choices=("32", "bf16-mixed"), default="32")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating repetitions")
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(model: MoCoV2, views: list[torch.Tensor], args: argparse.Namespace) -> float:
    device = views[0].device
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision != "32")

    def step() -> None:
        with autocast:
            loss = model.ssl_step(views, 0).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    views = [torch.randn(shape, device=device) for _ in range(2)]
    common = {"backbone": args.backbone, "queue_size": 16 * args.batch_size}
    models = {
        "split": MoCoV2(shuffle_bn=True, bn_splits=args.bn_splits, **common),
        "whole": MoCoV2(shuffle_bn=False, **common),
    }
    for m in models.values():
        m.to(device).train()
    rates: dict[str, list[float]] = {name: [] for name in models}
    for r in range(args.rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))
        for name in order:
            rates[name].append(images_per_second(models[name], views, args))
    split, whole = (statistics.median(rates[n]) for n in ("split", "whole"))
    print(
        f"{args.backbone} batch {args.batch_size} {args.precision} on {args.device}: "
        f"key BN over {args.bn_splits} shuffled sub-batches {split:.0f} img/s, "
        f"whole-batch {whole:.0f} img/s, ratio {split / whole:.3f}"
    )


if __name__ == "__main__":
    main()
