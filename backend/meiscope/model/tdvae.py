"""TDVAE-40: the two-layer hierarchical VAE of early vision that meiscope explores (docs/MODEL.md).

Shapes: x is (B, 1, 40, 40) or (B, 1600); z2 has 250 units (Normal), z1 has 1800 units (Laplace,
with a learned conditional prior p(z1 | z2)). Every scale is exp(raw / 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

PATCH = 40
X_DIM = PATCH * PATCH
H_DIM = 2000
Z1_DIM = 1800
Z2_DIM = 250
OBS_STD = 0.4
# Bounds on raw log-variance outputs: exp(raw/2) then lies in [2.5e-3, 148]; keeps the KLs finite early
# in training, never reached by a trained model.
RAW_MIN, RAW_MAX = -12.0, 10.0


def mlp(dims: list[int], activate_output: bool) -> nn.Sequential:
    """Linear layers with softplus between them (and after the last one when asked)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2 or activate_output:
            layers.append(nn.Softplus())
    return nn.Sequential(*layers)


def as_batch(patches: np.ndarray | Tensor) -> Tensor:
    """(N, 1600) float32 tensor from patches given as an array or tensor (a memmap is copied once)."""
    if isinstance(patches, Tensor):
        return patches.reshape(len(patches), -1)
    return torch.from_numpy(np.array(patches, dtype=np.float32)).reshape(len(patches), -1)


@torch.no_grad()
def in_chunks(encode, patches: np.ndarray | Tensor, chunk: int = 2048):
    """encode(batch) -> a tensor or a tuple of tensors, applied to `patches` a chunk at a time (bounded
    memory) and concatenated: e.g. in_chunks(model.z2_posterior, patches) -> (means, stds) of every patch."""
    x = as_batch(patches)
    parts = [encode(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)


def scale_from_raw(raw: Tensor) -> Tensor:
    return torch.exp(raw.clamp(RAW_MIN, RAW_MAX) / 2)


def kl_normal_std_normal(mu: Tensor, std: Tensor) -> Tensor:
    """KL(N(mu, std^2) || N(0, 1)) per unit."""
    return 0.5 * (mu.square() + std.square() - 1.0) - torch.log(std)


def kl_laplace(mu_q: Tensor, b_q: Tensor, mu_p: Tensor, b_p: Tensor) -> Tensor:
    """KL(Laplace(mu_q, b_q) || Laplace(mu_p, b_p)) per unit, closed form."""
    d = (mu_q - mu_p).abs()
    return torch.log(b_p / b_q) + d / b_p + (b_q / b_p) * torch.exp(-d / b_q) - 1.0


def laplace_from_uniform(mu: Tensor, b: Tensor, u: Tensor) -> Tensor:
    """Reparameterised Laplace sample: mu - b * sign(u) * log(1 - 2|u|), for u ~ U(-1/2, 1/2)."""
    u = u.clamp(-0.5 + 1e-7, 0.5 - 1e-7)
    return mu - b * torch.sign(u) * torch.log1p(-2.0 * u.abs())


def sample_laplace(mu: Tensor, b: Tensor, generator: torch.Generator | None = None) -> Tensor:
    u = torch.rand(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) - 0.5
    return laplace_from_uniform(mu, b, u)


def sample_normal(mu: Tensor, std: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return mu + std * torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)


@dataclass
class ELBOTerms:
    """Per-sample terms of the ELBO, each of shape (B,) (kl_z2_units: (B, 250)), in nats per patch."""

    log_lik: Tensor
    kl_z1: Tensor
    kl_z2_units: Tensor  # (B, 250): each z2 unit's KL

    @property
    def kl_z2(self) -> Tensor:
        return self.kl_z2_units.sum(-1)

    def elbo(self, beta_z2: float = 1.0) -> Tensor:
        return self.log_lik - self.kl_z1 - beta_z2 * self.kl_z2


class TDVAE(nn.Module):
    """The TDVAE-40 of docs/MODEL.md: nets a-e and the linear generative weights W (+ bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_a = mlp([X_DIM, H_DIM], activate_output=True)  # x -> h
        self.enc_b = mlp([H_DIM, 1000, 500, 250, 2 * Z2_DIM], activate_output=False)  # h -> (mu2, raw2)
        self.topdown_c = mlp([Z2_DIM, 250, 500, 1000, H_DIM], activate_output=True)  # z2 -> g
        self.enc_d = mlp([2 * H_DIM, 2000, 2 * Z1_DIM], activate_output=False)  # (h, g) -> (mu1, raw1)
        self.prior_e = mlp([Z2_DIM, 2000, 2 * Z1_DIM], activate_output=False)  # z2 -> (pmu1, praw1)
        self.decoder = nn.Linear(Z1_DIM, X_DIM)  # W z1 + bias

    # ---- shapes -------------------------------------------------------------------------------
    @staticmethod
    def flatten(x: Tensor) -> Tensor:
        if x.dim() == 4 and x.shape[1:] == (1, PATCH, PATCH):
            return x.reshape(x.shape[0], X_DIM)
        if x.dim() == 3 and x.shape[1:] == (PATCH, PATCH):
            return x.reshape(x.shape[0], X_DIM)
        if x.dim() == 2 and x.shape[1] == X_DIM:
            return x
        raise ValueError(f"expected x of shape (B, 1, 40, 40), (B, 40, 40) or (B, 1600), got {tuple(x.shape)}")

    @property
    def W(self) -> Tensor:
        """Projective fields: W[:, j] is the 40x40 image that z1 unit j adds (shape 1600 x 1800)."""
        return self.decoder.weight

    # ---- inference ----------------------------------------------------------------------------
    def encode_h(self, x: Tensor) -> Tensor:
        return self.enc_a(self.flatten(x))

    def z2_posterior_from_h(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu2, raw2 = self.enc_b(h).chunk(2, dim=-1)
        return mu2, scale_from_raw(raw2)

    def z2_posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z2 | x): (mean, std), each (B, 250). mean[:, i] is "the activation of unit i"."""
        return self.z2_posterior_from_h(self.encode_h(x))

    def z1_posterior_from_h(self, h: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        g = self.topdown_c(z2)
        mu1, raw1 = self.enc_d(torch.cat([h, g], dim=-1)).chunk(2, dim=-1)
        return mu1, scale_from_raw(raw1)

    def z1_posterior(self, x: Tensor, z2: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z1 | x, z2): (mean, Laplace scale b), each (B, 1800); z2 defaults to the z2 posterior mean."""
        h = self.encode_h(x)
        if z2 is None:
            z2, _ = self.z2_posterior_from_h(h)
        return self.z1_posterior_from_h(h, z2)

    # ---- generation ---------------------------------------------------------------------------
    def z1_prior(self, z2: Tensor) -> tuple[Tensor, Tensor]:
        """p(z1 | z2): (mean, Laplace scale b), each (B, 1800)."""
        pmu1, praw1 = self.prior_e(z2).chunk(2, dim=-1)
        return pmu1, scale_from_raw(praw1)

    def sample_z1_prior(self, z2: Tensor, generator: torch.Generator | None = None) -> Tensor:
        mu, b = self.z1_prior(z2)
        return sample_laplace(mu, b, generator)

    def decode(self, z1: Tensor) -> Tensor:
        """Mean of p(x | z1) = W z1 + bias, shape (B, 1, 40, 40)."""
        return self.decoder(z1).reshape(-1, 1, PATCH, PATCH)

    def generate(self, z2: Tensor, sample_z1: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """x = W z1 + bias with z1 the mean (or a sample) of p(z1 | z2)."""
        if sample_z1:
            z1 = self.sample_z1_prior(z2, generator)
        else:
            z1, _ = self.z1_prior(z2)
        return self.decode(z1)

    # ---- readouts -----------------------------------------------------------------------------
    def readout(self, x: Tensor, layer: str = "z2", stat: str = "mean", units: Tensor | list[int] | None = None) -> Tensor:
        """Posterior mean or std (Laplace: scale b) of a layer: (B, 250) for z2, (B, 1800) for z1, or
        (B, len(units)) for chosen units. The z1 readout conditions on the z2 posterior mean."""
        if stat not in ("mean", "std"):
            raise ValueError(f"stat must be 'mean' or 'std', got {stat!r}")
        h = self.encode_h(x)
        mu2, s2 = self.z2_posterior_from_h(h)
        if layer == "z2":
            out = mu2 if stat == "mean" else s2
        elif layer == "z1":
            mu1, b1 = self.z1_posterior_from_h(h, mu2)
            out = mu1 if stat == "mean" else b1
        else:
            raise ValueError(f"layer must be 'z2' or 'z1', got {layer!r}")
        if units is None:
            return out
        idx = torch.as_tensor(units, dtype=torch.long, device=out.device)
        if idx.numel() and (idx.min() < 0 or idx.max() >= out.shape[1]):
            raise ValueError(f"units must lie in 0..{out.shape[1] - 1} for layer {layer}, got {idx.tolist()}")
        return out.index_select(1, idx)

    # ---- the ELBO -----------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor, generator: torch.Generator | None = None, *, h: Tensor | None = None,
                   noise: tuple[Tensor, Tensor] | None = None) -> ELBOTerms:
        """One reparameterised sample of z2 and of z1; both KLs analytic.

        h: the shared encoding of x when the caller has it already. noise: (standard normal (B, 250),
        uniform in [-1/2, 1/2) (B, 1800)) to use instead of drawing from `generator`."""
        xf = self.flatten(x)
        if h is None:
            h = self.enc_a(xf)
        mu2, s2 = self.z2_posterior_from_h(h)
        if noise is None:  # the same draws, in the same order, as sampling z2 and then z1
            kw = {"generator": generator, "device": mu2.device, "dtype": mu2.dtype}
            noise = (torch.randn(mu2.shape, **kw), torch.rand((len(mu2), Z1_DIM), **kw) - 0.5)
        z2 = mu2 + s2 * noise[0]
        mu1, b1 = self.z1_posterior_from_h(h, z2)
        pmu1, pb1 = self.z1_prior(z2)
        z1 = laplace_from_uniform(mu1, b1, noise[1])
        x_mean = self.decoder(z1)
        log_lik = (
            -0.5 * ((xf - x_mean) / OBS_STD).square().sum(-1) - X_DIM * (math.log(OBS_STD) + 0.5 * math.log(2 * math.pi))
        )
        return ELBOTerms(
            log_lik=log_lik,
            kl_z1=kl_laplace(mu1, b1, pmu1, pb1).sum(-1),
            kl_z2_units=kl_normal_std_normal(mu2, s2),
        )

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ELBO per sample, (B,), nats per patch; differentiable in x."""
        return self.elbo_terms(x, generator).elbo()

    def reconstruct(self, x: Tensor) -> Tensor:
        """Posterior-mean reconstruction W mu1(x, mu2(x)) + bias, shape (B, 1, 40, 40)."""
        mu1, _ = self.z1_posterior(x)
        return self.decode(mu1)
