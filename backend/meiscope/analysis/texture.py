"""Which z2 units carry the texture family: a classifier on z2 posterior means, held out by
synthesis, beside pixel, z1 and power-spectrum (8 SF x 8 orientation bins) baselines; and per unit an ANOVA F, the share of variance the family explains
(eta^2) and a one-unit decoding accuracy."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..model.tdvae import TDVAE, as_batch, in_chunks
from .spectra import binned_log_power

ALPHA = 1e-3  # family-wise, Bonferroni-corrected over the 250 units
MIN_ETA2 = 0.1  # and the family explains at least a tenth of the unit's variance


@torch.no_grad()
def _features(model: TDVAE, patches: np.ndarray, chunk: int = 2048) -> dict[str, np.ndarray]:
    z2, z1 = in_chunks(lambda x: (model.z2_posterior(x)[0], model.z1_posterior(x)[0]), patches, chunk)
    return {"pixels": as_batch(patches).numpy(), "z2": z2.numpy(), "z1": z1.numpy(),
            "power_spectrum": binned_log_power(patches.reshape(len(patches), model.patch, model.patch))}


def _accuracy(train_x, train_y, test_x, test_y) -> float:
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    classifier.fit(train_x, train_y)
    return float(classifier.score(test_x, test_y))


def texture_sensitivity(model: TDVAE, patches: np.ndarray, families: list[str], per_unit_accuracy: bool = True) -> dict:
    """patches: (families, syntheses, n, 40, 40). Decoders train on all syntheses but the last and are tested
    on the last one, so they must generalise to a texture sample they have not seen."""
    n_fam, n_synth, n = patches.shape[:3]
    if n_synth < 2:
        raise ValueError("texture sensitivity needs at least 2 syntheses per family")
    labels = np.repeat(np.arange(n_fam), n_synth * n)
    synth = np.tile(np.repeat(np.arange(n_synth), n), n_fam)
    test = synth == n_synth - 1
    feats = _features(model, patches.reshape(-1, 40, 40))
    accuracy = {name: _accuracy(f[~test], labels[~test], f[test], labels[test]) for name, f in feats.items()}
    z2 = feats["z2"]
    groups = [z2[labels == k] for k in range(n_fam)]
    f_stat, p_value = stats.f_oneway(*groups, axis=0)
    total = ((z2 - z2.mean(0)) ** 2).sum(0)
    between = sum(len(g) * (g.mean(0) - z2.mean(0)) ** 2 for g in groups)
    eta2 = np.where(total > 0, between / np.maximum(total, 1e-300), 0.0)
    f_stat = np.nan_to_num(f_stat, nan=0.0)
    p_value = np.nan_to_num(p_value, nan=1.0)
    unit_acc = np.full(z2.shape[1], np.nan)
    if per_unit_accuracy:
        for u in range(z2.shape[1]):
            unit_acc[u] = _accuracy(z2[~test, u : u + 1], labels[~test], z2[test, u : u + 1], labels[test])
    sensitive = (p_value < ALPHA / z2.shape[1]) & (eta2 >= MIN_ETA2)
    return {"families": families, "chance": 1.0 / n_fam, "accuracy": accuracy, "f": f_stat, "p": p_value,
            "eta2": eta2, "unit_accuracy": unit_acc, "sensitive": sensitive, "n_test": int(test.sum())}


def census_fields(result: dict, unit: int) -> dict:
    """What the model card's census records of a unit's texture sensitivity."""
    return {"texture_f": round(float(result["f"][unit]), 3), "texture_eta2": round(float(result["eta2"][unit]), 4),
            "texture_accuracy": None if np.isnan(result["unit_accuracy"][unit]) else round(float(result["unit_accuracy"][unit]), 4),
            "texture_sensitive": bool(result["sensitive"][unit])}
