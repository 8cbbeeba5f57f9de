"""Running a sweep's missing unit runs: tasks of one config and a batch of units, on this machine or on a
Ray cluster. Either way the driver stores what comes back, so a resumed or retried sweep reruns nothing
that is stored.

Ray is imported only by the Ray backend: a local sweep never imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..engine.config import AMConfig
from ..engine.result import Run
from .spec import Expansion, run_id
from .store import SweepStore

# test hook: a folder in which each task marks its first attempt, and that attempt then fails
# (MEISCOPE_SWEEP_FAIL_MODE: "raise", an exception, or "exit", a lost worker)
FAIL_ONCE_ENV, FAIL_MODE_ENV = "MEISCOPE_SWEEP_FAIL_ONCE", "MEISCOPE_SWEEP_FAIL_MODE"


@dataclass(frozen=True)
class Task:
    config: AMConfig  # one grid point's config with a batch of its units

    @property
    def size(self) -> int:
        """Unit-steps of work, for the progress bar."""
        return len(self.config.units) * self.config.steps


def plan(expansion: Expansion, store: SweepStore, batch_size: Optional[int] = None) -> list[Task]:
    """Tasks for the unit runs that are not stored yet: per grid point, its missing units in batches."""
    tasks = []
    for point, units in store.missing(expansion):
        size = batch_size or len(units)
        for start in range(0, len(units), size):
            data = {**point.config.model_dump(mode="json"), "unit": units[start:start + size]}
            tasks.append(Task(AMConfig.model_validate(data)))
    return tasks


def _inject_failure(config: AMConfig) -> None:
    folder = os.environ.get(FAIL_ONCE_ENV)
    if not folder:
        return
    marker = Path(folder) / run_id(config)
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("first attempt\n")
    if os.environ.get(FAIL_MODE_ENV) == "exit":
        os._exit(1)
    raise RuntimeError(f"injected failure of the first attempt of {marker.name}")


def run_task(model, config: AMConfig, on_steps: Callable[[int], None] | None = None) -> Run:
    """One engine call; on_steps(n) hears of n more unit-steps done (for the progress bar)."""
    from ..engine.loop import run

    _inject_failure(config)
    done = [0]

    def on_step(frame) -> None:
        n = frame.step * len(config.units)
        on_steps(n - done[0])
        done[0] = n

    return run(model, config, on_step=on_step if on_steps else None)


def run_local(tasks: list[Task], store: SweepStore, model, bar=None,
              workers: Optional[int] = None) -> tuple[int, list[str]]:
    """Run the tasks in this process, `workers` at a time (default: one per torch thread, i.e. per core),
    each on one torch thread; a single task gets all threads. Returns (unit runs stored, errors), like
    run_ray. An error stops the sweep once the tasks under way end: what is stored stays.

    Why threads of one torch thread each: on 2 cores, two batched runs side by side finished about 10%
    sooner than one after another on 2 threads each, and runs on 2 threads slowed 4-5x while another
    process kept one core busy (docs/BENCHMARKS.md). The model is shared, as in the server."""
    import torch

    threads = torch.get_num_threads()
    workers = min(len(tasks), workers or threads)

    def one(task: Task) -> int:
        result = run_task(model, task.config, on_steps=bar.update if bar is not None else None)
        return len(store.save_batch(result))

    if workers <= 1:
        return sum(one(task) for task in tasks), []
    from concurrent.futures import ThreadPoolExecutor

    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers)
    try:
        return sum(pool.map(one, tasks)), []
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, the tasks still queued do not start
        torch.set_num_threads(threads)


# ---- Ray ----------------------------------------------------------------------------------------
_WORKER_MODELS: dict[str, object] = {}  # model folder -> model, loaded once per Ray worker process


def _ray_task(model_dir: Optional[str], config_json: dict) -> Run:
    from ..model.loader import load_model

    key = model_dir or ""
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = load_model(model_dir)  # None: the model shipped with the node's meiscope
    return run_task(_WORKER_MODELS[key], AMConfig.model_validate(config_json))


def init_ray(address: str, num_cpus: Optional[int] = None) -> None:
    """`local`: start Ray on this machine; `auto`: join the cluster this machine belongs to; else an address
    (HOST:6379, or ray://HOST:10001 for Ray Client)."""
    import ray

    if ray.is_initialized():
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address == "local":
        ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    else:
        ray.init(address=address, **kwargs)


def run_ray(tasks: list[Task], store: SweepStore, model_dir: Optional[Path], bar=None, max_retries: int = 3,
            cpus_per_task: float = 1) -> tuple[int, list[str]]:
    """Each task runs on a Ray worker (which keeps its model loaded between tasks) and returns its Run to
    the driver, which stores it: the nodes need the model, not a shared file system. A task whose worker
    raises or dies is retried up to max_retries times; finished tasks are stored as they come in, so a
    rerun of the sweep after a failure skips them. Returns (unit runs stored, errors of tasks that failed
    every attempt). model_dir must exist at the same path on every node (None: each node's shipped model)."""
    import ray

    remote = ray.remote(num_cpus=cpus_per_task, max_retries=max_retries, retry_exceptions=True)(_ray_task)
    from ..model.factory import is_factory_spec

    folder = None if model_dir is None else str(model_dir) if is_factory_spec(str(model_dir)) \
        else str(Path(model_dir).resolve())
    pending = {remote.remote(folder, t.config.model_dump(mode="json")): t for t in tasks}
    stored, errors = 0, []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(done[0])
        try:
            stored += len(store.save_batch(ray.get(done[0])))
        except ray.exceptions.RayError as exc:
            errors.append(f"units {task.config.units[0]}..{task.config.units[-1]}: {str(exc).splitlines()[0]}")
        if bar is not None:
            bar.update(task.size)
    return stored, errors
