"""The FastAPI app: REST routes, the websocket that streams runs, and (when present) the static page.

One model is loaded at start-up and shared by every run. Torch work runs in the JobManager's threads; the
event loop only moves messages. Over the websocket, control messages arrive in order and a slow client
gets the newest frame of a run instead of a backlog.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..engine import AMConfig, Frame, run
from ..engine.options import describe_error
from ..model.card import read_card
from ..model.checkpoint import DEFAULT_MODEL_DIR, load_model
from ..model.tdvae import Z2_DIM
from ..engine.presets import PRESETS
from ..export import write_export
from .atlas import Atlas
from ..analysis.report import analyze_unit, report_panels, split_arrays
from ..data import build_split
from .encode import MAX_ROWS, encode_frame, finite, pack
from .jobs import Job, JobManager, new_run_id

FRONTEND_DIR = Path(__file__).resolve().parents[3] / "frontend"
# at most 30 frames a second per client: smooth to the eye, and encoding more would slow the run itself
MIN_FRAME_INTERVAL = 1 / 30


# ---- websocket messages from the client ---------------------------------------------------------
class StartMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["start"]
    config: AMConfig = Field(default_factory=AMConfig)


class StopMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stop"]


ClientMessage = TypeAdapter(Annotated[Union[StartMessage, StopMessage], Field(discriminator="type")])


class Outbox:
    """Messages for one websocket, in order; a frame still waiting is replaced by a newer frame of the
    same run, so a slow client never builds a backlog."""

    def __init__(self) -> None:
        self.items: deque[tuple[object, str | None]] = deque()  # (message, run id when it is a frame)
        self.ready = asyncio.Event()

    def put(self, message: object, frame_of: str | None = None) -> None:
        if frame_of is not None and self.items and self.items[-1][1] == frame_of:
            self.items[-1] = (message, frame_of)
        else:
            self.items.append((message, frame_of))
        self.ready.set()

    async def get(self, frame_not_before: float = 0.0) -> tuple[object, str | None]:
        """The next message. A frame waits until the loop time `frame_not_before` (the frame-rate cap);
        newer frames of its run replace it meanwhile, so the newest one goes out."""
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        if self.items[0][1] is not None:
            delay = frame_not_before - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
        return self.items.popleft()


def _done_message(job: Job) -> dict:
    summary = job.summary()
    message = {"type": "done", "run_id": job.id, "status": job.status, "step": job.step, "final": summary.get("final")}
    if job.status == "failed":
        message = {"type": "error", "run_id": job.id, "message": f"run failed: {job.error}"}
    return message


def create_app(model_dir: Path | None = None, runs_dir: Path | None = None, max_running: int = 2,
               cache_dir: Path | None = Path("cache")) -> FastAPI:
    """The app. cache_dir holds the unit atlas (None: no atlas is built)."""
    model_dir = Path(model_dir or DEFAULT_MODEL_DIR)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        model = await asyncio.to_thread(load_model, model_dir)
        # the first run in a process pays about a second of one-time set-up in torch: pay it before the
        # first user does (a 2-step run with every stage that a default run uses)
        await asyncio.to_thread(run, model, AMConfig(steps=2, elbo_every=1, pre={"jitter": 1}, grad={"gamma": 1.0}))
        app.state.jobs = JobManager(model, max_running=max_running, runs_dir=runs_dir)
        app.state.atlas = None
        if cache_dir is not None:
            app.state.atlas = Atlas(model, model_dir, cache_dir)
            app.state.atlas.start()
        try:
            app.state.card = read_card(model_dir)
        except FileNotFoundError:
            app.state.card = None
        yield
        if app.state.atlas is not None:
            app.state.atlas.cancel.set()
        await asyncio.to_thread(app.state.jobs.shutdown)

    app = FastAPI(title="meiscope", version="0.1.0", lifespan=lifespan,
                  description="Preferred inputs of the units of the TDVAE-40: runs, streams and exports.")

    def jobs() -> JobManager:
        return app.state.jobs

    @app.get("/api/health")
    def health() -> dict:
        running = [j for j in jobs().list() if j.status == "running"]
        queued = [j for j in jobs().list() if j.status == "queued"]
        return {"status": "ok", "model": str(model_dir), "running": len(running), "queued": len(queued),
                "max_running": jobs().max_running}

    @app.get("/api/model")
    def model_info() -> dict:
        card = app.state.card or {}
        n = sum(p.numel() for p in jobs().model.parameters())
        return {"path": str(model_dir), "n_parameters": n, "card": card}

    @app.get("/api/units")
    def units() -> list[dict]:
        if not app.state.card:
            return [{"unit": i, "status": "unknown"} for i in range(Z2_DIM)]
        return app.state.card["metrics"]["units"]["census"]

    analyses: dict[int, dict] = {}
    held_out: list = []

    def analysis_payload(unit: int) -> dict:
        if not held_out:
            scale = (app.state.card or {}).get("data", {}).get("scale")
            held_out.append(build_split("heldout", 2048, scale=scale)[0])
        report = analyze_unit(jobs().model, unit, patches=held_out[0])
        numbers, arrays = split_arrays(report)
        panels = [{"title": title, "image": pack(img)} for title, img in report_panels(report)]
        return {"numbers": numbers, "panels": panels, "arrays": {k: pack(v) for k, v in arrays.items()}}

    @app.get("/api/units/{unit}/analysis")
    async def unit_analysis(unit: int) -> dict:
        """Every view of a z2 unit (preferred inputs over 3 seeds, STA, one-hot synthesis, best Gabor, nearest
        held-out patches, probes, spectra, agreement); computed once per unit (about 10 s), then cached."""
        if not 0 <= unit < Z2_DIM:
            raise HTTPException(422, f"unit must lie in 0..{Z2_DIM - 1}, got {unit}")
        if unit not in analyses:
            analyses[unit] = await asyncio.to_thread(analysis_payload, unit)
        return analyses[unit]

    @app.get("/api/atlas")
    def atlas() -> dict:
        """Progress of the unit atlas, and each unit's final activation once it is ready."""
        if app.state.atlas is None:
            return {"status": "off"}
        return app.state.atlas.summary()

    @app.get("/api/atlas/thumbnails")
    def atlas_thumbnails() -> dict[int, str]:
        if app.state.atlas is None or app.state.atlas.status != "ready":
            raise HTTPException(409, "the atlas is not ready yet (see /api/atlas)")
        return app.state.atlas.thumbnails

    @app.get("/api/presets")
    def presets() -> dict[str, dict]:
        return PRESETS

    @app.get("/api/config/schema")
    def config_schema() -> dict:
        return {"schema": AMConfig.model_json_schema(), "defaults": AMConfig().model_dump(mode="json")}

    @app.post("/api/runs", status_code=202)
    def create_run(config: AMConfig) -> dict:
        job = jobs().submit(config)
        return {"run_id": job.id, "status": job.status}

    @app.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{k: v for k, v in j.summary().items() if k != "config"} | {"method": j.config.method}
                for j in jobs().list()]

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: str) -> dict:
        try:
            job = jobs().get(run_id)
        except KeyError:
            raise HTTPException(404, f"no run {run_id!r}") from None
        out = job.summary()
        out["queue_position"] = jobs().queue_position(job)
        if job.result is not None:
            out["images"] = np.round(job.result.images[:MAX_ROWS].astype(np.float64), 4).tolist()
            out["metrics"] = {k: [finite(row) for row in vals[:, :MAX_ROWS].tolist()]
                              for k, vals in job.result.metrics.items()}
        return out

    def finished_run(run_id: str):
        try:
            job = jobs().get(run_id)
        except KeyError:
            raise HTTPException(404, f"no run {run_id!r}") from None
        if job.result is None:
            raise HTTPException(409, f"run {run_id} has no result yet (status {job.status})")
        return job.result

    @app.get("/api/runs/{run_id}/export")
    async def export_run(run_id: str) -> FileResponse:
        return await _export({run_id: finished_run(run_id)})

    @app.get("/api/export")
    async def export_runs(ids: str) -> FileResponse:
        """A figure set of several runs: ?ids=a,b,c"""
        names = [i for i in ids.split(",") if i]
        if not names:
            raise HTTPException(422, "ids: give at least one run id")
        return await _export({i: finished_run(i) for i in names})

    async def _export(runs: dict) -> FileResponse:
        folder = Path(tempfile.mkdtemp(prefix="meiscope-export-"))
        zip_path = await asyncio.to_thread(write_export, runs, folder / "meiscope-figures.zip")
        return FileResponse(zip_path, media_type="application/zip", filename=f"meiscope-{'-'.join(runs)}.zip",
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    @app.websocket("/ws/runs")
    async def ws_runs(ws: WebSocket) -> None:
        await ws.accept()
        loop = asyncio.get_running_loop()
        outbox = Outbox()
        current: list[Job] = []  # the client's latest run

        async def sender() -> None:
            next_frame = 0.0
            while True:
                message, frame_of = await outbox.get(frame_not_before=next_frame)
                if isinstance(message, Frame):  # encode off the event loop, only frames that are sent
                    next_frame = loop.time() + MIN_FRAME_INTERVAL
                    message = await asyncio.to_thread(encode_frame, message, frame_of)
                await ws.send_json(message)

        send_task = asyncio.create_task(sender())
        try:
            while True:
                raw = await ws.receive_text()
                try:
                    message = ClientMessage.validate_json(raw)
                except ValidationError as exc:
                    outbox.put({"type": "error", "message": describe_error(exc)})
                    continue
                if isinstance(message, StopMessage):
                    if current and not current[-1].finished:
                        current[-1].cancel.set()
                    else:
                        outbox.put({"type": "error", "message": "stop: no run is going"})
                    continue
                if current and not current[-1].finished:  # a new start replaces the running run
                    current[-1].cancel.set()
                run_id = new_run_id()
                job = jobs().submit(
                    message.config, run_id=run_id,
                    on_frame=lambda frame, rid=run_id: loop.call_soon_threadsafe(outbox.put, frame, rid),
                    on_done=lambda done: loop.call_soon_threadsafe(outbox.put, _done_message(done)),
                )
                current.append(job)
                outbox.put({"type": "started", "run_id": run_id, "status": job.status,
                            "queue_position": jobs().queue_position(job)})
        except WebSocketDisconnect:
            pass
        finally:
            for job in current:  # the client went away: its runs stop
                job.cancel.set()
            send_task.cancel()

    if (FRONTEND_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
