"""What the routes read from the running app: the job manager, the atlas and the model card, which the app's
lifespan sets on `app.state` once the model is loaded (server/app.py)."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from ..engine.result import Run
from .atlas import Atlas, Atlases
from .jobs import Job, JobManager


def jobs_of(connection: HTTPConnection) -> JobManager:
    return connection.app.state.jobs


def atlases_of(connection: HTTPConnection) -> Atlases | None:
    """The atlases (None: the server builds none, no cache folder)."""
    return connection.app.state.atlas


def atlas_of(connection: HTTPConnection, layer: str | None = None) -> Atlas | None:
    """The layer's atlas (default: the first layer's), None when it was never started."""
    atlases = atlases_of(connection)
    return None if atlases is None else atlases.get(layer)


def card_of(connection: HTTPConnection) -> dict | None:
    return connection.app.state.card


def job_of(connection: HTTPConnection, run_id: str) -> Job:
    """This server's run `run_id` (in memory or on disk): 404 when there is no such run."""
    try:
        return jobs_of(connection).get(run_id)
    except KeyError:
        raise HTTPException(404, f"no run {run_id!r}") from None


def finished_run(connection: HTTPConnection, run_id: str) -> Run:
    """The result of this server's run `run_id`: 404 when there is no such run, 409 while it has no result."""
    job = job_of(connection, run_id)
    if job.result is None:
        raise HTTPException(409, f"run {run_id} has no result yet (status {job.status})")
    return job.result
