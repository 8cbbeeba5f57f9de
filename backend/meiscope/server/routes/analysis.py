"""Unit analyses: every view of a unit of any layer of an image model and how well they agree, and the
characterisation of a unit (tuning, F1/F0, odd share, contrast response), each with its figure and a zip of its
files. Each is computed once per (layer, unit) in a worker thread, one at a time, and cached; simultaneous requests
for one unit share one computation."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Callable, Hashable

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from ...analysis.characterise import characterisation_applies, characterise
from ...analysis.report import analysis_applies, analyze_unit, split_arrays
from ...model.seam import Explorable
from ...presentation.characterisation import figure_png, readings, summary_line, write_characterisation
from ...presentation.characterisation import split_arrays as split_record
from ...presentation.export import zip_written
from ...presentation.readings import image_panels
from ...presentation.readings import readings as analysis_readings
from ...presentation.report import write_analysis
from ..download import zip_download
from ..encode import pack
from ..limits import ServerLimits
from ..state import jobs_of
from .params import LayerName, checked_layer



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
    """The reports of analysed units, keyed by (layer, unit), and the stage each running one has reached."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.stages: dict[tuple[str, int], str] = {}

    def report(self, model: Explorable, layer: str, unit: int) -> dict:
        key = (layer, unit)

        def say(stage: str) -> None:
            self.stages[key] = stage

        try:
            say("starting")
            return analyze_unit(model, unit, layer=layer, progress=say)
        finally:
            self.stages.pop(key, None)


def analysis_payload(report: dict) -> dict:
    """What the page shows: the numbers, the readings, and each panel's image with its values and reading."""
    numbers, _ = split_arrays(report)
    panels = [{**{k: p[k] for k in ("key", "title", "values", "reading", "centred", "axes")}, "image": pack(p["image"])}
              for p in image_panels(report)]
    return {"numbers": numbers, "readings": analysis_readings(report), "panels": panels}


async def folder_zip(write: Callable[[Path], list[str]], name: str) -> FileResponse:
    """The files `write(folder)` writes, as the download {name}.zip (built off the event loop)."""
    return await zip_download(lambda path: zip_written(write, path, name), f"{name}.zip")


def characterisation_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["analysis"])
    records = Computed(limits.analysis_cache)

    async def record_of(request: Request, unit: int, layer: str | None) -> dict:
        model = jobs_of(request).model
        if not characterisation_applies(model):
            raise HTTPException(422, f"the characterisation draws gratings for one- or three-channel images; "
                                     f"{model.name} takes {model.input.channels} channels")
        layer = checked_layer(model, layer, unit)
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
        return await folder_zip(lambda folder: write_characterisation(record, folder), name)

    return router


def analysis_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter(tags=["analysis"])
    analyses = UnitAnalyses(limits.analysis_cache)

    async def report_of(request: Request, unit: int, layer: str | None) -> dict:
        model = jobs_of(request).model
        if not analysis_applies(model):
            raise HTTPException(422, f"the unit analysis draws one- or three-channel images of at least 4 x 4 pixels; "
                                     f"{model.name} takes {'x'.join(map(str, model.input.shape))}")
        layer = checked_layer(model, layer, unit)
        if analyses.stages.get((layer, unit)) is None and (layer, unit) not in analyses.futures:
            analyses.stages[(layer, unit)] = "waiting for the analysis before it"
        return await analyses.get((layer, unit), lambda: analyses.report(model, layer, unit))

    @router.get("/api/units/{unit}/analysis")
    async def unit_analysis(unit: Annotated[int, PathParam(ge=0)], request: Request, layer: LayerName = None) -> dict:
        """Every view of a unit of any layer (default: the model's first) of an image model: preferred inputs over 3
        seeds, STA and gradient map, odd share, occlusion / shift / jitter probes, spectra, nearest and top natural
        data inputs where the model has data, best Gabor and Gabor fit for one-channel inputs, one-hot synthesis
        where the layer is a latent the model decodes (the TDVAE), and how well they agree, each with a one-line
        reading. Computed once per (layer, unit) (about 10 s for a z2 unit on a free machine, longer for z1), then cached; simultaneous requests share one."""
        return analysis_payload(await report_of(request, unit, layer))

    @router.get("/api/units/{unit}/analysis/progress")
    async def analysis_progress(unit: Annotated[int, PathParam(ge=0)], request: Request,
                                layer: LayerName = None) -> dict:
        """The stage a running analysis of the unit has reached ("done" when cached, null when never asked)."""
        model = jobs_of(request).model
        layer = checked_layer(model, layer, unit)
        stage = analyses.stages.get((layer, unit))
        future = analyses.futures.get((layer, unit))
        return {"layer": layer, "unit": unit,
                "stage": stage if stage is not None else ("done" if future is not None and future.done() else None)}

    @router.get("/api/units/{unit}/analysis.zip")
    async def analysis_zip(unit: Annotated[int, PathParam(ge=0)], request: Request,
                           layer: LayerName = None) -> FileResponse:
        """analysis.json (numbers and readings), arrays.npz and analysis.png (300 dpi, a colour bar per panel)."""
        report = await report_of(request, unit, layer)
        name = f"analysis-{report['layer']}-{unit}"
        return await folder_zip(lambda folder: write_analysis(report, folder), name)

    return router
