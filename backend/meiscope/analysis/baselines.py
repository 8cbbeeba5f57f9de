"""Gaussian baselines for the held-out likelihood: the TDVAE's own linear-Gaussian special case
(covariance eigenvalues floored at the observation variance) and the unconstrained Gaussian."""

from __future__ import annotations

import math

import numpy as np


def covariance(patches: np.ndarray, chunk: int = 16_384) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, ...) patches, accumulated in chunks."""
    x = np.asarray(patches).reshape(len(patches), -1)
    d = x.shape[1]
    total = np.zeros(d)
    outer = np.zeros((d, d))
    for i in range(0, len(x), chunk):
        c = np.asarray(x[i : i + chunk], dtype=np.float64)
        total += c.sum(0)
        outer += c.T @ c
    mean = total / len(x)
    return mean, outer / len(x) - np.outer(mean, mean)


def gaussian_loglik(patches: np.ndarray, mean: np.ndarray, cov: np.ndarray, floor: float | None = None) -> float:
    """Mean log-density (nats per patch) of patches under N(mean, cov), eigenvalues floored at `floor`."""
    evals, evecs = np.linalg.eigh(cov)
    if floor is not None:
        evals = np.maximum(evals, floor)
    x = np.asarray(patches, dtype=np.float64).reshape(len(patches), -1) - mean
    proj = x @ evecs
    maha = (proj**2 / evals).sum(1)
    d = x.shape[1]
    return float(np.mean(-0.5 * (maha + np.log(evals).sum() + d * math.log(2 * math.pi))))


def gaussian_baselines(train: np.ndarray, heldout: np.ndarray, obs_var: float) -> dict:
    """Held-out log-likelihood of the floored (linear-Gaussian TDVAE) and unconstrained Gaussians."""
    mean, cov = covariance(train)
    evals = np.linalg.eigvalsh(cov)
    return {
        "floored_gaussian": gaussian_loglik(heldout, mean, cov, floor=obs_var),
        "unconstrained_gaussian": gaussian_loglik(heldout, mean, cov),
        "n_eigenvalues_below_obs_var": int((evals < obs_var).sum()),
        "n_train_patches_for_covariance": int(len(train)),
    }
