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


class _Draws:
    """A NoiseSource (model/seam.py) of `rows` rows from one seeded generator."""

    def __init__(self, rows: int, seed: int, device: torch.device) -> None:
        self.rows, self.device = rows, device
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(self.rows, *shape, generator=self.generator).to(self.device)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return (low + (high - low) * torch.rand(self.rows, *shape, generator=self.generator)).to(self.device)


def one_hot_applies(model, layer: str) -> bool:
    """Whether a unit of `layer` is also a coordinate of a latent code the model decodes (the TDVAE's z2 and z1)."""
    latent = model.latents.get(layer)
    return latent is not None and layer in model.layers and latent.size == model.layers[layer].units


@torch.no_grad()
def latent_one_hot(model, layer: str, unit: int, scale: float = 5.0, samples: int = 4, seed: int = 0) -> dict:
    """One-hot synthesis through the seam: the code c e_unit of the latent named like the layer, decoded
    (`latent_decode`; the TDVAE's z2 through the prior mean of z1) and, where the decoding samples, decoded with
    noise. {"mean", "baseline" (the code 0), "pattern" (mean - baseline), "samples" (or None: a deterministic
    decoding)}, images (H, W) for one channel else (C, H, W)."""
    size = model.latents[layer].size
    code = torch.zeros(2, size, device=model.device)
    code[0, unit] = scale
    images = model.latent_decode(layer, code).cpu().numpy()
    drawn = model.latent_decode(layer, code[:1].expand(samples, -1),
                                noise=_Draws(samples, seed, model.device)).cpu().numpy()
    squeeze = (lambda a: a[:, 0]) if images.shape[1] == 1 else (lambda a: a)
    images, drawn = squeeze(images), squeeze(drawn)
    deterministic = np.allclose(drawn, images[:1], atol=1e-6)
    return {"mean": images[0], "baseline": images[1], "pattern": images[0] - images[1],
            "samples": None if deterministic else drawn}
