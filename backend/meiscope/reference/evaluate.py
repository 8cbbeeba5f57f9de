"""The model card's numbers, all measured on held-out patches: ELBO and its terms, the Gaussian
baselines, the unit census, projective-field Gabor fits and reconstruction quality."""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.baselines import gaussian_baselines
from ..analysis.census import ACTIVE_KL, COLLAPSE_KL, unit_census, z2_statistics
from ..analysis.gabor import fit_gabor
from ..data.patches import content_hash
from ..model.tdvae import OBS_STD, TDVAE, as_batch

REFERENCE_BATCH = 2048  # the first patches of the held-out split: the test re-derives the ELBO on them
ELBO_SEED = 0
N_FIELDS = 200  # largest-norm columns of W fitted by a Gabor
GABOR_R2 = 0.7
COV_PATCHES = 200_000


@torch.no_grad()
def elbo_terms_mean(model: TDVAE, patches: np.ndarray | torch.Tensor, seed: int = ELBO_SEED,
                    batch: int = 1024) -> dict[str, float]:
    """Mean ELBO, log-likelihood and KLs (nats per patch) with a fixed sampling seed, and how many z2
    units carry a mean KL above 0.1 nats (sampled z2, so a shade above the census' posterior-mean count)."""
    x = as_batch(patches)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    sums = {"elbo": 0.0, "log_lik": 0.0, "kl_z1": 0.0, "kl_z2": 0.0}
    unit_kl = 0.0
    for i in range(0, len(x), batch):
        t = model.elbo_terms(x[i : i + batch], generator=gen)
        sums["elbo"] += t.elbo().double().sum().item()
        sums["log_lik"] += t.log_lik.double().sum().item()
        sums["kl_z1"] += t.kl_z1.double().sum().item()
        sums["kl_z2"] += t.kl_z2.double().sum().item()
        unit_kl = unit_kl + t.kl_z2_units.double().sum(0)
    return {**{k: v / len(x) for k, v in sums.items()}, "n_z2_above_0.1": int((unit_kl / len(x) > 0.1).sum())}


@torch.no_grad()
def elbo_percentiles(model: TDVAE, patches: np.ndarray | torch.Tensor, seed: int = ELBO_SEED,
                     batch: int = 1024) -> list[float]:
    """The 0th, 1st, ..., 100th percentile of the patches' ELBOs (nats, one sample each, fixed seed): where an
    input's ELBO falls among held-out inputs (the engine's in_distribution check)."""
    x = as_batch(patches)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    elbos = torch.cat([model.elbo_terms(x[i : i + batch], generator=gen).elbo() for i in range(0, len(x), batch)])
    return [round(float(v), 2) for v in np.percentile(elbos.double().cpu().numpy(), np.arange(101))]


@torch.no_grad()
def reconstruction_r2(model: TDVAE, patches: np.ndarray, batch: int = 2048) -> float:
    """Fraction of held-out pixel variance explained by the posterior-mean reconstruction."""
    x = as_batch(patches)
    sse = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        sse += (xb - model.reconstruct(xb).reshape(len(xb), -1)).double().square().sum().item()
    sst = (x.double() - x.double().mean()).square().sum().item()
    return 1.0 - sse / sst


def projective_field_fits(model: TDVAE, n: int = N_FIELDS) -> list[dict]:
    """Gabor fits of the n largest-norm columns of W, largest first."""
    return column_fits(model.W.detach().double().numpy(), n)


def column_fits(W: np.ndarray, n: int = N_FIELDS) -> list[dict]:
    """Gabor fits of the n largest-norm columns of W (pixels x columns, square patches), largest first."""
    side = int(round(np.sqrt(W.shape[0])))
    norms = np.linalg.norm(W, axis=0)
    order = np.argsort(-norms)[:n]
    fits = []
    for j in order:
        fit = fit_gabor(W[:, j].reshape(side, side))
        fits.append({"z1_unit": int(j), "norm": float(norms[j]), **fit.summary()})
    return fits


def evaluate(model: TDVAE, train: np.ndarray, heldout: np.ndarray) -> dict:
    """Every number of the model card. `heldout` is the whole held-out split in its stored order."""
    model = model.eval()
    ref = np.asarray(heldout[:REFERENCE_BATCH], dtype=np.float32)
    heldout_terms = elbo_terms_mean(model, heldout)
    baselines = gaussian_baselines(np.asarray(train[:COV_PATCHES]), np.asarray(heldout), OBS_STD**2)
    stats = z2_statistics(model, heldout)
    fields = projective_field_fits(model)
    n_gabor = sum(f["r2"] >= GABOR_R2 for f in fields)
    return {
        "heldout": {"n_patches": int(len(heldout)), "sampling_seed": ELBO_SEED, **heldout_terms},
        "reference_batch": {
            "first_n_heldout_patches": REFERENCE_BATCH,
            "sampling_seed": ELBO_SEED,
            "sha256": content_hash(ref),
            "pixel_mean": float(ref.mean(dtype=np.float64)),
            "pixel_std": float(ref.std(dtype=np.float64)),
            **elbo_terms_mean(model, ref),
            "elbo_percentiles": elbo_percentiles(model, ref),
        },
        "baselines": {**baselines,
                      "margin_over_floored_gaussian": heldout_terms["elbo"] - baselines["floored_gaussian"]},
        "units": {
            "n_kl_above_0.1": int((stats["mean_kl"] > ACTIVE_KL).sum()),
            "n_active_kl_above_0.01": int((stats["mean_kl"] >= COLLAPSE_KL).sum()),
            "census": unit_census(stats),
        },
        "projective_fields": {
            "n_fitted": len(fields),
            "r2_threshold": GABOR_R2,
            "n_gabor_like": int(n_gabor),
            "fraction_gabor_like": n_gabor / len(fields),
            "median_r2": float(np.median([f["r2"] for f in fields])),
            "fits": fields,
        },
        "reconstruction_r2": reconstruction_r2(model, heldout),
    }
