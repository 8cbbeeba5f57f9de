"""The FastAPI app: REST routes, the websocket that streams runs, and (when present) the static page.

One model is loaded at start-up and shared by every run. Torch work runs in the JobManager's threads; the
event loop only moves messages. Over the websocket, control messages arrive in order and a slow client
gets the newest frame of a run instead of a backlog.

Every input has a bound (AMConfig's own, then the server's limits in limits.py): a violation is a 422 or
an `error` message naming the field, a full server a 429 or an `error` with code "busy". guard.py decides
who may connect at all (token, host, origin).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
import time
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..engine import AMConfig, Frame, run
from ..engine.options import describe_error
from ..model.card import read_card
from ..model.factory import is_factory_spec
from ..model.loader import load_model
from ..model.seam import Explorable
from ..engine.presets import PRESETS
from ..export import write_export
from .atlas import Atlas
from ..analysis.report import analysis_applies, analyze_unit, report_panels, split_arrays
from ..data import build_split
from .encode import MAX_ROWS, encode_frame, finite, pack
from ..atomic import clean_scratch
from .download import zip_download
from .guard import Guard
from .sweeps import load_stored_run, sweep_router
from ..sweep.spec import NAME_PATTERN as SWEEP_NAME, RUN_ID_PATTERN as SWEEP_RUN_ID
from .jobs import Job, JobManager, new_run_id
from .limits import RUN_ID, Busy, LimitError, ServerLimits, check_work

FRONTEND_DIR = Path(__file__).resolve().parents[3] / "frontend"
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts, styles and icon (the fastapi-offline package)
# at most 30 frames a second per client: smooth to the eye, and encoding more would slow the run itself
MIN_FRAME_INTERVAL = 1 / 30
RunId = Annotated[str, PathParam(pattern=RUN_ID, description="a run id: 12 hex digits")]
ExportIds = Annotated[str, Query(max_length=4096, description="run ids (12 hex digits each) separated by commas")]
StoredIds = Annotated[str, Query(max_length=4096, description="runs of stored sweeps, each {sweep}/{run id}, "
                                                             "separated by commas")]


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


class RateLimit:
    """A token bucket: `rate` messages a second on average, bursts of up to twice that."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self.tokens, self.last = self.capacity, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _next_message(ws: WebSocket, outbox: Outbox, rate: RateLimit, limits: ServerLimits,
                        model) -> StartMessage | StopMessage | None:
    """The client's next valid message (a start within the server's limits, or a stop). A message that is not
    one gets an `error` and the next is read; None when the client left, or was closed for sending too much
    (1009) or too often (1008)."""
    while True:
        event = await ws.receive()
        if event["type"] == "websocket.disconnect":
            return None
        raw = event.get("text")
        if raw is None:
            outbox.put({"type": "error", "message": "binary frames are not accepted: send JSON text"})
            continue
        if len(raw) > limits.max_message_bytes:
            await ws.close(1009, f"message larger than {limits.max_message_bytes} bytes")
            return None
        if not rate.allow():
            await ws.close(1008, f"more than {limits.messages_per_second:g} messages a second")
            return None
        try:
            message = ClientMessage.validate_json(raw)
            if isinstance(message, StartMessage):
                check_work(message.config, limits, model)
        except ValidationError as exc:
            outbox.put({"type": "error", "message": describe_error(exc)})
            continue
        except LimitError as exc:
            outbox.put({"type": "error", "field": f"config.{exc.field}", "message": f"config.{exc}"})
            continue
        return message


def _limit_422(exc: LimitError) -> HTTPException:
    """A server limit as FastAPI's own 422 body: the field's location and a message with the bound."""
    return HTTPException(422, [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "limit"}])


def create_app(model_dir: str | Path | None = None, runs_dir: Path | None = None, max_running: int = 2,
               cache_dir: Path | None = Path("cache"), token: str | None = None,
               allowed_hosts: list[str] | None = None, limits: ServerLimits | None = None,
               sweeps_dir: Path | None = Path("runs/sweeps"), model: Explorable | None = None) -> FastAPI:
    """The app for the model `model_dir` names (a checkpoint folder or package.module:factory; default: the
    shipped TDVAE), or `model` when already loaded. cache_dir holds the unit atlas (None: no atlas is built).
    With a token every request needs it; with allowed_hosts only those Host names are served (see guard.py)."""
    limits = limits or ServerLimits()
    preloaded = model

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        clean_scratch()  # exports of a server that was killed while zipping
        model = preloaded or await asyncio.to_thread(load_model, model_dir)
        # the first run in a process pays about a second of one-time set-up in torch: pay it before the
        # first user does (a 2-step run with every stage that a default run uses)
        await asyncio.to_thread(run, model, AMConfig(steps=2, layer=model.default_layer, elbo_every=1,
                                                     pre={"jitter": 1}, grad={"gamma": 1.0}))
        app.state.jobs = JobManager(model, max_running=max_running, runs_dir=runs_dir, limits=limits)
        app.state.atlas = None
        if cache_dir is not None:
            app.state.atlas = Atlas(model, cache_dir)
            app.state.atlas.start()
        app.state.card = None
        folder = model.source.get("spec")
        if folder and not is_factory_spec(folder):
            try:
                app.state.card = read_card(Path(folder))
            except FileNotFoundError:
                pass
        yield
        if app.state.atlas is not None:
            app.state.atlas.cancel.set()
        await asyncio.to_thread(app.state.jobs.shutdown)

    # /docs and /redoc load their scripts from the installed fastapi-offline package, not a CDN: they work
    # offline (no validator badge either: it would call validator.swagger.io)
    app = FastAPIOffline(title="meiscope", version="0.1.0", lifespan=lifespan, static_url=DOCS_ASSETS,
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Preferred inputs of the units of the loaded model (by default the TDVAE-40): runs, "
                                     "streams and exports.")

    def jobs() -> JobManager:
        return app.state.jobs

    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts, max_body_bytes=limits.max_message_bytes)

    @app.get("/api/health")
    async def health() -> dict:
        """Answered on the event loop itself: it shows that the loop is free."""
        listed = jobs().list()
        return {"status": "ok", "model": jobs().model.source.get("spec"), "running": sum(j.status == "running" for j in listed),
                "queued": sum(j.status == "queued" for j in listed), "max_running": jobs().max_running,
                "storage_error": jobs().storage_error}

    @app.get("/api/model")
    def model_info() -> dict:
        """What the loaded model offers (input, readout layers, latents, ELBO, methods, whether the unit analysis
        applies), where it came from, and its card when it has one."""
        model = jobs().model
        n = sum(p.numel() for p in model.parameters())
        return {"path": model.source.get("spec"), "source": model.source, "n_parameters": n,
                **asdict(model.info()), "analysis": analysis_applies(model), "card": app.state.card or {}}

    @app.get("/api/units")
    def units(layer: Annotated[str | None, Query(max_length=200, description="a readout layer (default: the "
                                                                            "model's first)")] = None) -> list[dict]:
        """A record per unit of the layer: its census on data where the model has one (status, activation mean /
        std / 99.9th percentile, label, ...), else its index and label."""
        model = jobs().model
        name = layer or model.default_layer
        if name not in model.layers:
            raise HTTPException(422, f"layer must be one of {', '.join(model.layers)}, got {name!r}")
        census = model.census(name)
        if census is not None:
            return census
        labels = model.layers[name].labels
        return [{"unit": i, "status": "unknown", **({"label": labels[i]} if labels else {})}
                for i in range(model.layers[name].units)]

    analyses: OrderedDict[int, asyncio.Future] = OrderedDict()  # unit -> its payload, newest last
    analysis_slot = asyncio.Semaphore(1)  # one analysis at a time: each keeps the cores busy for seconds
    held_out: list = []

    def analysis_payload(unit: int) -> dict:
        if not held_out:
            scale = (app.state.card or {}).get("data", {}).get("scale")
            held_out.append(build_split("heldout", 2048, scale=scale)[0])
        report = analyze_unit(jobs().model, unit, patches=held_out[0])
        numbers, arrays = split_arrays(report)
        panels = [{"title": title, "image": pack(img)} for title, img in report_panels(report)]
        return {"numbers": numbers, "panels": panels, "arrays": {k: pack(v) for k, v in arrays.items()}}

    async def compute_analysis(unit: int) -> dict:
        async with analysis_slot:
            return await asyncio.to_thread(analysis_payload, unit)

    @app.get("/api/units/{unit}/analysis")
    async def unit_analysis(unit: Annotated[int, PathParam(ge=0)]) -> dict:
        """Every view of a z2 unit of the TDVAE (preferred inputs over 3 seeds, STA, one-hot synthesis, best
        Gabor, nearest held-out patches, probes, spectra, agreement); computed once per unit (about 10 s), then
        cached. Simultaneous requests for one unit share one computation."""
        model = jobs().model
        if not analysis_applies(model):
            raise HTTPException(422, f"the unit analysis needs a model with a z2 latent and one input channel "
                                     f"(a TDVAE); {model.name} has none")
        if unit >= model.layers["z2"].units:
            raise HTTPException(422, [{"loc": ["path", "unit"], "type": "less_than_equal",
                                       "msg": f"Input should be less than or equal to {model.layers['z2'].units - 1}"}])
        if unit not in analyses:
            analyses[unit] = asyncio.ensure_future(compute_analysis(unit))
            while len(analyses) > limits.analysis_cache:
                analyses.popitem(last=False)
        analyses.move_to_end(unit)
        future = analyses[unit]
        try:
            return await asyncio.shield(future)
        except Exception:
            analyses.pop(unit, None)  # a failure is not cached
            raise

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

    @app.get("/api/limits")
    def server_limits() -> ServerLimits:
        """What this server accepts per run and per client (beyond the config's own bounds)."""
        return limits

    @app.get("/api/presets")
    def presets() -> dict[str, dict]:
        return PRESETS

    @app.get("/api/config/schema")
    def config_schema() -> dict:
        return {"schema": AMConfig.model_json_schema(), "defaults": AMConfig().model_dump(mode="json")}

    @app.post("/api/runs", status_code=202, responses={429: {"description": "the server or this client is busy"}})
    def create_run(config: AMConfig, request: Request) -> dict:
        try:
            check_work(config, limits, jobs().model)
            job = jobs().submit(config, client=request.client.host if request.client else "unknown")
        except LimitError as exc:
            raise _limit_422(exc) from None
        except Busy as exc:
            raise HTTPException(429, f"busy: {exc}", headers={"Retry-After": "5"}) from None
        return {"run_id": job.id, "status": job.status}

    @app.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{k: v for k, v in j.summary().items() if k != "config"} | {"method": j.config.method}
                for j in jobs().list()]

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: RunId) -> dict:
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
    async def export_run(run_id: RunId) -> FileResponse:
        return await _export({run_id: finished_run(run_id)})

    @app.get("/api/export")
    async def export_runs(ids: ExportIds = "", stored: StoredIds = "") -> FileResponse:
        """A figure set of several runs: ?ids=a,b,c (this server's runs) and &stored=sweep/id,... (runs of
        stored sweeps, as the page pins them; their folders are named {sweep}-{id})."""
        names = list(dict.fromkeys(i for i in ids.split(",") if i))
        cells = list(dict.fromkeys(c for c in stored.split(",") if c))
        if not names + cells or len(names + cells) > limits.max_export_runs:
            raise HTTPException(422, f"ids: give 1 to {limits.max_export_runs} run ids, got {len(names + cells)}")
        bad = [i for i in names if not re.match(RUN_ID, i)]
        if bad:
            raise HTTPException(422, f"ids: a run id is 12 hex digits, got {bad[0][:40]!r}")
        runs = {i: finished_run(i) for i in names}
        for cell in cells:
            sweep, _, rid = cell.partition("/")
            if sweeps_dir is None or not SWEEP_NAME.match(sweep) or not SWEEP_RUN_ID.match(rid):
                raise HTTPException(422, f"stored: each is {{sweep}}/{{16 hex digits}} of a stored sweep, got {cell[:80]!r}")
            runs[f"{sweep}-{rid}"] = load_stored_run(sweeps_dir, sweep, rid)
        return await _export(runs)

    async def _export(runs: dict) -> FileResponse:
        return await zip_download(lambda path: write_export(runs, path), f"meiscope-{'-'.join(runs)}.zip")

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
        rate = RateLimit(limits.messages_per_second)
        client = f"ws-{id(ws):x}"
        try:
            while (message := await _next_message(ws, outbox, rate, limits, jobs().model)) is not None:
                if isinstance(message, StopMessage):
                    if current and not current[-1].finished:
                        current[-1].stop()  # its `done` (status cancelled) follows when the worker has stopped
                        outbox.put({"type": "stopping", "run_id": current[-1].id})
                    else:
                        outbox.put({"type": "error", "message": "stop: no run is going"})
                    continue
                if current and not current[-1].finished:  # a new start replaces the running run
                    current[-1].stop()
                run_id = new_run_id()
                try:
                    job = jobs().submit(
                        message.config, run_id=run_id, client=client,
                        on_frame=lambda frame, rid=run_id: loop.call_soon_threadsafe(outbox.put, frame, rid),
                        on_done=lambda done: loop.call_soon_threadsafe(outbox.put, _done_message(done)),
                    )
                except Busy as exc:
                    outbox.put({"type": "error", "code": "busy", "message": f"busy: {exc}"})
                    continue
                current.append(job)
                del current[:-limits.max_runs_per_client]  # older ones are stopped and need no tracking
                outbox.put({"type": "started", "run_id": run_id, "status": job.status,
                            "queue_position": jobs().queue_position(job)})
        except WebSocketDisconnect:
            pass
        finally:
            for job in current:  # the client went away (or was closed): its runs stop
                job.stop()
            send_task.cancel()

    if sweeps_dir is not None:  # stored sweeps, read-only (server/sweeps.py)
        app.include_router(sweep_router(sweeps_dir))
    if (FRONTEND_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
