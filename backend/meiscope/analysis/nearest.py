"""Nearest data inputs to a generated input, in pixel space (correlation) and in the activation space of a layer
(euclidean distance between the layer's readouts: for the TDVAE's z2, its posterior means)."""

from __future__ import annotations

import numpy as np
import torch

from ..model.tdvae import TDVAE, in_chunks


@torch.no_grad()
def z2_means(model: TDVAE, patches: np.ndarray, chunk: int = 2048) -> np.ndarray:
    return in_chunks(lambda x: model.z2_posterior(x)[0], patches, chunk).numpy()


@torch.no_grad()
def layer_means(model, layer: str, inputs: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The layer's readouts ("mean") of inputs of the model's shape (or flat), (N, units)."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).reshape(len(inputs), *model.input.shape)
    parts = [model.readouts(x[i:i + chunk].to(model.device), {(layer, "mean")})[(layer, "mean")].cpu()
             for i in range(0, len(x), chunk)]
    return torch.cat(parts).flatten(1).double().numpy()


def nearest_patches(model, image: np.ndarray, patches: np.ndarray, k: int = 5,
                    patch_means: np.ndarray | None = None, layer: str = "z2") -> dict[str, dict]:
    """{"pixel": {"index", "score", "images"}, "activation": {...}}: the k inputs most correlated with the image
    (score: r), and the k whose readouts of `layer` lie nearest to the image's (score: euclidean distance).
    patch_means: the layer's readouts of patches, if known."""
    patches = np.asarray(patches)
    flat = np.asarray(patches, dtype=np.float64).reshape(len(patches), -1)
    target = np.asarray(image, dtype=np.float64).ravel()
    fc = flat - flat.mean(1, keepdims=True)
    tc = target - target.mean()
    corr = fc @ tc / (np.linalg.norm(fc, axis=1) * np.linalg.norm(tc) + 1e-12)
    pixel = np.argsort(-corr)[:k]
    means = layer_means(model, layer, patches) if patch_means is None else patch_means
    mine = layer_means(model, layer, np.asarray(image, dtype=np.float32)[None])[0]
    dist = np.linalg.norm(means - mine, axis=1)
    act = np.argsort(dist)[:k]
    return {
        "pixel": {"index": pixel.tolist(), "score": corr[pixel].tolist(), "images": patches[pixel]},
        "activation": {"index": act.tolist(), "score": dist[act].tolist(), "images": patches[act], "layer": layer},
    }
