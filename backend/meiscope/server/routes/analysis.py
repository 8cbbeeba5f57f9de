"""Unit analyses: every view of a TDVAE's z2 unit and how well they agree, and the characterisation of a unit of
any layer of any image model (tuning, F1/F0, odd share, contrast response), with its figure and a zip of its files.
Each is computed once per unit in a worker thread, one at a time, and cached; simultaneous requests for one unit
share one computation."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated, Callable, Hashable

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi import Query
from fastapi.responses import FileResponse

from ...analysis.characterise import characterisation_applies, characterise
from ...analysis.report import analysis_applies, analyze_unit, report_panels, split_arrays
from ...presentation.characterisation import figure_png, readings, summary_line, zip_characterisation
from ...presentation.characterisation import split_arrays as split_record
from ...data import build_split
from ...model.seam import Explorable
from ..download import zip_download
from ..encode import pack
from ..limits import ServerLimits
from ..state import card_of, jobs_of

HELD_OUT_PATCHES = 2048  # searched for the unit's nearest natural patches
LayerName = Annotated[str | None, Query(max_length=200, description="a readout layer (default: the model's first)")]


class Computed:
    """Results by key, newest last, at most `size` of them; computed in a worker thread, one at a time (each keeps
    the cores busy for seconds); a failure is not cached."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.futures: OrderedDict[Hashable, asyncio.Future] = OrderedDict()
        self.slot = asyncio.Semaphore(1)

    async def compute(self, work: Callable[[], object]) -> object:
        async with self.slot:
            return await asyncio.to_thread(work)

    async def get(self, key: Hashable, work: Callable[[], object]):
        if key not in self.futures:
            self.futures[key] = asyncio.ensure_future(self.compute(work))
            while len(self.futures) > self.size:
                self.futures.popitem(last=False)
        self.futures.move_to_end(key)
        future = self.futures[key]
        try:
            return await asyncio.shield(future)
        except Exception:
            self.futures.pop(key, None)
            raise


class UnitAnalyses(Computed):
    """The payloads of analysed z2 units."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.held_out: list = []  # the held-out patches, loaded by the first analysis

    def payload(self, model: Explorable, unit: int, scale: float | None) -> dict:
        if not self.held_out:
            self.held_out.append(build_split("heldout", HELD_OUT_PATCHES, scale=scale)[0])
        report = analyze_unit(model, unit, patches=self.held_out[0])
        numbers, arrays = split_arrays(report)
        panels = [{"title": title, "image": pack(img)} for title, img in report_panels(report)]
        return {"numbers": numbers, "panels": panels, "arrays": {k: pack(v) for k, v in arrays.items()}}


def layer_and_unit(model: Explorable, layer: str | None, unit: int) -> str:
    """The layer asked for (default: the model's first), checked with the unit: a 422 naming the parameter."""
    layer = layer or next(iter(model.layers))
    if layer not in model.layers:
        raise HTTPException(422, [{"loc": ["query", "layer"], "type": "enum",
                                   "msg": f"{model.name} has no layer {layer!r} (it has {', '.join(model.layers)})"}])
    if unit >= model.layers[layer].units:
        raise HTTPException(422, [{"loc": ["path", "unit"], "type": "less_than_equal",
                                   "msg": f"Input should be less than or equal to {model.layers[layer].units - 1}"}])
    return layer


def characterisation_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["analysis"])
    records = Computed(limits.analysis_cache)

    async def record_of(request: Request, unit: int, layer: str | None) -> dict:
        model = jobs_of(request).model
        if not characterisation_applies(model):
            raise HTTPException(422, f"the characterisation draws gratings for one- or three-channel images; "
                                     f"{model.name} takes {model.input.channels} channels")
        layer = layer_and_unit(model, layer, unit)
        return await records.get((layer, unit), lambda: characterise(model, layer, unit))

    @router.get("/api/units/{unit}/characterisation")
    async def unit_characterisation(unit: Annotated[int, PathParam(ge=0)], request: Request,
                                    layer: LayerName = None) -> dict:
        """A unit characterised as a physiologist would (any layer; default the model's first): grating tuning,
        F1/F0, odd share, contrast response, blank response, contrast correlation and top natural inputs on data,
        with a one-line reading of each measure. Seconds the first time, then cached."""
        record = await record_of(request, unit, layer)
        numbers, _ = split_record(record)
        return {"numbers": numbers, "summary": summary_line(record), "readings": readings(record)}

    @router.get("/api/units/{unit}/characterisation.png")
    async def characterisation_png(unit: Annotated[int, PathParam(ge=0)], request: Request,
                                   layer: LayerName = None) -> Response:
        """The characterisation's figure (tuning curves, phase and contrast response, grating, natural inputs)."""
        record = await record_of(request, unit, layer)
        return Response(await asyncio.to_thread(figure_png, record), media_type="image/png")

    @router.get("/api/units/{unit}/characterisation.zip")
    async def characterisation_zip(unit: Annotated[int, PathParam(ge=0)], request: Request,
                                   layer: LayerName = None) -> FileResponse:
        """characterisation.json, arrays.npz and characterisation.png (300 dpi) as a zip."""
        record = await record_of(request, unit, layer)
        name = f"characterisation-{record['layer']}-{unit}"
        return await zip_download(lambda path: zip_characterisation(record, path, name), f"{name}.zip")

    return router


def analysis_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["analysis"])
    analyses = UnitAnalyses(limits.analysis_cache)

    @router.get("/api/units/{unit}/analysis")
    async def unit_analysis(unit: Annotated[int, PathParam(ge=0)], request: Request) -> dict:
        """Every view of a z2 unit of the TDVAE (preferred inputs over 3 seeds, STA, one-hot synthesis, best
        Gabor, nearest held-out patches, probes, spectra, agreement); computed once per unit (about 10 s), then
        cached. Simultaneous requests for one unit share one computation."""
        model = jobs_of(request).model
        if not analysis_applies(model):
            raise HTTPException(422, f"the unit analysis needs a model with a z2 latent and one input channel "
                                     f"(a TDVAE); {model.name} has none")
        if unit >= model.layers["z2"].units:
            raise HTTPException(422, [{"loc": ["path", "unit"], "type": "less_than_equal",
                                       "msg": f"Input should be less than or equal to {model.layers['z2'].units - 1}"}])
        scale = (card_of(request) or {}).get("data", {}).get("scale")
        return await analyses.get(unit, lambda: analyses.payload(model, unit, scale))

    return router
