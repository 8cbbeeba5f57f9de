"""Baselines for the held-out likelihood: the TDVAE's own linear-Gaussian special case (covariance eigenvalues
floored at the observation variance), the unconstrained Gaussian, and a contrast-only Gaussian scale mixture (the
floored Gaussian times a random contrast), which captures the heavy tails that come from contrast alone."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp


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


GSM_SCALES = np.geomspace(0.02, 6.0, 40)  # the contrast grid of the scale mixture
GSM_EM_PATCHES = 5_000  # training patches the mixture weights are fitted on
GSM_EM_ITERS = 500


def scale_mixture_components(patches: np.ndarray, mean: np.ndarray, evals: np.ndarray, evecs: np.ndarray,
                             obs_var: float, scales: np.ndarray = GSM_SCALES) -> np.ndarray:
    """(N, K) log N(x; mean, V diag(c_k² s + obs_var) Vᵀ) for every patch and contrast c_k, with
    s = max(eigenvalues - obs_var, 0): the contrast-only Gaussian scale mixture x = c y + n, y ~ N(0, V diag(s) Vᵀ),
    n ~ N(0, obs_var I). Computed in the eigenbasis, so a patch costs one projection."""
    x = np.asarray(patches, dtype=np.float64).reshape(len(patches), -1) - mean
    proj2 = (x @ evecs) ** 2
    s = np.maximum(evals - obs_var, 0.0)
    var = np.asarray(scales, dtype=np.float64)[:, None] ** 2 * s[None, :] + obs_var  # (K, d)
    d = x.shape[1]
    return -0.5 * (proj2 @ (1.0 / var).T + np.log(var).sum(1)[None, :] + d * math.log(2 * math.pi))


def mixture_loglik(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-patch log p(x) = logsumexp_k [log w_k + components[:, k]] (zero weights drop out)."""
    with np.errstate(divide="ignore"):
        return logsumexp(components + np.log(weights)[None, :], axis=1)


def fit_mixture_weights(components: np.ndarray, iters: int = GSM_EM_ITERS, tol: float = 1e-7) -> np.ndarray:
    """Mixture weights by EM from uniform: each step raises the mean log-likelihood of the patches."""
    weights = np.full(components.shape[1], 1.0 / components.shape[1])
    last = -np.inf
    for _ in range(iters):
        ll = mixture_loglik(components, weights)
        weights = np.exp(components + np.log(np.maximum(weights, 1e-300))[None, :] - ll[:, None]).mean(0)
        weights /= weights.sum()
        if ll.mean() - last < tol:
            break
        last = ll.mean()
    return weights


def gaussian_baselines(train: np.ndarray, heldout: np.ndarray, obs_var: float, reference: int | None = None) -> dict:
    """Held-out log-likelihood (nats per patch) of the floored Gaussian (the linear-Gaussian TDVAE), the
    unconstrained Gaussian and the contrast-only Gaussian scale mixture, all from the covariance of `train`
    (the mixture's weights fitted on its first GSM_EM_PATCHES patches); with `reference`, also the floored
    Gaussian and the mixture on the first `reference` held-out patches."""
    mean, cov = covariance(train)
    evals, evecs = np.linalg.eigh(cov)
    weights = fit_mixture_weights(scale_mixture_components(train[:GSM_EM_PATCHES], mean, evals, evecs, obs_var))
    gsm = np.concatenate([mixture_loglik(scale_mixture_components(heldout[i : i + 8192], mean, evals, evecs, obs_var),
                                         weights) for i in range(0, len(heldout), 8192)])
    out = {
        "floored_gaussian": gaussian_loglik(heldout, mean, cov, floor=obs_var),
        "unconstrained_gaussian": gaussian_loglik(heldout, mean, cov),
        "scale_mixture": float(gsm.mean()),
        "n_eigenvalues_below_obs_var": int((evals < obs_var).sum()),
        "n_train_patches_for_covariance": int(len(train)),
        "scale_mixture_fit": {"scales": [round(float(c), 5) for c in GSM_SCALES],
                              "weights": [round(float(w), 6) for w in weights],
                              "n_em_patches": int(min(len(train), GSM_EM_PATCHES))},
    }
    if reference:
        out["reference_batch"] = {"floored_gaussian": gaussian_loglik(heldout[:reference], mean, cov, floor=obs_var),
                                  "scale_mixture": float(gsm[:reference].mean())}
    return out
