"""Probes of a generated input: occlusion map, activation under shifts and under random
jitter."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..engine.regularisers import jitter
from ..model.tdvae import PATCH


def _activation(response: Callable[[Tensor], Tensor], images: Tensor, chunk: int = 1024) -> np.ndarray:
    return np.concatenate([response(images[i : i + chunk].reshape(-1, PATCH * PATCH))[:, 0].cpu().numpy()
                           for i in range(0, len(images), chunk)])


@torch.no_grad()
def occlusion_map(response: Callable[[Tensor], Tensor], image: np.ndarray, patch: int = 8, stride: int = 2,
                  fill: float = 0.0) -> np.ndarray:
    """Drop in activation when a patch x patch square around each pixel is set to `fill`, (40, 40): large
    where the unit looks. Squares are centred on a stride grid and the map is filled by nearest centre."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))
    centres = list(range(0, PATCH, stride))
    occluded = x.repeat(len(centres) ** 2, 1, 1)
    half = patch // 2
    for k, (cy, cx) in enumerate((cy, cx) for cy in centres for cx in centres):
        occluded[k, max(0, cy - half) : cy - half + patch, max(0, cx - half) : cx - half + patch] = fill
    base = _activation(response, x[None])[0]
    drop = (base - _activation(response, occluded)).reshape(len(centres), len(centres))
    return np.repeat(np.repeat(drop, stride, axis=0), stride, axis=1)[:PATCH, :PATCH]


@torch.no_grad()
def shift_map(response: Callable[[Tensor], Tensor], image: np.ndarray, radius: int = 5) -> np.ndarray:
    """Activation for every circular shift (dy, dx) in [-radius, radius]^2, shape (2r+1, 2r+1)."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32)).view(1, 1, PATCH, PATCH)
    offsets = range(-radius, radius + 1)
    shifts = torch.tensor([(dy, dx) for dy in offsets for dx in offsets])
    shifted = jitter(x.expand(len(shifts), 1, PATCH, PATCH), shifts)
    return _activation(response, shifted).reshape(len(offsets), len(offsets))


@torch.no_grad()
def jitter_stats(response: Callable[[Tensor], Tensor], image: np.ndarray, max_shift: int = 2, n: int = 64,
                 seed: int = 0) -> dict[str, float]:
    """Activation under random circular jitter of up to max_shift px: mean, std and min over n draws, and
    the unjittered activation."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32)).view(1, 1, PATCH, PATCH)
    g = torch.Generator().manual_seed(seed)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
    acts = _activation(response, jitter(x.expand(n, 1, PATCH, PATCH), shifts))
    return {"unjittered": float(_activation(response, x)[0]), "mean": float(acts.mean()), "std": float(acts.std()),
            "min": float(acts.min())}
