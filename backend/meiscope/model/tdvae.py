"""TDVAE-40: the two-layer hierarchical VAE of early vision that meiscope explores (docs/MODEL.md).

Shapes (TDVAE-40, the default sizes): x is (B, 1, 40, 40) or (B, 1600); z2 has 250 units (Normal), z1 has
1800 units (Laplace, with a learned conditional prior p(z1 | z2)). Every scale is exp(raw / 2). Other sizes
(e.g. imported checkpoints, importers/tf_import.py) are constructor parameters: TDVAE(**model.sizes).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .seam import Explorable, InputSpec, LatentSpace, NoiseSource, Readouts, ReadoutLayer

NATURAL_LOCK = threading.Lock()  # not an attribute: a model is deep-copied for other precisions, a lock is not copyable

PATCH = 40
X_DIM = PATCH * PATCH
H_DIM = 2000
Z1_DIM = 1800
Z2_DIM = 250
# Hidden-layer widths of each net of TDVAE-40 (the input and output widths follow from the sizes above).
ENC_A_HIDDEN: tuple[int, ...] = ()  # x -> h
ENC_B_HIDDEN = (1000, 500, 250)  # h -> (mu2, raw2)
TOPDOWN_HIDDEN = (250, 500, 1000)  # z2 -> g
ENC_D_HIDDEN = (2000,)  # (h, g) -> (mu1, raw1)
PRIOR_HIDDEN = (2000,)  # z2 -> (pmu1, praw1)
DEFAULT_NAME = "TDVAE-40"
TDVAE_40_SIZES = {"patch": PATCH, "h_dim": H_DIM, "z1_dim": Z1_DIM, "z2_dim": Z2_DIM,
                  "enc_a_hidden": list(ENC_A_HIDDEN), "enc_b_hidden": list(ENC_B_HIDDEN),
                  "topdown_hidden": list(TOPDOWN_HIDDEN), "enc_d_hidden": list(ENC_D_HIDDEN),
                  "prior_hidden": list(PRIOR_HIDDEN)}  # TDVAE(**TDVAE_40_SIZES) == TDVAE()
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
    """(N, pixels) float32 tensor from patches given as an array or tensor (a memmap is copied once)."""
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


def default_name(sizes: dict) -> str:
    """ "TDVAE-40" for the default sizes, else the sizes that tell variants apart."""
    if sizes == TDVAE_40_SIZES:
        return DEFAULT_NAME
    return f"TDVAE (x {sizes['patch'] ** 2}, z1 {sizes['z1_dim']}, z2 {sizes['z2_dim']})"


class TDVAE(Explorable):
    """The TDVAE-40 of docs/MODEL.md: nets a-e and the linear generative weights W (+ bias)."""

    name = DEFAULT_NAME
    kind = "tdvae"
    description = "a two-layer hierarchical VAE of whitened natural-image patches (docs/MODEL.md)"
    has_elbo = True

    def __init__(self, *, patch: int = PATCH, h_dim: int = H_DIM, z1_dim: int = Z1_DIM, z2_dim: int = Z2_DIM,
                 enc_a_hidden: list[int] | tuple[int, ...] = ENC_A_HIDDEN,
                 enc_b_hidden: list[int] | tuple[int, ...] = ENC_B_HIDDEN,
                 topdown_hidden: list[int] | tuple[int, ...] = TOPDOWN_HIDDEN,
                 enc_d_hidden: list[int] | tuple[int, ...] = ENC_D_HIDDEN,
                 prior_hidden: list[int] | tuple[int, ...] = PRIOR_HIDDEN,
                 name: str | None = None) -> None:
        super().__init__()
        self.patch, self.x_dim, self.h_dim, self.z1_dim, self.z2_dim = patch, patch * patch, h_dim, z1_dim, z2_dim
        # JSON-ready; TDVAE(**sizes) rebuilds the same architecture (checkpoint manifests record it)
        self.sizes: dict = {"patch": patch, "h_dim": h_dim, "z1_dim": z1_dim, "z2_dim": z2_dim,
                            "enc_a_hidden": list(enc_a_hidden), "enc_b_hidden": list(enc_b_hidden),
                            "topdown_hidden": list(topdown_hidden), "enc_d_hidden": list(enc_d_hidden),
                            "prior_hidden": list(prior_hidden)}
        self.name = name or default_name(self.sizes)
        self.input = InputSpec(1, patch, patch, None, centred=True, description="whitened natural-image patches")
        self.layers = {
            "z2": ReadoutLayer("z2", z2_dim, ("mean", "std"), "higher latent: posterior q(z2 | x), Normal"),
            "z1": ReadoutLayer("z1", z1_dim, ("mean", "std"),
                               "lower latent: posterior q(z1 | x, z2) at the z2 posterior mean, Laplace (std: scale b)"),
        }
        self.latents = {"z2": LatentSpace("z2", z2_dim, "x = W mean(p(z1 | z2)) + bias"),
                        "z1": LatentSpace("z1", z1_dim, "x = W z1 + bias")}
        self.unit_census: dict[str, list[dict]] = {}  # layer -> records, set by load_model from the model card
        self.heldout_elbos: list[float] | None = None  # held-out ELBO percentiles, set by load_model from the card
        self.data_scale: float | None = None  # the patches' scale, set by load_model from the card (natural_top)
        self._natural: dict[str, dict] = {}
        self._data_samples: dict[int, Tensor] = {}
        x_dim = self.x_dim
        # Built in this order (a, b, c, d, e, W) so that a seeded init of TDVAE-40 never changes.
        self.enc_a = mlp([x_dim, *enc_a_hidden, h_dim], activate_output=True)  # x -> h
        self.enc_b = mlp([h_dim, *enc_b_hidden, 2 * z2_dim], activate_output=False)  # h -> (mu2, raw2)
        self.topdown_c = mlp([z2_dim, *topdown_hidden, h_dim], activate_output=True)  # z2 -> g
        self.enc_d = mlp([2 * h_dim, *enc_d_hidden, 2 * z1_dim], activate_output=False)  # (h, g) -> (mu1, raw1)
        self.prior_e = mlp([z2_dim, *prior_hidden, 2 * z1_dim], activate_output=False)  # z2 -> (pmu1, praw1)
        self.decoder = nn.Linear(z1_dim, x_dim)  # W z1 + bias

    # ---- shapes -------------------------------------------------------------------------------
    def flatten(self, x: Tensor) -> Tensor:
        p, d = self.patch, self.x_dim
        if x.dim() == 4 and x.shape[1:] == (1, p, p):
            return x.reshape(x.shape[0], d)
        if x.dim() == 3 and x.shape[1:] == (p, p):
            return x.reshape(x.shape[0], d)
        if x.dim() == 2 and x.shape[1] == d:
            return x
        raise ValueError(f"expected x of shape (B, 1, {p}, {p}), (B, {p}, {p}) or (B, {d}), got {tuple(x.shape)}")

    @property
    def W(self) -> Tensor:
        """Projective fields: W[:, j] is the patch image that z1 unit j adds (TDVAE-40: 1600 x 1800)."""
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
        return self.decoder(z1).reshape(-1, 1, self.patch, self.patch)

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
            kw = {"generator": generator, "device": mu2.device, "dtype": torch.float32}
            noise = (torch.randn(mu2.shape, **kw), torch.rand((len(mu2), self.z1_dim), **kw) - 0.5)
        z2 = mu2 + s2 * noise[0]
        mu1, b1 = self.z1_posterior_from_h(h, z2)
        pmu1, pb1 = self.z1_prior(z2)
        z1 = laplace_from_uniform(mu1, b1, noise[1])
        x_mean = self.decoder(z1)
        # the sums in float32 also under bfloat16 autocast (training with precision bfloat16): no-ops otherwise
        log_lik = (
            -0.5 * ((xf.float() - x_mean.float()) / OBS_STD).square().sum(-1)
            - self.x_dim * (math.log(OBS_STD) + 0.5 * math.log(2 * math.pi))
        )
        return ELBOTerms(
            log_lik=log_lik,
            kl_z1=kl_laplace(mu1.float(), b1.float(), pmu1.float(), pb1.float()).sum(-1),
            kl_z2_units=kl_normal_std_normal(mu2.float(), s2.float()),
        )

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """ELBO per sample, (B,), nats per patch; differentiable in x."""
        return self.elbo_terms(x, generator).elbo()

    def reconstruct(self, x: Tensor) -> Tensor:
        """Posterior-mean reconstruction W mu1(x, mu2(x)) + bias, shape (B, 1, 40, 40)."""
        mu1, _ = self.z1_posterior(x)
        return self.decode(mu1)

    # ---- the model seam (model/seam.py) ---------------------------------------------------------
    def readouts(self, x: Tensor, needed: set[tuple[str, str]]) -> Readouts:
        h = self.encode_h(x)
        mu2, s2 = self.z2_posterior_from_h(h)
        out = Readouts({("z2", "mean"): mu2, ("z2", "std"): s2})
        if any(layer == "z1" for layer, _ in needed):
            mu1, b1 = self.z1_posterior_from_h(h, mu2)
            out[("z1", "mean")], out[("z1", "std")] = mu1, b1
        out.shared = h
        return out

    def elbo_rows(self, x: Tensor, noise: NoiseSource, draws: int = 1, shared: object = None) -> Tensor:
        z2_dim, z1_dim = self.layers["z2"].units, self.layers["z1"].units
        eps = noise.normal(draws, z2_dim).reshape(-1, z2_dim)
        u = noise.uniform(draws, z1_dim, low=-0.5, high=0.5).reshape(-1, z1_dim)
        return self.elbo_terms(x, h=shared, noise=(eps, u)).elbo()

    def latent_start(self, latent: str, init: str, noise: NoiseSource, rows: int,
                     one_hot: list[tuple[str, int]], scale: float) -> Tensor:
        z2_dim, z1_dim = self.layers["z2"].units, self.layers["z1"].units
        device = self.device
        if init == "prior_sample":
            z2 = noise.normal(z2_dim)
        else:
            z2 = torch.zeros(rows, z2_dim, device=device)
        if init == "one_hot":
            for row, (unit_layer, unit) in enumerate(one_hot):
                if unit_layer == "z2":
                    z2[row, unit] = scale
        if latent == "z2":
            return z2
        pmu, pb = self.z1_prior(z2)
        code = laplace_from_uniform(pmu, pb, noise.uniform(z1_dim, low=-0.5, high=0.5)) if init == "prior_sample" else pmu
        if init == "one_hot":
            for row, (unit_layer, unit) in enumerate(one_hot):
                if unit_layer == "z1":
                    code[row] = 0.0
                    code[row, unit] = scale
        return code

    def latent_decode(self, latent: str, code: Tensor, noise: NoiseSource | None = None) -> Tensor:
        if latent == "z1":
            return self.decode(code)
        pmu, pb = self.z1_prior(code)
        if noise is not None:
            return self.decode(laplace_from_uniform(pmu, pb, noise.uniform(pmu.shape[1], low=-0.5, high=0.5)))
        return self.decode(pmu)

    def census(self, layer: str) -> list[dict] | None:
        return self.unit_census.get(layer)

    @property
    def has_natural(self) -> bool:
        from ..data.patches import PATCH  # the held-out patches' size

        return self.data_scale is not None and max(self.input.height, self.input.width) <= PATCH

    def natural_top(self, layer: str) -> dict | None:
        """Each unit's top held-out patches (model/natural.py: encoded once, then cached beside the data)."""
        if not self.has_natural or layer not in self.layers:
            return None
        with NATURAL_LOCK:  # the server's threads (anchors, characterisation) ask at once: encode once
            if layer not in self._natural:
                from .natural import heldout_top

                key = (self.source.get("sha256") or "unknown")[:16]
                self._natural[layer] = heldout_top(self, layer, self.data_scale, key)
        return self._natural[layer]

    def data_sample(self, n: int) -> Tensor | None:
        """The first n held-out patches (their centre for a smaller model), as the census and natural anchors."""
        if not self.has_natural:
            return None
        if n not in self._data_samples:  # cut and whitened once per size: each characterisation asks again
            from ..data.patches import build_split

            patches, _ = build_split("heldout", n, scale=self.data_scale)
            top, left = (patches.shape[1] - self.input.height) // 2, (patches.shape[2] - self.input.width) // 2
            crop = patches[:, top:top + self.input.height, left:left + self.input.width]
            self._data_samples[n] = torch.as_tensor(np.ascontiguousarray(crop)).unsqueeze(1)
        return self._data_samples[n]

    def elbo_reference(self) -> np.ndarray | None:
        return None if self.heldout_elbos is None else np.asarray(self.heldout_elbos, dtype=np.float64)
