"""The sweep's out-of-date run notebooks executed one after another, or as Ray tasks (a local Ray, or a cluster).

Make decides which runs are out of date (`make sweep ENGINE=ray` lists them, see the Makefile); this module
executes the list. Each run is the same papermill execution of the train notebook as `make`'s serial path
(`notebooks.execute_notebook`, parameters from the run registry): on Ray, each is one task asking for a GPU
(a fraction for head-only runs) where the cluster has GPUs, else CPUs; a task whose worker died is retried;
a failed run keeps its `<run>.failed.ipynb` and the others go on. Before the runs, the Ray engine fills the
feature cache for them with sharded extraction over the whole cluster, so the runs read their features
from the cache as usual.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gfr.errors import GfrError
from gfr.paths import PROJECT_ROOT, RUNS_DIR, use_project_root
from gfr.pipeline import cluster, notebooks, sharded_extraction
from gfr.study import registry, run
from gfr.study.registry import RunId

ENGINES = ("serial", "ray")
TASK_RETRIES = 2  # Ray reruns a run whose worker process died (a failing notebook is not rerun)
# Two processes sharing one GPU must not each take all its memory up front (JAX and TensorFlow do by default).
GPU_SHARING_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


@dataclass(frozen=True)
class RunJob:
    """One run to execute: its executed-notebook target and the train notebook's parameters for it."""

    run: RunId
    target: Path
    parameters: dict

    @property
    def finetunes(self) -> bool:
        return self.run.iteration in registry.finetune_iterations()


@dataclass
class RunOutcome:
    """How one run's execution ended: where, how long, and the error of a failed one."""

    target: str
    ok: bool
    seconds: float
    node: str
    error: str = ""


def job_for(target: str | os.PathLike, extra_parameters: dict | None = None) -> RunJob:
    """The job of a run notebook target (reports/runs/<run>.ipynb, or just the run's name)."""
    target = Path(target)
    if target.suffix != ".ipynb":
        target = RUNS_DIR / f"{target.name}.ipynb"
    rid = RunId.parse(target.stem)
    return RunJob(rid, target.resolve(), {**registry.notebook_parameters(rid), **(extra_parameters or {})})


def read_queue(path: str | os.PathLike) -> list[str]:
    """The targets listed in a queue file (one per line, as make writes them), each once, in order."""
    path = Path(path)
    if not path.is_file():
        return []
    return list(dict.fromkeys(line.strip() for line in path.read_text().splitlines() if line.strip()))


def execute_job(job: RunJob) -> RunOutcome:
    """Execute one run's notebook (papermill, from the project root); a failure is returned, not raised."""
    os.chdir(PROJECT_ROOT)
    start = time.perf_counter()
    try:
        notebooks.execute_notebook(PROJECT_ROOT / registry.TRAIN_NOTEBOOK, job.target, job.parameters, progress=False)
    except Exception as exc:  # a failed run must not stop the sweep: it is reported in the summary
        return RunOutcome(str(job.target), False, time.perf_counter() - start, platform.node(),
                          str(exc) if isinstance(exc, GfrError) else f"{type(exc).__name__}: {exc}")
    return RunOutcome(str(job.target), True, time.perf_counter() - start, platform.node())


def _execute_on_shared_gpu(job: RunJob) -> RunOutcome:
    os.environ.update(GPU_SHARING_ENV)  # inherited by the notebook's kernel
    return execute_job(job)


def prefill_features(jobs: list[RunJob], progress: bool = True) -> dict[str, dict]:
    """Fill the feature cache for every job with sharded extraction on the Ray cluster; return what each got.

    A run whose features cannot be computed (no weights, bad data) is left to fail, or be skipped, in its own
    notebook, where the reason is recorded."""
    use_project_root()  # the notebook's default paths are relative to it
    defaults, filled = notebooks.parameter_defaults(PROJECT_ROOT / registry.TRAIN_NOTEBOOK), {}
    for job in jobs:
        p = {**defaults, **job.parameters}
        try:
            prepared = run.prepare_run(p["backbone"], p["iteration"], p["data_dir"], p["manifest"], p["runs_dir"],
                                       run.notebook_params(p["iteration"], p["weights"], p["params_extra"]),
                                       p["cache_dir"], progress, forget_result=False)
            if prepared.skipped:
                continue
            filled[job.run.name] = {name: prepared.extract(compute=sharded_extraction.extract, **options)[1]
                                    for name, options in run.feature_requests(prepared).items()}
        except GfrError as exc:
            print(f"features for {job.run.name} not prefilled: {exc}", file=sys.stderr)
    return filled


def run_sweep(jobs: list[RunJob], engine: str = "serial", cpus_per_run: float = 1.0, gpus_per_run: float = 1.0,
              gpus_per_head_run: float = 0.5, features: bool = True, progress: bool = True) -> list[RunOutcome]:
    """Execute every job with `engine`; return the outcomes in the jobs' order.

    Ray: one task per run, asking for `gpus_per_run` GPU(s) (fine-tuning) or `gpus_per_head_run` (head-only)
    where the cluster has GPUs, else `cpus_per_run` CPU(s); `features` prefills the feature cache first."""
    if engine not in ENGINES:
        raise GfrError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    if engine == "serial":
        return [_reported(execute_job(job), progress) for job in jobs]
    ray = cluster.connect()
    if progress:
        print(f"Ray: {cluster.describe()}", file=sys.stderr)
    if features and jobs:
        prefill_features(jobs, progress)
    refs = {}
    for job in jobs:
        gpus = gpus_per_run if job.finetunes else gpus_per_head_run
        task = _execute_on_shared_gpu if cluster.has_gpus() and gpus < 1 else execute_job
        options = {"max_retries": TASK_RETRIES, **cluster.task_resources(gpus, cpus_per_run)}
        refs[ray.remote(task).options(**options).remote(job)] = job
    outcomes = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        job = refs[done[0]]
        try:
            outcome = ray.get(done[0])
        except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as exc:
            outcome = RunOutcome(str(job.target), False, 0.0, "", f"Ray task failed: {str(exc).splitlines()[-1]}")
        outcomes[job.target] = _reported(outcome, progress)
    return [outcomes[job.target] for job in jobs]


def _reported(outcome: RunOutcome, progress: bool) -> RunOutcome:
    if progress:
        state = "ok" if outcome.ok else "FAILED"
        print(f"{state} {Path(outcome.target).name} ({outcome.seconds:.0f} s on {outcome.node})", file=sys.stderr)
    return outcome


def summary_text(outcomes: list[RunOutcome]) -> str:
    """One line per failed run (and its error), then the count of runs that ran and failed."""
    failed = [o for o in outcomes if not o.ok]
    lines = [f"FAILED {Path(o.target).name}: {o.error}" for o in failed]
    lines.append(f"{len(outcomes)} run(s) executed, {len(failed)} failed")
    return "\n".join(lines)
