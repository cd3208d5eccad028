"""``python -m ssl_geom.reproduce TABLE [--profile local|gpu|paper] [--out DIR] [--dry-run]``.

``--experiments DIR`` names the folder of experiment configs; by default the checkout's
``experiments/`` or, for an installed package, the copy installed with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .sweep import SubmititOptions, dry_run, report_only, sweep
from .tables import TABLES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssl_geom.reproduce", description=__doc__)
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument(
        "--profile", default="local", help="local (2 CPU cores), gpu (one GPU) or paper"
    )
    parser.add_argument(
        "--experiments", type=Path, default=None, help="folder of experiment configs (*.yaml)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the planned runs and their state; train nothing",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the table again from --out's records and provenance.json; train nothing",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: results/<table>")
    parser.add_argument("--launcher", choices=["local", "submitit"], default="local")
    parser.add_argument("--cluster", choices=["slurm", "local", "debug"], default="slurm")
    parser.add_argument("--partition", default=None)
    parser.add_argument("--gpus-per-job", type=int, default=1)
    parser.add_argument("--timeout-min", type=int, default=24 * 60)
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local launcher: runs trained at once, sharing the cores (default: the "
        "profile's; local: 2)",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be >= 1 (runs trained at once), got {args.workers}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1 (the first N planned runs), got {args.limit}")

    out = args.out or Path("results") / args.table
    # Setup errors (an unknown profile, a config that does not parse, an unwritable --out)
    # are reported as one line; a run's own error is in its failure record, not raised here.
    try:
        if args.dry_run:
            print(dry_run(args.table, args.profile, out, args.experiments))
            return
        if args.report_only:
            print(report_only(args.table, args.profile, out, args.experiments).read_text())
            return
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
            experiments=args.experiments,
            workers=args.workers,
        )
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    print(result.table_path.read_text())
    print(f"table: {result.table_path}\nplot:  {result.plot_path}")
    if result.curves_path is not None:
        print(f"curves: {result.curves_path}")
    print(
        f"{result.finished} runs finished now, {result.skipped} were already done, "
        f"{len(result.failed)} failed, {len(result.busy)} being run elsewhere, "
        f"{len(result.missing)} rows without data, {result.left_out} records of older "
        f"configurations and {len(result.unreadable)} unreadable files left out; wall time "
        f"{result.wall_time_s / 60:.1f} min"
    )
    for file in result.unreadable:
        print(f"  unreadable: {file.text()}")
    if result.failed:
        details = "\n".join(f"  {k}: {v}" for k, v in result.failure_messages.items())
        raise SystemExit(f"failed runs:\n{details}")


if __name__ == "__main__":
    main()
