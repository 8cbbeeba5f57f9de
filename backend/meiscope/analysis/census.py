"""The unit census: for every z2 unit, how much it is used on held-out data."""

from __future__ import annotations

import numpy as np
import torch

from ..model.tdvae import TDVAE, in_chunks, kl_normal_std_normal

COLLAPSE_KL = 0.01  # nats: below this mean KL a unit is collapsed (docs/MODEL.md)
ACTIVE_KL = 0.1  # nats: the card's stricter count of clearly active units


@torch.no_grad()
def z2_statistics(model: TDVAE, patches: np.ndarray | torch.Tensor, batch: int = 2048) -> dict[str, np.ndarray]:
    """Per-unit arrays over the patches: mean KL, mean posterior std, activation (posterior mean) moments
    and 99.9th percentile. Activations are collected whole (N x 250 floats) for the percentile."""
    mu, std = in_chunks(model.z2_posterior, patches, batch)
    acts = mu.double().numpy()
    return {
        "mean_kl": kl_normal_std_normal(mu, std).double().mean(0).numpy(),
        "mean_std": std.double().mean(0).numpy(),
        "act_mean": acts.mean(0),
        "act_std": acts.std(0),
        "act_p999": np.percentile(acts, 99.9, axis=0),
    }


def unit_census(stats: dict[str, np.ndarray]) -> list[dict]:
    """One record per z2 unit, status 'active' or 'collapsed': active when its mean KL on data is at least 0.01 nats."""
    return [
        {
            "unit": i,
            "mean_kl": round(float(stats["mean_kl"][i]), 5),
            "mean_std": round(float(stats["mean_std"][i]), 5),
            "act_mean": round(float(stats["act_mean"][i]), 5),
            "act_std": round(float(stats["act_std"][i]), 5),
            "act_p999": round(float(stats["act_p999"][i]), 5),
            "status": "active" if stats["mean_kl"][i] >= COLLAPSE_KL else "collapsed",
        }
        for i in range(len(stats["mean_kl"]))
    ]
