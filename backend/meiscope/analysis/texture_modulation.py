"""Texture modulation of z2 units against spectrally matched noise: the index of Freeman et al. (2013),
(tex - noise) / (tex + noise) per unit and family, with a bootstrap over patches.

A unit's response is non-negative by construction: its posterior-mean activation can be either sign, so the
response to a patch is |activation - the unit's activation on a blank (all-zero) patch|, averaged over the
patches of a family. An index above 0 means the texture drives the unit away from its resting value more than
noise with the same amplitude spectrum does, i.e. the unit sees the texture's higher-order structure."""

from __future__ import annotations

import numpy as np
import torch

from ..data.texture_controls import texture_and_noise_patches
from ..model.tdvae import TDVAE, as_batch

N_PATCHES = 300  # per family
N_BOOT = 1000
CI = 95.0


def modulation_index(tex: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(tex - noise) / (tex + noise) elementwise; 0 where both are 0."""
    total = tex + noise
    return np.where(total > 0, (tex - noise) / np.where(total > 0, total, 1.0), 0.0)


@torch.no_grad()
def unit_responses(model: TDVAE, patches: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(N, U) |z2 posterior mean - its value on a blank patch| of the chosen units, in one batched forward."""
    x = as_batch(np.concatenate([np.asarray(patches, np.float32).reshape(len(patches), -1),
                                 np.zeros((1, model.x_dim), np.float32)]))
    mu = model.z2_posterior(x)[0].double().numpy()[:, units]
    return np.abs(mu[:-1] - mu[-1])


def modulation_from_responses(tex: np.ndarray, noise: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """tex, noise: (F, n, U) responses to texture patches and to their noise twins (same positions). The index
    per family and unit, its mean over families, and a percentile bootstrap CI of that mean: patches resampled
    with replacement within each family, a texture patch together with its noise twin."""
    n_fam, n = tex.shape[:2]
    index = modulation_index(tex.mean(1), noise.mean(1))  # (F, U)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=(n_boot, n_fam)).astype(np.float64)  # (B, F, n)
    boot = modulation_index(np.einsum("bfn,fnu->bfu", counts, tex) / n,
                            np.einsum("bfn,fnu->bfu", counts, noise) / n).mean(1)  # (B, U)
    low, high = np.percentile(boot, [(100 - CI) / 2, (100 + CI) / 2], axis=0)
    return {"index": index, "mean_index": index.mean(0), "ci_low": low, "ci_high": high, "sensitive": low > 0,
            "tex_response": tex.mean(1), "noise_response": noise.mean(1)}


def texture_modulation(model: TDVAE, units: list[int] | np.ndarray | None = None, scale: float = 1.0,
                       n_patches: int = N_PATCHES, n_boot: int = N_BOOT, seed: int = 0,
                       families: list[str] | None = None) -> dict:
    """Per unit (default: every z2 unit): the modulation index per family ("index", families x units), its mean
    over families and the bootstrap CI, and "sensitive" where the CI's lower end lies above 0. `scale` is the
    natural data's (the card's data.scale). Patches are held-out photographs (data/texture_controls.py)."""
    units = np.arange(model.z2_dim) if units is None else np.asarray(units, dtype=int)
    data = texture_and_noise_patches(scale, n_patches, seed, families=families, patch=model.patch)
    n_fam = len(data["families"])
    both = np.concatenate([data["texture"], data["noise"]]).reshape(-1, model.patch, model.patch)
    r = unit_responses(model, both, units).reshape(2, n_fam, n_patches, len(units))
    result = modulation_from_responses(r[0], r[1], n_boot, seed)
    return {"units": units, "families": data["families"], "n_patches": n_patches, "n_boot": n_boot, "seed": seed,
            **result}
