"""Run a whole table: check data, launch unfinished runs, write the table and plot.

Launchers: ``local`` trains the runs in table order on at most ``workers`` worker processes,
each training one run after another (each then gets ``cores // workers`` threads and each run
writes its output to ``<out>/logs/<run_id>.log``); ``submitit`` submits one job per run
(SLURM on a cluster, or submitit's local executor), each job training with Lightning DDP over
the GPUs it was given.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ssl_geom.io import remove_stale_temporaries, write_atomic

from .plan import RunSpec, plan_runs
from .pool import RunHandle, WorkerPool, visible_devices
from .process import available_cores
from .records import (
    UNREADABLE_FIX,
    RunRecord,
    UnreadableFile,
    record_path,
    scan_failures,
    scan_records,
)
from .report import (
    aggregate,
    render_curves,
    render_plot,
    select_records,
)
from .results import read_provenance, render_records, selection_of, write_provenance
from .runner import (
    EXIT_ALREADY,
    EXIT_BUSY,
    check_data,
    run_or_record_failure,
)
from .schema import Profile, TableSpec
from .selection import resolve_profile, write_selection
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
    busy: list[str] = field(default_factory=list)  # being trained by another process
    failure_messages: dict[str, str] = field(default_factory=dict)
    left_out: int = 0  # records of an older configuration of a planned cell
    # Files under records/ and failures/ that are not valid records: left out of the table.
    unreadable: list[UnreadableFile] = field(default_factory=list)


def profile_of(table_name: str, profile_name: str, out_dir: Path) -> Profile:
    """``table_name``'s profile ``profile_name`` (checked names, clear errors), with the value
    it takes from another table's selection applied (that table's results lie beside
    ``out_dir``: :func:`~ssl_geom.reproduce.selection.selection_path`)."""
    table = get_table(table_name)
    if profile_name not in table.profiles:
        raise ValueError(
            f"unknown profile {profile_name!r} for {table_name}; "
            f"available: {', '.join(sorted(table.profiles))}"
        )
    return resolve_profile(table.profiles[profile_name], Path(out_dir))[0]


def plan(
    table_name: str, profile_name: str, out_dir: Path, experiments: Path | str | None = None
) -> list[RunSpec]:
    """The runs of ``table_name`` under ``profile_name`` (see :func:`profile_of`)."""
    profile = profile_of(table_name, profile_name, out_dir)
    return plan_runs(get_table(table_name), profile, experiments)


def dry_run(
    table_name: str, profile_name: str, out_dir: Path, experiments: Path | str | None = None
) -> str:
    """What a sweep would do, trained nothing: each run, its config and whether it is done."""
    specs = plan(table_name, profile_name, out_dir, experiments)
    records_dir = Path(out_dir) / "records"
    scan = scan_records(records_dir)
    unreadable = {file.path.name: file for file in scan.unreadable}
    selection = select_records(scan.records, specs)
    lines = [f"{table_name}/{profile_name}: {len(specs)} runs"]
    for spec in specs:
        path = record_path(records_dir, spec.run_id)
        state = "bad" if path.name in unreadable else "done" if path.exists() else "todo"
        lines.append(f"  {state:<4}  {spec.run_id}  {spec.config}")
    lines.append(
        f"{len(selection.outdated)} records of older configurations would be left out of the table"
    )
    lines += _unreadable_lines([*scan.unreadable, *scan_failures(Path(out_dir) / "failures")[1]])
    return "\n".join(lines)


def report_only(
    table_name: str, profile_name: str, out_dir: Path, experiments: Path | str | None = None
) -> Path:
    """Write ``<out>/<table>.md`` again from the folder's records, failures and provenance
    (``results.py``), training and checking nothing; its path."""
    provenance = read_provenance(Path(out_dir), table_name, profile_name)
    profile = profile_of(table_name, profile_name, out_dir)
    table = get_table(table_name)
    specs = plan_runs(table, profile, experiments)[: provenance.get("limit")]
    text = render_records(table, profile, specs, Path(out_dir), provenance)
    return write_atomic(Path(out_dir) / f"{table_name}.md", text, overwrite=True)


def _unreadable_lines(files: list[UnreadableFile]) -> list[str]:
    """The report of files left out because they are not valid records ("bad" in dry runs)."""
    if not files:
        return []
    return [
        f"{len(files)} unreadable files left out of the table ({UNREADABLE_FIX}):",
        *(f"  {file.text()}" for file in files),
    ]


_WRITTEN = ("records", "failures", "runs", "logs")


def check_writable(out_dir: Path) -> None:
    """Refuse an output folder the sweep cannot write before any run starts.

    Otherwise every worker would start, fail at its first file and leave a traceback. Creates
    ``out_dir``; each folder the sweep writes into is probed with an unnamed temporary file.
    """
    folders = [out_dir, *(out_dir / name for name in _WRITTEN)]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            if folder.is_dir():
                with tempfile.TemporaryFile(dir=folder):
                    pass
    except OSError as error:
        where = error.filename or out_dir
        raise ValueError(
            f"the sweep cannot write to {where} ({error.strerror}); it keeps every run's "
            f"checkpoints, logs and record under --out {out_dir}. Pass a writable folder with "
            "--out, or make that one writable"
        ) from None


def sweep(
    table_name: str,
    profile_name: str,
    out_dir: Path,
    launcher: Launcher = "local",
    submitit_options: SubmititOptions | None = None,
    limit: int | None = None,
    experiments: Path | str | None = None,
    workers: int | None = None,
) -> SweepResult:
    """Do every unfinished run of ``table_name`` under ``profile_name``, then report.

    ``workers``: runs the local launcher trains at once (default: the profile's
    ``parallel_runs``).
    """
    start = time.perf_counter()
    if limit is not None and limit < 1:
        raise ValueError(
            f"limit must be >= 1 (the first N planned runs), got {limit}; leave it out for all runs"
        )
    table = get_table(table_name)
    profile = profile_of(table_name, profile_name, out_dir)
    specs = plan_runs(table, profile, experiments)
    workers = profile.parallel_runs if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (runs trained at once), got {workers}")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    for path in remove_stale_temporaries(out_dir):  # half-written by a killed sweep or worker
        print(f"removed {path}: a temporary file whose writer was killed", flush=True)
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
    for line in _unreadable_lines(scan_records(records_dir).unreadable):
        print(line, flush=True)

    outcomes = _launch(todo, out_dir, launcher, submitit_options or SubmititOptions(), workers)
    # A run whose worker failed but whose record exists was finished by another process.
    elsewhere = [
        run_id
        for run_id, outcome in outcomes.items()
        if outcome == "already"
        or (outcome == "failed" and record_path(records_dir, run_id).exists())
    ]
    failed = [
        run_id
        for run_id, outcome in outcomes.items()
        if outcome == "failed" and run_id not in elsewhere
    ]
    busy = [run_id for run_id, outcome in outcomes.items() if outcome == "busy"]
    failures, bad_failures = scan_failures(out_dir / "failures")
    messages = {
        run_id: (
            f"{failures[run_id].error_type}: {failures[run_id].message}"
            if run_id in failures
            else "the worker died without a failure record (killed?)"
        )
        for run_id in failed
    }
    for run_id in busy:
        print(f"{run_id}: being trained by another process; not waited for", flush=True)

    scan = scan_records(records_dir)
    records = scan.records
    _select(table, profile.name, records, specs, out_dir)  # writes selection.json
    provenance = write_provenance(out_dir, table.name, profile.name, missing, limit)
    table_path = out_dir / f"{table.name}.md"
    write_atomic(
        table_path, render_records(table, profile, specs, out_dir, provenance), overwrite=True
    )
    cells = aggregate(records, specs)
    plot_path = out_dir / f"{table.name}.png"
    render_plot(table, specs, cells, plot_path)
    curves_path = None
    if table.curves:
        curves_path = out_dir / f"{table.name}_curves.png"
        render_curves(table, specs, records, curves_path)
    return SweepResult(
        table_path=table_path,
        plot_path=plot_path,
        curves_path=curves_path,
        finished=sum(outcome == "finished" for outcome in outcomes.values()),
        skipped=skipped + len(elsewhere),
        failed=failed,
        missing=missing,
        wall_time_s=time.perf_counter() - start,
        busy=busy,
        failure_messages=messages,
        left_out=len(select_records(records, specs).outdated),
        unreadable=[*scan.unreadable, *bad_failures],
    )


def _select(
    table: TableSpec,
    profile: str,
    records: list[RunRecord],
    specs: list[RunSpec],
    out_dir: Path,
) -> None:
    """A selecting table's choice from its current records, written to ``selection.json``
    (:func:`~ssl_geom.reproduce.results.selection_of`); nothing for a table that selects
    nothing."""
    selection = selection_of(table, profile, records, specs)
    if isinstance(selection, str):
        print(f"no selection written: {selection}", flush=True)
    elif selection is not None:
        path = write_selection(out_dir, selection)
        print(f"selected {selection.setting} = {selection.value:g}: {path}", flush=True)


def _launch(
    todo: list[RunSpec],
    out_dir: Path,
    launcher: Launcher,
    options: SubmititOptions,
    workers: int,
) -> dict[str, str]:
    """Run ``todo``; the outcome of each run id: finished, already, busy or failed."""
    if launcher == "local":
        return launch_local(todo, out_dir, workers)
    if launcher == "submitit":
        return _launch_submitit(todo, out_dir, options)
    raise ValueError(f"unknown launcher {launcher!r}; expected 'local' or 'submitit'")


_OUTCOME = {0: "finished", EXIT_BUSY: "busy", EXIT_ALREADY: "already"}
_POLL_S = 0.5  # how often the local launcher looks for finished workers


def launch_local(todo: list[RunSpec], out_dir: Path, workers: int) -> dict[str, str]:
    """At most ``workers`` runs at a time, started in table order, on served workers that each
    train one run after another (``pool.py``: their imports paid once, not once a run).

    One worker inherits this process's output and threads. Several share the cores
    (``cores // workers`` threads each, unless ``OMP_NUM_THREADS`` is set) and the GPUs (round
    robin over the visible devices; all of them on one GPU), and each run writes to
    ``<out>/logs/<run_id>.log``, so their progress does not interleave.
    """
    threads = None if workers == 1 else max(1, available_cores() // workers)
    pool = WorkerPool(Path(out_dir), threads, visible_devices())
    pending = list(enumerate(todo, 1))
    running: dict[str, RunHandle] = {}
    outcomes: dict[str, str] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, spec = pending.pop(0)
                log = None if workers == 1 else out_dir / "logs" / f"{spec.run_id}.log"
                print(
                    f"[{i}/{len(todo)}] {spec.run_id}{f' (log: {log})' if log else ''}", flush=True
                )
                running[spec.run_id] = pool.start(spec, log)
            codes = {run_id: handle.poll() for run_id, handle in running.items()}
            done = {run_id: code for run_id, code in codes.items() if code is not None}
            if not done:
                time.sleep(_POLL_S)
            for run_id, code in done.items():
                del running[run_id]
                outcomes[run_id] = _OUTCOME.get(code, "failed")
                if workers > 1:
                    print(f"{run_id}: {outcomes[run_id]}", flush=True)
    finally:
        pool.close()
    return {spec.run_id: outcomes[spec.run_id] for spec in todo}


def _launch_submitit(
    todo: list[RunSpec], out_dir: Path, options: SubmititOptions
) -> dict[str, str]:
    import submitit

    executor = submitit.AutoExecutor(folder=out_dir / "submitit", cluster=options.cluster)
    # One task (process) per GPU, on every executor: a job is one DDP run (runner.job_rank).
    params: dict[str, object] = {
        "timeout_min": options.timeout_min,
        "tasks_per_node": options.gpus_per_job,
        **options.extra,
    }
    if options.cluster == "slurm":
        params.update(
            slurm_partition=options.partition,
            gpus_per_node=options.gpus_per_job,
            cpus_per_task=options.cpus_per_task,
            nodes=1,
        )
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    jobs = [executor.submit(_job_entry, spec.to_dict(), str(out_dir)) for spec in todo]
    outcomes = {}
    for spec, job in zip(todo, jobs, strict=True):
        try:
            outcomes[spec.run_id] = job.results()[0]  # rank 0's; other tasks trained beside it
        except Exception as error:  # a failed job must not lose the other runs' results
            print(f"job for {spec.run_id} failed: {error}", flush=True)
            outcomes[spec.run_id] = "failed"
    return outcomes


def _job_entry(spec_dict: dict, out_dir: str) -> str:
    """Inside a submitit job (one of its tasks): one run; its outcome.

    The job's devices come from the config (the paper configs say ``accelerator: auto``,
    ``devices: auto``: every GPU SLURM gave the job, DDP when there are several). Adding
    device overrides here would change the resolved settings the run id was planned with.
    On SLURM, Lightning reads srun's variables to join the tasks; submitit's local executor
    sets none, so its tasks export torch.distributed's (``RANK``, ``LOCAL_RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), which Lightning reads instead.
    """
    import submitit

    if "SLURM_JOB_ID" not in os.environ and submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return run_or_record_failure(RunSpec.from_dict(spec_dict), Path(out_dir))


def _path_from_error(message: str) -> str:
    """The path(s) a missing-dataset error lists under "Looked at:", else its first line.

    ``DatasetNotFoundError`` lists each place on its own ``  - <path>`` line (paths may be
    relative to the working directory, e.g. ``data/cifar-10-batches-py``).
    """
    places = [line[4:].strip() for line in message.splitlines() if line.startswith("  - ")]
    return " or ".join(places) if places else message.splitlines()[0]
