"""Reduced-precision readouts: a bfloat16 copy of the model, made once per model and kept while the model
lives, reads the units; the input, the optimiser's state, the ELBO (a sum over 1600 pixels and thousands of
units) and everything the page shows stay float32. Where it pays, and how far results move, is measured in
docs/BENCHMARKS.md."""

from __future__ import annotations

import copy
import threading
import weakref

import torch
from torch import Tensor

from ..model.seam import Explorable, Readouts

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_copies: "weakref.WeakKeyDictionary[Explorable, Explorable]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()  # the server's worker threads may ask for the same copy at once


def low_precision_copy(model: Explorable, dtype: torch.dtype = torch.bfloat16) -> Explorable:
    """The model with its weights cast to `dtype` once (a copy; the model itself is not changed)."""
    with _lock:
        cached = _copies.get(model)
        if cached is None or next(cached.parameters()).dtype != dtype:
            cached = copy.deepcopy(model).to(dtype).eval()
            for p in cached.parameters():
                p.requires_grad_(False)
            _copies[model] = cached
        return cached


class Reader:
    """model.readouts in the config's precision, always handing float32 readouts to the objective."""

    def __init__(self, model: Explorable, precision: str) -> None:
        self.dtype = DTYPES[precision]
        self.model = model if self.dtype == torch.float32 else low_precision_copy(model, self.dtype)

    @property
    def full(self) -> bool:
        return self.dtype == torch.float32

    def __call__(self, x: Tensor, needed: set[tuple[str, str]]) -> Readouts:
        if self.full:
            return self.model.readouts(x, needed)
        low = self.model.readouts(x.to(self.dtype), needed)
        out = Readouts({key: value.float() for key, value in low.items()})
        out.shared = None  # what the copy computed is in its precision: the ELBO computes its own
        return out
