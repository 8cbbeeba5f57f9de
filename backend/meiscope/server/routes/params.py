"""Path and query parameters that several routers take, checked by FastAPI (a 422 naming the parameter) and
stated in the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException
from fastapi import Path as PathParam
from fastapi import Query

from ..limits import RUN_ID

RunId = Annotated[str, PathParam(pattern=RUN_ID, description="a run id: 12 hex digits")]
ExportIds = Annotated[str, Query(max_length=4096, description="run ids (12 hex digits each) separated by commas")]
StoredIds = Annotated[str, Query(max_length=4096, description="runs of stored sweeps, each {sweep}/{run id}, "
                                                             "separated by commas")]
LayerName = Annotated[str | None, Query(max_length=200, description="a readout layer (default: the model's first)")]


def checked_layer(model, layer: str | None, unit: int | None = None) -> str:
    """The layer asked for (default: the model's first), and the unit in it when given: a 422 naming the parameter."""
    layer = layer or model.default_layer
    if layer not in model.layers:
        raise HTTPException(422, [{"loc": ["query", "layer"], "type": "enum",
                                   "msg": f"{model.name} has no layer {layer!r} (it has {', '.join(model.layers)})"}])
    if unit is not None and unit >= model.layers[layer].units:
        raise HTTPException(422, [{"loc": ["path", "unit"], "type": "less_than_equal",
                                   "msg": f"Input should be less than or equal to {model.layers[layer].units - 1}"}])
    return layer
