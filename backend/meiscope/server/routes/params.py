"""Path and query parameters that several routers take, checked by FastAPI (a 422 naming the parameter) and
stated in the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query

from ..limits import RUN_ID

RunId = Annotated[str, PathParam(pattern=RUN_ID, description="a run id: 12 hex digits")]
ExportIds = Annotated[str, Query(max_length=4096, description="run ids (12 hex digits each) separated by commas")]
StoredIds = Annotated[str, Query(max_length=4096, description="runs of stored sweeps, each {sweep}/{run id}, "
                                                             "separated by commas")]
