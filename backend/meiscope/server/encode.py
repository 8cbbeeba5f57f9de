"""Frames as JSON for the page. Image-like arrays travel as {"shape": [...], "b64": little-endian float32
bytes in base64}: a 40x40 image costs microseconds to encode this way against about a millisecond as a JSON
list of floats, time the engine would lose on this 2-core machine. Only the first MAX_ROWS rows of a large
batch are sent."""

from __future__ import annotations

import base64
import math

import numpy as np

from ..analysis.spectra import amplitude_spectrum
from ..engine.result import Frame

MAX_ROWS = 16


def pack(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def decode_array(packed: dict) -> np.ndarray:
    """The inverse of the packing above (for tests and Python clients)."""
    return np.frombuffer(base64.b64decode(packed["b64"]), dtype="<f4").reshape(packed["shape"])


def finite(values: list[float]) -> list[float | None]:
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
        "metrics": {k: finite(v) for k, v in frame.metrics.items()},
        "images": pack(images),  # (rows, H, W), or (rows, C, H, W) for several channels
        # of the channels' mean for several channels: one spectrum per row
        "spectra": pack(np.log10(amplitude_spectrum(images if images.ndim == 3 else images.mean(1)) + 1e-6)),
    }
    arrays = {}
    for name, value in frame.arrays.items():
        value = value[:rows]
        if name == "kernels":  # (rows, channels, k, k): the first channel of each row, its spectrum on the input's grid
            arrays["kernels"] = pack(value[:, 0])
            size = images.shape[-1]
            arrays["kernel_spectra"] = pack(np.log10(amplitude_spectrum(value[:, 0], size=size) + 1e-6))
        elif name == "latents":
            arrays["latents"] = pack(value)
        else:  # inputs, mean, sigma: images
            arrays[name] = pack(value)
    message["arrays"] = arrays
    return message


CURVES = ("activation", "runner_up", "elbo", "objective")


def reopen_payload(run, run_id: str) -> dict:
    """A finished run as the page reopens it: its unit and config, its last frame (as the websocket sends frames),
    its first row's metric curves, final numbers and checks."""
    steps = len(run.metrics["activation"])
    frame = Frame(step=steps, steps=run.config.steps, metrics={k: v[-1].tolist() for k, v in run.metrics.items()},
                  images=run.images, arrays=run.arrays)
    return {"run_id": run_id, "unit": run.config.unit, "config": run.config.model_dump(mode="json"),
            "frame": encode_frame(frame, run_id), "checks": run.checks[:1],
            "curves": {k: finite(run.metrics[k][:, 0].astype(np.float64).tolist()) for k in CURVES}}
