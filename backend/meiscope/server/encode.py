"""Frames and runs as JSON for the page: images as nested lists (Plotly heatmaps take them as they are),
rounded, and only the first MAX_ROWS rows of a large batch."""

from __future__ import annotations

import math

import numpy as np

from ..analysis.spectra import amplitude_spectrum
from ..engine.result import Frame

MAX_ROWS = 16
DIGITS = 4


def _grid(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), DIGITS).tolist()


def _finite(values: list[float]) -> list[float | None]:
    """JSON has no NaN: an unmeasured value (the ELBO between measurements) becomes null."""
    return [None if (v is None or not math.isfinite(v)) else v for v in values]


def encode_frame(frame: Frame, run_id: str) -> dict:
    rows = min(len(frame.images), MAX_ROWS)
    images = frame.images[:rows]
    message = {
        "type": "frame",
        "run_id": run_id,
        "step": frame.step,
        "steps": frame.steps,
        "metrics": {k: _finite(v) for k, v in frame.metrics.items()},
        "images": _grid(images),
        "spectra": _grid(np.log10(amplitude_spectrum(images) + 1e-6)),
    }
    arrays = {}
    for name, value in frame.arrays.items():
        value = value[:rows]
        if name == "kernels":  # (rows, channels, k, k): the first channel of each row, and its spectrum on 40x40
            arrays["kernels"] = _grid(value[:, 0])
            arrays["kernel_spectra"] = _grid(np.log10(amplitude_spectrum(value[:, 0], size=40) + 1e-6))
        elif name == "latents":
            arrays["latents"] = _grid(value)
        else:  # inputs, mean, sigma: images
            arrays[name] = _grid(value)
    message["arrays"] = arrays
    return message
