"""Probes of a generated input: occlusion map, activation under shifts and under random jitter. Images are
(H, W) for one channel or (C, H, W); `response` takes a batch (B, C, H, W) and returns (B, 1)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..engine.regularisers import jitter


def as_chw(image: np.ndarray) -> Tensor:
    """An image as a (C, H, W) float tensor: a 2-D image is one channel."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))
    return x[None] if x.ndim == 2 else x


def _activation(response: Callable[[Tensor], Tensor], images: Tensor, chunk: int = 1024) -> np.ndarray:
    return np.concatenate([response(images[i : i + chunk])[:, 0].detach().cpu().numpy()
                           for i in range(0, len(images), chunk)])


def occlusion_size(height: int, width: int) -> tuple[int, int]:
    """(square side, grid stride) in pixels for an input: 8 and 2 on 40 x 40, a fifth of the side in general."""
    side = max(2, min(height, width) // 5)
    return side, max(1, side // 4)


def shift_radius(height: int, width: int) -> int:
    """The shift map's largest offset: 5 px on 40 x 40, a quarter of the side on small inputs (2 px on 8 x 8)."""
    return int(min(5, max(1, min(height, width) // 4)))


@torch.no_grad()
def occlusion_map(response: Callable[[Tensor], Tensor], image: np.ndarray, patch: int | None = None,
                  stride: int | None = None, fill: float = 0.0) -> np.ndarray:
    """Drop in activation (activation of the image minus that of the occluded image) when a patch x patch square
    (all channels) around each pixel is set to `fill`, (H, W): large where the unit looks. Squares are centred on
    a stride grid and the map is filled by nearest centre. Default size: occlusion_size."""
    x = as_chw(image)
    c, h, w = x.shape
    default_patch, default_stride = occlusion_size(h, w)
    patch, stride = patch or default_patch, stride or default_stride
    rows, cols = list(range(0, h, stride)), list(range(0, w, stride))
    occluded = x.repeat(len(rows) * len(cols), 1, 1, 1)
    half = patch // 2
    for k, (cy, cx) in enumerate((cy, cx) for cy in rows for cx in cols):
        occluded[k, :, max(0, cy - half) : cy - half + patch, max(0, cx - half) : cx - half + patch] = fill
    base = _activation(response, x[None])[0]
    drop = (base - _activation(response, occluded)).reshape(len(rows), len(cols))
    return np.repeat(np.repeat(drop, stride, axis=0), stride, axis=1)[:h, :w]


@torch.no_grad()
def shift_map(response: Callable[[Tensor], Tensor], image: np.ndarray, radius: int | None = None) -> np.ndarray:
    """Activation for every circular shift (dy, dx) in [-radius, radius]^2, shape (2r+1, 2r+1), row dy, column dx;
    the centre is the unshifted image. Default radius: shift_radius."""
    x = as_chw(image)[None]
    radius = shift_radius(*x.shape[-2:]) if radius is None else radius
    offsets = range(-radius, radius + 1)
    shifts = torch.tensor([(dy, dx) for dy in offsets for dx in offsets])
    shifted = jitter(x.expand(len(shifts), *x.shape[1:]), shifts)
    return _activation(response, shifted).reshape(len(offsets), len(offsets))


@torch.no_grad()
def jitter_stats(response: Callable[[Tensor], Tensor], image: np.ndarray, max_shift: int = 2, n: int = 64,
                 seed: int = 0) -> dict[str, float]:
    """Activation under random circular jitter of up to max_shift px: mean, std and min over n draws, and
    the unjittered activation."""
    x = as_chw(image)[None]
    g = torch.Generator().manual_seed(seed)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
    acts = _activation(response, jitter(x.expand(n, *x.shape[1:]), shifts))
    return {"unjittered": float(_activation(response, x)[0]), "mean": float(acts.mean()), "std": float(acts.std()),
            "min": float(acts.min()), "max_shift_px": max_shift, "draws": n}
