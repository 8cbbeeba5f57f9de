"""REST routes of stored sweeps (read-only): the list, one sweep's grid (axes, units, each cell's run id,
final activation and final input), one cell's run in the form the unit view draws (and its figure set), and
the sweep's figure set.

    app.include_router(sweep_router(sweeps_dir))
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from ...engine.result import Run
from ...presentation.export import write_export
from ...sweep.export import export_sweep
from ...sweep.store import SweepStore, list_sweeps
from ...sweep.spec import NAME_PATTERN, RUN_ID_PATTERN
from ..download import zip_download
from ..encode import finite, pack, reopen_payload

# checked by FastAPI (422 naming the parameter) and stated in the OpenAPI schema
SweepName = Annotated[str, PathParam(pattern=NAME_PATTERN.pattern, description="a sweep's folder name")]
SweepRunId = Annotated[str, PathParam(pattern=RUN_ID_PATTERN.pattern, description="a sweep run id: 16 hex digits")]


def store_of(root: Path, name: str) -> SweepStore:
    store = SweepStore(root, name)
    if not (store.folder / "sweep.json").is_file():
        raise HTTPException(404, f"no sweep {name!r} in {root}")
    return store


def load_stored_run(root: Path | str, name: str, run_id: str) -> Run:
    """One cell's run of a stored sweep; 404 when the sweep does not list it or it is not stored (yet)."""
    store = store_of(Path(root), name)
    if not any(run_id in p["run_ids"] for p in store.manifest()["points"]) or not store.has(run_id):
        raise HTTPException(404, f"no stored run {run_id} in sweep {name!r}")
    return store.load(run_id)


def sweep_router(sweeps_dir: Path | str) -> APIRouter:
    root = Path(sweeps_dir)
    router = APIRouter(prefix="/api/sweeps", tags=["sweeps"])

    @router.get("")
    def sweeps() -> list[dict]:
        """Every stored sweep: its axes (with their values), unit count, grid points and stored runs."""
        return [SweepStore(root, name).status() for name in list_sweeps(root)]

    @router.get("/{name}")
    def sweep(name: SweepName) -> dict:
        """The grid: axes, units, points (axis values), run_ids and activation (points x units; null where a
        run is not stored), images (points x units x 40 x 40, packed float32: each cell's final input)."""
        store = store_of(root, name)
        manifest = store.manifest()
        try:
            grid = store.grid()
        except FileNotFoundError:
            raise HTTPException(409, f"sweep {name!r} has no summary yet (it is still running)") from None
        if grid["activation"].shape != (len(manifest["points"]), len(manifest["units"])):
            raise HTTPException(409, f"sweep {name!r} is being rerun with another grid; its summary is stale")
        return {"name": name, "axes": manifest["axes"], "units": manifest["units"],
                "points": [p["values"] for p in manifest["points"]],
                "run_ids": [p["run_ids"] for p in manifest["points"]],
                "activation": [finite(row) for row in grid["activation"].astype(np.float64).tolist()],
                "images": pack(grid["images"])}

    @router.get("/{name}/runs/{run_id}")
    def sweep_run(name: SweepName, run_id: SweepRunId) -> dict:
        """One cell's run: its unit and single-unit config, its last frame (as the websocket sends them) and
        its metric curves."""
        return reopen_payload(load_stored_run(root, name, run_id), run_id)

    @router.get("/{name}/runs/{run_id}/export")
    async def sweep_run_export(name: SweepName, run_id: SweepRunId) -> FileResponse:
        """The figure set of one cell's run (as /api/runs/{id}/export for a live run): its folder is named
        {sweep}-{run_id}."""
        run = load_stored_run(root, name, run_id)
        key = f"{name}-{run_id}"
        return await zip_download(lambda path: write_export({key: run}, path), f"meiscope-{key}.zip")

    @router.get("/{name}/export")
    async def sweep_export(name: SweepName) -> FileResponse:
        """The figure set of a sweep: per grid point a batched run's figures, the summary and the sheets."""
        store = store_of(root, name)
        try:
            return await zip_download(lambda path: export_sweep(store, path), f"meiscope-sweep-{name}.zip")
        except FileNotFoundError as exc:
            raise HTTPException(409, str(exc)) from None

    return router

