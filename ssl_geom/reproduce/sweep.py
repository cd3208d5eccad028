"""Run a whole table: check data, launch unfinished runs, write the table and plot.

Launchers: ``local`` runs one subprocess per run, in order; ``submitit`` submits
one job per run (SLURM on a cluster, or submitit's local executor), each job
training with Lightning DDP over the GPUs it was given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .plan import RunSpec, plan_runs
from .records import load_records, record_path
from .report import aggregate, render_curves, render_markdown, render_plot, write_text_atomic
from .runner import check_data, run_in_subprocess, run_one
from .tables import get_table

Launcher = Literal["local", "submitit"]


@dataclass
class SubmititOptions:
    """Where and how big each job is; ``cluster='local'`` runs jobs as local processes."""

    cluster: Literal["slurm", "local", "debug"] = "slurm"
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_task: int = 8
    timeout_min: int = 24 * 60
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class SweepResult:
    table_path: Path
    plot_path: Path
    curves_path: Path | None
    finished: int
    skipped: int
    failed: list[str]
    missing: dict[str, str]
    wall_time_s: float


def sweep(
    table_name: str,
    profile_name: str,
    out_dir: Path,
    launcher: Launcher = "local",
    submitit_options: SubmititOptions | None = None,
    limit: int | None = None,
) -> SweepResult:
    """Do every unfinished run of ``table_name`` under ``profile_name``, then report."""
    start = time.perf_counter()
    table = get_table(table_name)
    if profile_name not in table.profiles:
        raise ValueError(
            f"unknown profile {profile_name!r} for {table_name}; "
            f"available: {', '.join(sorted(table.profiles))}"
        )
    profile = table.profiles[profile_name]
    out_dir = Path(out_dir)
    specs = plan_runs(table, profile)
    if limit is not None:
        specs = specs[:limit]

    missing: dict[str, str] = {}
    first_of_row = {spec.row.key: spec for spec in reversed(specs)}
    for key, spec in first_of_row.items():
        note = check_data(spec)
        if note is not None:
            missing[key] = _path_from_error(note)
    records_dir = out_dir / "records"
    todo = [
        s
        for s in specs
        if s.row.key not in missing and not record_path(records_dir, s.run_id).exists()
    ]
    skipped = len(specs) - len(todo) - sum(1 for s in specs if s.row.key in missing)
    print(
        f"[{table.name}/{profile.name}] {len(specs)} runs planned, {skipped} already finished, "
        f"{len(todo)} to do, {len(missing)} rows without data",
        flush=True,
    )

    failed = _launch(todo, out_dir, launcher, submitit_options or SubmititOptions())

    records = load_records(records_dir)
    cells = aggregate(records, specs)
    table_path = out_dir / f"{table.name}.md"
    plot_path = out_dir / f"{table.name}.png"
    write_text_atomic(table_path, render_markdown(table, profile, specs, cells, missing, records))
    render_plot(table, specs, cells, plot_path)
    curves_path = None
    if table.curves:
        curves_path = out_dir / f"{table.name}_curves.png"
        render_curves(table, specs, records, curves_path)
    return SweepResult(
        table_path=table_path,
        plot_path=plot_path,
        curves_path=curves_path,
        finished=len(todo) - len(failed),
        skipped=skipped,
        failed=failed,
        missing=missing,
        wall_time_s=time.perf_counter() - start,
    )


def _launch(
    todo: list[RunSpec], out_dir: Path, launcher: Launcher, options: SubmititOptions
) -> list[str]:
    if launcher == "local":
        failed = []
        for i, spec in enumerate(todo, 1):
            print(f"[{i}/{len(todo)}] {spec.run_id}", flush=True)
            if run_in_subprocess(spec, out_dir) != 0:
                failed.append(spec.run_id)
        return failed
    if launcher == "submitit":
        return _launch_submitit(todo, out_dir, options)
    raise ValueError(f"unknown launcher {launcher!r}; expected 'local' or 'submitit'")


def _launch_submitit(todo: list[RunSpec], out_dir: Path, options: SubmititOptions) -> list[str]:
    import submitit

    executor = submitit.AutoExecutor(folder=out_dir / "submitit", cluster=options.cluster)
    params: dict[str, object] = {"timeout_min": options.timeout_min, **options.extra}
    if options.cluster == "slurm":
        params.update(
            slurm_partition=options.partition,
            gpus_per_node=options.gpus_per_job,
            tasks_per_node=options.gpus_per_job,
            cpus_per_task=options.cpus_per_task,
            nodes=1,
        )
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    jobs = [
        executor.submit(
            _job_entry, spec.to_dict(), str(out_dir), options.gpus_per_job, options.cluster
        )
        for spec in todo
    ]
    failed = []
    for spec, job in zip(todo, jobs, strict=True):
        try:
            job.result()
        except Exception as error:  # a failed job must not lose the other runs' results
            print(f"job for {spec.run_id} failed: {error}", flush=True)
            failed.append(spec.run_id)
    return failed


def _job_entry(spec_dict: dict, out_dir: str, gpus: int, cluster: str) -> None:
    """Inside a submitit job: one run, with DDP over the job's GPUs on SLURM."""
    spec = RunSpec.from_dict(spec_dict)
    if cluster == "slurm" and gpus > 0:
        spec = RunSpec.from_dict(
            {
                **spec.to_dict(),
                "overrides": [
                    *spec.overrides,
                    "--trainer.accelerator=gpu",
                    f"--trainer.devices={gpus}",
                    "--trainer.num_nodes=1",
                    *(["--trainer.strategy=ddp"] if gpus > 1 else []),
                ],
            }
        )
    run_one(spec, Path(out_dir))


def _path_from_error(message: str) -> str:
    """The path(s) a missing-dataset error lists under "Looked at:", else its first line.

    ``DatasetNotFoundError`` lists each place on its own ``  - <path>`` line (paths may be
    relative to the working directory, e.g. ``data/cifar-10-batches-py``).
    """
    places = [line[4:].strip() for line in message.splitlines() if line.startswith("  - ")]
    return " or ".join(places) if places else message.splitlines()[0]
