"""One-hot synthesis: z2* = c e_i, z1 the mean or samples of p(z1 | z2*), x = W z1 + b."""

from __future__ import annotations

import numpy as np
import torch

from ..model.tdvae import TDVAE, Z2_DIM


@torch.no_grad()
def one_hot_synthesis(model: TDVAE, unit: int, scale: float = 5.0, samples: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """{"mean": (40, 40) from the prior mean of z1, "samples": (samples, 40, 40) from z1 samples, and
    "baseline": (40, 40) the same from z2 = 0, to subtract when the bias dominates}."""
    if not 0 <= unit < Z2_DIM:
        raise ValueError(f"unit must lie in 0..{Z2_DIM - 1}, got {unit}")
    device = next(model.parameters()).device
    z2 = torch.zeros(2, Z2_DIM, device=device)
    z2[0, unit] = scale
    images = model.generate(z2)[:, 0].cpu().numpy()
    generator = torch.Generator(device=device).manual_seed(seed)
    drawn = model.generate(z2[:1].expand(samples, -1), sample_z1=True, generator=generator)[:, 0].cpu().numpy()
    return {"mean": images[0], "baseline": images[1], "samples": drawn}
