"""Runs in worker threads: a bounded pool (later jobs wait in a visible queue), a cancel flag per job, and
callbacks that the worker thread calls with each frame and at the end. Torch work never touches the
event loop; the server bridges the callbacks with `loop.call_soon_threadsafe`.

The manager also keeps the server within its limits (server/limits.py): unfinished runs per client and in
all, finished runs kept in memory, and run folders kept on disk (older runs are read back from disk)."""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import clean_leftovers_once
from ..engine import AMConfig, Frame, Run, run
from ..model.seam import Explorable
from .limits import RUN_ID, Busy, ServerLimits


SUMMARY_CHECKS = 16  # rows whose checks a run's summary carries (run.json has them all)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Job:
    id: str
    config: AMConfig
    client: str = "local"  # who asked: a websocket connection or a REST client's address
    status: str = "queued"  # queued, running, completed, cancelled, failed
    created: float = field(default_factory=time.time)
    step: int = 0
    error: str | None = None
    result: Run | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    on_frame: Callable[[Frame], None] | None = None
    on_done: Callable[["Job"], None] | None = None
    stop_step: int | None = None  # the step at which a stop was asked for
    saved: bool = False  # its folder is complete in runs_dir

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "cancelled", "failed")

    def stop(self) -> None:
        if self.stop_step is None:
            self.stop_step = self.step
        self.cancel.set()

    @classmethod
    def from_disk(cls, run_id: str, result: Run) -> "Job":
        return cls(id=run_id, config=result.config, client="disk", status=result.info.get("status", "completed"),
                   created=result.info.get("created", 0.0), step=result.info.get("steps_done", 0), result=result,
                   saved=True)

    def summary(self) -> dict:
        out = {"run_id": self.id, "status": self.status, "step": self.step, "steps": self.config.steps,
               "rows": len(self.config.objectives) * self.config.samples,
               "created": self.created, "config": self.config.model_dump(mode="json"), "error": self.error,
               "stop_step": self.stop_step, "saved": self.saved}
        if self.result is not None and len(self.result.metrics["activation"]):
            m = self.result.metrics
            out["final"] = {"activation": m["activation"][-1].tolist(), "runner_up": m["runner_up"][-1].tolist(),
                            "runner_up_unit": m["runner_up_unit"][-1].tolist(),
                            "objective": m["objective"][-1].tolist(), "wall_s": self.result.info["wall_s"]}
            elbo = m["elbo"][np.isfinite(m["elbo"]).all(axis=1)]
            out["final"]["elbo"] = elbo[-1].tolist() if len(elbo) else None
            out["checks"] = self.result.checks[:SUMMARY_CHECKS]
        return out


class JobManager:
    """Owns the model and the worker threads. `max_running` runs at once; the rest queue in order."""

    def __init__(self, model: Explorable, max_running: int = 2, runs_dir: Path | None = None,
                 limits: ServerLimits | None = None) -> None:
        self.model = model
        self.max_running = max_running
        self.runs_dir = runs_dir
        self.limits = limits or ServerLimits()
        self.storage_error: str | None = None  # the last failure to save a run (full or read-only disk)
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="meiscope-run")
        if runs_dir is not None:
            clean_leftovers_once(Path(runs_dir))  # partial saves of a server that was killed

    def submit(self, config: AMConfig, on_frame: Callable[[Frame], None] | None = None,
               on_done: Callable[[Job], None] | None = None, run_id: str | None = None,
               client: str = "local") -> Job:
        """Queue a run; raises Busy when the server or this client has as many unfinished runs as allowed."""
        job = Job(id=run_id or new_run_id(), config=config, client=client, on_frame=on_frame, on_done=on_done)
        with self.lock:
            unfinished = [j for j in self.jobs.values() if not j.finished]
            if len(unfinished) >= self.limits.max_unfinished:
                raise Busy(f"the server has {len(unfinished)} runs queued or running (at most "
                           f"{self.limits.max_unfinished}); try again when one finishes")
            mine = sum(j.client == client for j in unfinished)
            if mine >= self.limits.max_runs_per_client:
                raise Busy(f"you have {mine} runs queued or running (at most {self.limits.max_runs_per_client} "
                           "per client); stop one or wait for it")
            self.jobs[job.id] = job
            self._forget_old()
        self.pool.submit(self._work, job)
        return job

    def _forget_old(self) -> None:
        """Keep at most `limits.history` finished runs, taking at most `limits.history_mib`, in memory (their
        folders stay on disk), forgetting the oldest first."""
        finished = [j for j in self.jobs.values() if j.finished]
        sizes = [j.result.nbytes if j.result is not None else 0 for j in finished]
        total, budget = sum(sizes), self.limits.history_mib << 20
        for k, job in enumerate(finished):
            if len(finished) - k <= self.limits.history and total <= budget:
                break
            del self.jobs[job.id]
            total -= sizes[k]

    def get(self, run_id: str) -> Job:
        """A run in memory, else a saved one from runs_dir (KeyError when there is neither)."""
        with self.lock:
            if run_id in self.jobs:
                return self.jobs[run_id]
        folder = self.runs_dir / run_id if self.runs_dir is not None else None
        if folder is None or not (folder / "run.json").is_file():
            raise KeyError(run_id)
        try:
            return Job.from_disk(run_id, Run.load(folder))
        except (OSError, ValueError) as exc:
            raise KeyError(run_id) from exc

    def list(self) -> list[Job]:
        with self.lock:
            return list(self.jobs.values())

    def queue_position(self, job: Job) -> int:
        """How many queued jobs are ahead of this one (0 when it is next, or running)."""
        with self.lock:
            queued = [j for j in self.jobs.values() if j.status == "queued"]
        return queued.index(job) if job in queued else 0

    def _work(self, job: Job) -> None:
        if job.cancel.is_set():
            job.status = "cancelled"
        else:
            job.status = "running"

            def on_step(frame: Frame) -> None:
                job.step = frame.step
                if job.on_frame is not None:
                    job.on_frame(frame)

            try:
                job.result = run(self.model, job.config, on_step=on_step, cancel=job.cancel)
                job.result.info["created"] = job.created
                job.step = job.result.info["steps_done"]
                job.status = job.result.info["status"]
            except Exception as exc:  # a run that breaks must not take the server with it
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
        if job.on_done is not None:  # tell the client first; saving to disk is the server's own business
            job.on_done(job)
        if job.result is not None and self.runs_dir is not None:
            self._save(job)
        with self.lock:
            self._forget_old()

    def _save(self, job: Job) -> None:
        try:
            job.result.save(self.runs_dir / job.id)
            job.saved = True
            self.storage_error = None
            self._prune_disk()
        except OSError as exc:  # a full or read-only disk: the run stays in memory, the server goes on
            job.error = f"could not save the run to {self.runs_dir}: {exc.strerror or exc}"
            self.storage_error = job.error

    def _prune_disk(self) -> None:
        """Keep at most `limits.stored_runs` run folders, removing the oldest."""
        folders = [p for p in self.runs_dir.iterdir() if p.is_dir() and re.match(RUN_ID, p.name)]
        if len(folders) <= self.limits.stored_runs:
            return
        folders.sort(key=lambda p: p.stat().st_mtime)
        for folder in folders[: len(folders) - self.limits.stored_runs]:
            shutil.rmtree(folder, ignore_errors=True)

    def shutdown(self) -> None:
        for job in self.list():
            job.stop()
        self.pool.shutdown(wait=True, cancel_futures=False)
