"""``python -m ssl_geom.reproduce TABLE [--profile local|paper] [--out DIR] [--launcher ...]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .sweep import SubmititOptions, sweep
from .tables import TABLES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssl_geom.reproduce", description=__doc__)
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--profile", default="local", help="local (this machine) or paper")
    parser.add_argument("--out", type=Path, default=None, help="default: results/<table>")
    parser.add_argument("--launcher", choices=["local", "submitit"], default="local")
    parser.add_argument("--cluster", choices=["slurm", "local", "debug"], default="slurm")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--gpus-per-job", type=int, default=1)
    parser.add_argument("--timeout-min", type=int, default=24 * 60)
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs")
    args = parser.parse_args(argv)

    out = args.out or Path("results") / args.table
    result = sweep(
        args.table,
        args.profile,
        out,
        launcher=args.launcher,
        submitit_options=SubmititOptions(
            cluster=args.cluster,
            partition=args.partition,
            gpus_per_job=args.gpus_per_job,
            timeout_min=args.timeout_min,
        ),
        limit=args.limit,
    )
    print(result.table_path.read_text())
    print(f"table: {result.table_path}\nplot:  {result.plot_path}")
    if result.curves_path is not None:
        print(f"curves: {result.curves_path}")
    print(
        f"{result.finished} runs finished now, {result.skipped} were already done, "
        f"{len(result.failed)} failed, {len(result.missing)} rows without data; "
        f"wall time {result.wall_time_s / 60:.1f} min"
    )
    if result.failed:
        raise SystemExit(f"failed runs: {', '.join(result.failed)}")


if __name__ == "__main__":
    main()
