"""REST routes of runs: start one (it queues when the server is full), list them, read one with its arrays."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException, Request

from ...engine import AMConfig
from ..encode import MAX_ROWS, finite, reopen_payload
from ..limits import Busy, LimitError, ServerLimits, check_work
from ..state import finished_run, job_of, jobs_of
from .params import RunId


def limit_422(exc: LimitError) -> HTTPException:
    """A server limit as FastAPI's own 422 body: the field's location and a message with the bound."""
    return HTTPException(422, [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "limit"}])


def runs_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["runs"])

    @router.post("/api/runs", status_code=202, responses={429: {"description": "the server or this client is busy"}})
    def create_run(config: AMConfig, request: Request) -> dict:
        jobs = jobs_of(request)
        try:
            check_work(config, limits, jobs.model)
            job = jobs.submit(config, client=request.client.host if request.client else "unknown")
        except LimitError as exc:
            raise limit_422(exc) from None
        except Busy as exc:
            raise HTTPException(429, f"busy: {exc}", headers={"Retry-After": "5"}) from None
        return {"run_id": job.id, "status": job.status}

    @router.get("/api/runs")
    def list_runs(request: Request) -> list[dict]:
        return [{k: v for k, v in j.summary().items() if k != "config"}
                | {"method": j.config.method, "unit": j.config.unit, "layer": j.config.layer}
                for j in jobs_of(request).list()]

    @router.get("/api/runs/{run_id}")
    def get_run(run_id: RunId, request: Request) -> dict:
        job = job_of(request, run_id)
        out = job.summary()
        out["queue_position"] = jobs_of(request).queue_position(job)
        if job.result is not None:
            out["images"] = np.round(job.result.images[:MAX_ROWS].astype(np.float64), 4).tolist()
            out["metrics"] = {k: [finite(row) for row in vals[:, :MAX_ROWS].tolist()]
                              for k, vals in job.result.metrics.items()}
        return out

    @router.get("/api/runs/{run_id}/view")
    def run_view(run_id: RunId, request: Request) -> dict:
        """A finished run as the page reopens it (after a reload, from the run list or a shared URL's pins): its
        unit, config, last frame, first row's curves and checks."""
        return reopen_payload(finished_run(request, run_id), run_id)

    return router
