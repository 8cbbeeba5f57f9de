"""Runs in worker threads: a bounded pool (later jobs wait in a visible queue), a cancel flag per job, and
callbacks that the worker thread calls with each frame and at the end. Torch work never touches the
event loop; the server bridges the callbacks with `loop.call_soon_threadsafe`."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine import AMConfig, Frame, Run, run
from ..model.tdvae import TDVAE


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Job:
    id: str
    config: AMConfig
    status: str = "queued"  # queued, running, completed, cancelled, failed
    created: float = field(default_factory=time.time)
    step: int = 0
    error: str | None = None
    result: Run | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    on_frame: Callable[[Frame], None] | None = None
    on_done: Callable[["Job"], None] | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "cancelled", "failed")

    def summary(self) -> dict:
        out = {"run_id": self.id, "status": self.status, "step": self.step, "steps": self.config.steps,
               "rows": len(self.config.objectives) * self.config.samples,
               "created": self.created, "config": self.config.model_dump(mode="json"), "error": self.error}
        if self.result is not None and len(self.result.metrics["activation"]):
            m = self.result.metrics
            out["final"] = {"activation": m["activation"][-1].tolist(), "runner_up": m["runner_up"][-1].tolist(),
                            "runner_up_unit": m["runner_up_unit"][-1].tolist(),
                            "objective": m["objective"][-1].tolist(), "wall_s": self.result.info["wall_s"]}
            elbo = m["elbo"][np.isfinite(m["elbo"]).all(axis=1)]
            out["final"]["elbo"] = elbo[-1].tolist() if len(elbo) else None
        return out


class JobManager:
    """Owns the model and the worker threads. `max_running` runs at once; the rest queue in order."""

    def __init__(self, model: TDVAE, max_running: int = 2, runs_dir: Path | None = None, keep: int = 200) -> None:
        self.model = model
        self.max_running = max_running
        self.runs_dir = runs_dir
        self.keep = keep
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max_running, thread_name_prefix="meiscope-run")

    def submit(self, config: AMConfig, on_frame: Callable[[Frame], None] | None = None,
               on_done: Callable[[Job], None] | None = None, run_id: str | None = None) -> Job:
        job = Job(id=run_id or new_run_id(), config=config, on_frame=on_frame, on_done=on_done)
        with self.lock:
            self.jobs[job.id] = job
            while len(self.jobs) > self.keep:  # forget the oldest finished runs (their files stay on disk)
                oldest = next((j for j in self.jobs.values() if j.finished), None)
                if oldest is None:
                    break
                del self.jobs[oldest.id]
        self.pool.submit(self._work, job)
        return job

    def get(self, run_id: str) -> Job:
        with self.lock:
            return self.jobs[run_id]

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
                job.step = job.result.info["steps_done"]
                job.status = job.result.info["status"]
            except Exception as exc:  # a run that breaks must not take the server with it
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
        if job.on_done is not None:  # tell the client first; saving to disk is the server's own business
            job.on_done(job)
        if job.result is not None and self.runs_dir is not None:
            try:
                job.result.save(self.runs_dir / job.id)
            except OSError as exc:
                job.error = f"could not save the run: {exc}"

    def shutdown(self) -> None:
        for job in self.list():
            job.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=False)
