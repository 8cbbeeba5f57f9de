"""The unit analysis of a TDVAE's z2 unit (every view of it and how well they agree): computed once per unit in
a worker thread, one at a time, and cached; simultaneous requests for one unit share one computation."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam

from ...analysis.report import analysis_applies, analyze_unit, report_panels, split_arrays
from ...data import build_split
from ...model.seam import Explorable
from ..encode import pack
from ..limits import ServerLimits
from ..state import card_of, jobs_of

HELD_OUT_PATCHES = 2048  # searched for the unit's nearest natural patches


class UnitAnalyses:
    """The payloads of analysed units, newest last, at most `size` of them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.futures: OrderedDict[int, asyncio.Future] = OrderedDict()
        self.slot = asyncio.Semaphore(1)  # one analysis at a time: each keeps the cores busy for seconds
        self.held_out: list = []  # the held-out patches, loaded by the first analysis

    def payload(self, model: Explorable, unit: int, scale: float | None) -> dict:
        if not self.held_out:
            self.held_out.append(build_split("heldout", HELD_OUT_PATCHES, scale=scale)[0])
        report = analyze_unit(model, unit, patches=self.held_out[0])
        numbers, arrays = split_arrays(report)
        panels = [{"title": title, "image": pack(img)} for title, img in report_panels(report)]
        return {"numbers": numbers, "panels": panels, "arrays": {k: pack(v) for k, v in arrays.items()}}

    async def compute(self, model: Explorable, unit: int, scale: float | None) -> dict:
        async with self.slot:
            return await asyncio.to_thread(self.payload, model, unit, scale)

    async def get(self, model: Explorable, unit: int, scale: float | None) -> dict:
        if unit not in self.futures:
            self.futures[unit] = asyncio.ensure_future(self.compute(model, unit, scale))
            while len(self.futures) > self.size:
                self.futures.popitem(last=False)
        self.futures.move_to_end(unit)
        future = self.futures[unit]
        try:
            return await asyncio.shield(future)
        except Exception:
            self.futures.pop(unit, None)  # a failure is not cached
            raise


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
        return await analyses.get(model, unit, scale)

    return router
