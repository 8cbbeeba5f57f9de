"""The FastAPI app: create_app loads the model and assembles the routers (server/routes/: model and units,
runs, exports, the unit analysis, the websocket that streams runs, stored sweeps) and, when present, the
static page.

One model is loaded at start-up and shared by every run. Torch work runs in the JobManager's threads; the
event loop only moves messages.

Every input has a bound (AMConfig's own, then the server's limits in limits.py): a violation is a 422 or
an `error` message naming the field, a full server a 429 or an `error` with code "busy". guard.py decides
who may connect at all (token, host, origin).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..atomic import clean_scratch
from ..engine import AMConfig, run
from ..model.factory import is_factory_spec
from ..model.loader import load_model
from ..model.seam import Explorable
from ..presentation.card import read_card
from .atlas import Atlases
from .guard import Guard
from .jobs import JobManager
from .limits import ServerLimits
from .routes.analysis import analysis_router, characterisation_router
from .routes.exports import exports_router
from .routes.model import model_router
from .routes.runs import runs_router
from .routes.sweeps import sweep_router
from .routes.websocket import websocket_router

FRONTEND_DIR = Path(__file__).resolve().parents[3] / "frontend"
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's scripts, styles and icon (the fastapi-offline package)


def card_beside(model: Explorable) -> dict | None:
    """The model card of a checkpoint folder, or None (a factory's model, or a folder without a card)."""
    folder = model.source.get("spec")
    if not folder or is_factory_spec(folder):
        return None
    try:
        return read_card(Path(folder))
    except FileNotFoundError:
        return None


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
        # first user does (a 2-step run of the default configuration, whose stages every run uses)
        await asyncio.to_thread(run, model, AMConfig(steps=2, layer=model.default_layer, elbo_every=1))
        app.state.jobs = JobManager(model, max_running=max_running, runs_dir=runs_dir, limits=limits)
        app.state.atlas = None if cache_dir is None else Atlases(model, cache_dir)
        if app.state.atlas is not None:
            app.state.atlas.build()  # the first layer's, at once
        app.state.card = card_beside(model)
        yield
        if app.state.atlas is not None:
            app.state.atlas.cancel()
        await asyncio.to_thread(app.state.jobs.shutdown)

    # /docs and /redoc load their scripts from the installed fastapi-offline package, not a CDN: they work
    # offline (no validator badge either: it would call validator.swagger.io)
    app = FastAPIOffline(title="meiscope", version="0.1.0", lifespan=lifespan, static_url=DOCS_ASSETS,
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Preferred inputs of the units of the loaded model (by default the TDVAE-40): runs, "
                                     "streams and exports.")
    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts, max_body_bytes=limits.max_message_bytes)
    for router in (model_router(limits), analysis_router(limits), characterisation_router(limits), runs_router(limits),
                   exports_router(limits, sweeps_dir), websocket_router(limits)):
        app.include_router(router)
    if sweeps_dir is not None:  # stored sweeps, read-only (routes/sweeps.py)
        app.include_router(sweep_router(sweeps_dir))
    if (FRONTEND_DIR / "index.html").is_file():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
