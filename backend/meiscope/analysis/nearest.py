"""Nearest data patches to a generated input, in pixel space (correlation) and in activation space (euclidean
distance between z2 posterior means)."""

from __future__ import annotations

import numpy as np
import torch

from ..model.tdvae import TDVAE, in_chunks


@torch.no_grad()
def z2_means(model: TDVAE, patches: np.ndarray, chunk: int = 2048) -> np.ndarray:
    return in_chunks(lambda x: model.z2_posterior(x)[0], patches, chunk).numpy()


def nearest_patches(model: TDVAE, image: np.ndarray, patches: np.ndarray, k: int = 5,
                    patch_means: np.ndarray | None = None) -> dict[str, dict]:
    """{"pixel": {"index", "score", "images"}, "activation": {...}}: the k patches most correlated with the
    image, and the k whose z2 means lie nearest to the image's. patch_means: z2_means of patches, if known."""
    flat = np.asarray(patches, dtype=np.float64).reshape(len(patches), -1)
    target = np.asarray(image, dtype=np.float64).ravel()
    fc = flat - flat.mean(1, keepdims=True)
    tc = target - target.mean()
    corr = fc @ tc / (np.linalg.norm(fc, axis=1) * np.linalg.norm(tc) + 1e-12)
    pixel = np.argsort(-corr)[:k]
    means = z2_means(model, patches) if patch_means is None else patch_means
    mine = z2_means(model, np.asarray(image, dtype=np.float32)[None])[0]
    dist = np.linalg.norm(means - mine, axis=1)
    act = np.argsort(dist)[:k]
    return {
        "pixel": {"index": pixel.tolist(), "score": corr[pixel].tolist(), "images": np.asarray(patches)[pixel]},
        "activation": {"index": act.tolist(), "score": dist[act].tolist(), "images": np.asarray(patches)[act]},
    }
