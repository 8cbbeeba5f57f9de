"""Routes about the loaded model and the server: health, the model and its layers, each layer's units, the unit
atlas, and what a run may ask for (limits, presets, the config's schema)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam

from ...analysis.characterise import characterisation_applies
from ...analysis.report import analysis_applies
from ...engine import AMConfig
from ...engine.presets import PRESETS
from ..encode import pack
from ..limits import ServerLimits
from ..state import card_of, jobs_of
from .params import LayerName, checked_layer

def offers(model) -> dict:
    """The model's size and what it offers (the seam's info, and which unit views apply)."""
    return {"n_parameters": sum(p.numel() for p in model.parameters()), **asdict(model.info()),
            "analysis": analysis_applies(model), "characterisation": characterisation_applies(model)}


def model_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["model"])

    @router.get("/api/health")
    async def health(request: Request) -> dict:
        """Answered on the event loop itself: it shows that the loop is free."""
        jobs = jobs_of(request)
        listed = jobs.list()
        return {"status": "ok", "model": jobs.model.source.get("spec"),
                "running": sum(j.status == "running" for j in listed),
                "queued": sum(j.status == "queued" for j in listed), "max_running": jobs.max_running,
                "storage_error": jobs.storage_error}

    @router.get("/api/model")
    def model_info(request: Request) -> dict:
        """What the loaded model offers (input, readout layers, latents, ELBO, methods, whether the unit analysis
        and the characterisation apply), where it came from, and its card when it has one."""
        model = jobs_of(request).model
        return {"path": model.source.get("spec"), "source": model.source, **offers(model), "card": card_of(request) or {}}

    @router.get("/api/units")
    def units(request: Request, layer: LayerName = None) -> list[dict]:
        """A record per unit of the layer: its census on data where the model has one (status, activation mean /
        std / 99.9th percentile, label, ...), else its index and label."""
        model = jobs_of(request).model
        name = checked_layer(model, layer)
        census = model.census(name)
        if census is not None:
            return census
        labels = model.layers[name].labels
        return [{"unit": i, "status": "unknown", **({"label": labels[i]} if labels else {})}
                for i in range(model.layers[name].units)]

    @router.get("/api/units/{unit}/natural")
    async def natural(request: Request, unit: Annotated[int, PathParam(ge=0)], layer: LayerName = None) -> dict:
        """The inputs of the model's data that drive the unit most (for the TDVAE: held-out patches), largest
        first, with their activations; the first request per layer encodes the data (seconds), then cached."""
        model = jobs_of(request).model
        name = checked_layer(model, layer, unit)
        top = await asyncio.to_thread(model.natural_top, name)
        if top is None:
            raise HTTPException(404, f"{model.name} has no data to take natural inputs from (a census)")
        return {"unit": unit, "layer": name, "activation": top["activation"][unit].tolist(),
                "images": pack(top["images"][unit])}

    @router.get("/api/limits")
    def server_limits() -> ServerLimits:
        """What this server accepts per run and per client (beyond the config's own bounds)."""
        return limits

    @router.get("/api/presets")
    def presets() -> dict[str, dict]:
        return PRESETS

    @router.get("/api/config/schema")
    def config_schema() -> dict:
        return {"schema": AMConfig.model_json_schema(), "defaults": AMConfig().model_dump(mode="json")}

    return router
