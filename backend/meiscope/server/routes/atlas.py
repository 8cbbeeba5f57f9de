"""The unit atlas of each layer: its progress, building one on request, its thumbnails (server/atlas.py)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from ..state import atlas_of, atlases_of, jobs_of
from .params import LayerName, checked_layer


def atlas_router() -> APIRouter:
    router = APIRouter(tags=["model"])

    @router.get("/api/atlas")
    def atlas(request: Request, layer: LayerName = None) -> dict:
        """Progress of a layer's unit atlas (default: the first layer's), each unit's final activation once it
        is ready; status "absent" for a layer whose atlas was not asked for (POST builds it), "off" when this
        server builds no atlas."""
        layer = checked_layer(jobs_of(request).model, layer)
        if atlases_of(request) is None:
            return {"status": "off", "layer": layer}
        built = atlas_of(request, layer)
        if built is None:
            return {"status": "absent", "layer": layer, "units": jobs_of(request).model.layers[layer].units}
        return built.summary()

    @router.post("/api/atlas", status_code=202)
    def build_atlas(request: Request, layer: LayerName = None) -> dict:
        """Build a layer's atlas (one batched run of the default configuration over all its units) unless it
        exists; 409 while another layer's is building, or when this server builds no atlas."""
        layer = checked_layer(jobs_of(request).model, layer)
        atlases = atlases_of(request)
        if atlases is None:
            raise HTTPException(409, "this server builds no atlas (started without a cache folder)")
        try:
            return atlases.build(layer).summary()
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @router.get("/api/atlas/thumbnails")
    def atlas_thumbnails(request: Request, layer: LayerName = None) -> dict[int, str]:
        built = atlas_of(request, checked_layer(jobs_of(request).model, layer))
        if built is None or built.status != "ready":
            raise HTTPException(409, "the atlas is not ready yet (see /api/atlas)")
        return built.thumbnails

    return router
