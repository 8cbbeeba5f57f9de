"""Natural anchors: the held-out inputs that drive each unit most, to show beside its preferred input (an
exaggeration of what the unit codes looks like its top natural inputs; an artefact does not).

`top_inputs(images, activations, k)` picks them from a set of real inputs; the TDVAE's come from the held-out
natural patches its census was measured on (`heldout_top`), cached on disk beside the data, since encoding 32,768
patches takes seconds.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import torch

TOP_K = 8  # natural inputs kept per unit
HELDOUT_PATCHES = 32_768  # the TDVAE's held-out split, as its census
CHUNK = 2048


def top_inputs(images: torch.Tensor | np.ndarray, activations: np.ndarray, k: int = TOP_K) -> dict[str, np.ndarray]:
    """The k inputs of `images` (N, ...) with the largest activation of each unit (activations: N x units), largest
    first: {"index": (units, k) int, "activation": (units, k), "images": (units, k, ...)}."""
    k = min(k, len(activations))
    order = np.argsort(-activations, axis=0, kind="stable")[:k].T  # (units, k)
    images = np.asarray(images, dtype=np.float32)
    return {"index": order.astype(np.int64), "activation": np.take_along_axis(activations.T, order, 1).astype(np.float32),
            "images": images[order]}


def _cache_file(key: str, layer: str, k: int) -> Path:
    from ..data.patches import default_data_root

    return default_data_root() / "natural-top" / f"{key}-{layer}-{k}.npz"


def heldout_top(model, layer: str, scale: float, key: str, k: int = TOP_K) -> dict[str, np.ndarray]:
    """The TDVAE's top-k held-out patches per unit of `layer` (posterior means), from the HELDOUT_PATCHES held-out
    patches divided by the data scale (their central crop for a model of smaller patches, as its card is
    measured); cached on disk under `key` (the weights' hash)."""
    path = _cache_file(key, layer, k)
    if path.is_file():
        with np.load(path) as cached:
            return {name: cached[name] for name in cached.files}
    from ..data.patches import build_split

    patches, _ = build_split("heldout", HELDOUT_PATCHES, scale=scale)
    height, width = model.input.height, model.input.width  # at most the patches' size (TDVAE.has_natural)
    top, left = (patches.shape[1] - height) // 2, (patches.shape[2] - width) // 2
    patches = np.ascontiguousarray(patches[:, top:top + height, left:left + width])  # a smaller model: the centre
    means = []
    with torch.no_grad():
        for start in range(0, len(patches), CHUNK):
            x = torch.as_tensor(patches[start:start + CHUNK]).unsqueeze(1).to(model.device)
            means.append(model.readouts(x, {(layer, "mean")})[(layer, "mean")].double().cpu().numpy())
    found = top_inputs(patches, np.concatenate(means), k)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz")  # one per writer
    np.savez_compressed(partial, **found)
    os.replace(partial, path)  # a reader never sees a half-written cache
    return found
