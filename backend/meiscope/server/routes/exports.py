"""Figure sets as zip downloads: one run of this server, or several runs (this server's and stored sweeps'),
labelled by what differs between them."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from ...presentation.export import write_export
from ...sweep.spec import NAME_PATTERN as SWEEP_NAME, RUN_ID_PATTERN as SWEEP_RUN_ID
from ..download import zip_download
from ..limits import RUN_ID, ServerLimits
from ..state import finished_run
from .params import ExportIds, RunId, StoredIds
from .sweeps import load_stored_run


async def export_zip(runs: dict) -> FileResponse:
    return await zip_download(lambda path: write_export(runs, path), f"meiscope-{'-'.join(runs)}.zip")


def exports_router(limits: ServerLimits, sweeps_dir: Path | None) -> APIRouter:
    router = APIRouter(tags=["exports"])

    @router.get("/api/runs/{run_id}/export")
    async def export_run(run_id: RunId, request: Request) -> FileResponse:
        return await export_zip({run_id: finished_run(request, run_id)})

    @router.get("/api/export")
    async def export_runs(request: Request, ids: ExportIds = "", stored: StoredIds = "") -> FileResponse:
        """A figure set of several runs: ?ids=a,b,c (this server's runs) and &stored=sweep/id,... (runs of
        stored sweeps, as the page pins them; their folders are named {sweep}-{id})."""
        names = list(dict.fromkeys(i for i in ids.split(",") if i))
        cells = list(dict.fromkeys(c for c in stored.split(",") if c))
        if not names + cells or len(names + cells) > limits.max_export_runs:
            raise HTTPException(422, f"ids: give 1 to {limits.max_export_runs} run ids, got {len(names + cells)}")
        bad = [i for i in names if not re.match(RUN_ID, i)]
        if bad:
            raise HTTPException(422, f"ids: a run id is 12 hex digits, got {bad[0][:40]!r}")
        runs = {i: finished_run(request, i) for i in names}
        for cell in cells:
            sweep, _, rid = cell.partition("/")
            if sweeps_dir is None or not SWEEP_NAME.match(sweep) or not SWEEP_RUN_ID.match(rid):
                raise HTTPException(422, f"stored: each is {{sweep}}/{{16 hex digits}} of a stored sweep, got {cell[:80]!r}")
            runs[f"{sweep}-{rid}"] = load_stored_run(sweeps_dir, sweep, rid)
        return await export_zip(runs)

    return router
