"""Parameterizations: what theta is and how it makes the input x = G(theta).

Every parameter has the batch's rows (target x sample) as its first dimension, so optimizers and
regularisers act on each row on its own. `forward` gives the images the objective sees, (rows x draws,
1, 40, 40); `current` gives one image per row, the run's "current input" (the mean for distributions).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.tdvae import PATCH, TDVAE, Z1_DIM, Z2_DIM, laplace_from_uniform
from .config import AMConfig
from .randomness import RowRandom


def _initial_images(config: AMConfig, rand: RowRandom) -> Tensor:
    if config.init.kind == "zeros":
        return torch.zeros(len(rand), 1, PATCH, PATCH, device=rand.device)
    return rand.normal(1, PATCH, PATCH) * config.init.scale


def _draw(mean: Tensor, sigma: Tensor, family: str, draws: int, rand: RowRandom) -> Tensor:
    """`draws` reparameterised samples per row around `mean` (rows, 1, 40, 40) -> (rows x draws, 1, 40, 40)."""
    rows = mean.shape[0]
    mean, sigma = mean.unsqueeze(1), sigma.unsqueeze(1)
    if family == "normal":
        x = mean + sigma * rand.normal(draws, 1, PATCH, PATCH)
    else:
        x = laplace_from_uniform(mean, sigma, rand.uniform(draws, 1, PATCH, PATCH, low=-0.5, high=0.5))
    return x.reshape(rows * draws, 1, PATCH, PATCH)


class Parameterization(nn.Module):
    draws = 1

    def image_params(self) -> list[Tensor]:
        """Parameters that are images (rows, 1, 40, 40): every R_post stage acts on them."""
        return []

    def vector_params(self) -> list[Tensor]:
        """Parameters that are codes (rows, d): norm and value clipping act on them."""
        return []

    def current(self) -> Tensor:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """What the Run keeps besides the images."""
        return {}


class Pixel(Parameterization):
    def __init__(self, config: AMConfig, rand: RowRandom) -> None:
        super().__init__()
        self.x = nn.Parameter(_initial_images(config, rand))

    def forward(self, rand: RowRandom) -> Tensor:
        return self.x

    def image_params(self) -> list[Tensor]:
        return [self.x]

    def current(self) -> Tensor:
        return self.x


class Distribution(Parameterization):
    """theta = (mu, sigma) of a Normal or Laplace over images; sigma per pixel, learned or fixed."""

    def __init__(self, config: AMConfig, rand: RowRandom) -> None:
        super().__init__()
        opts = config.distribution
        self.family, self.draws = opts.family, opts.draws
        self.mu = nn.Parameter(_initial_images(config, rand))
        log_sigma = torch.full_like(self.mu, float(np.log(opts.sigma)))
        if opts.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def forward(self, rand: RowRandom) -> Tensor:
        return _draw(self.mu, self.log_sigma.exp(), self.family, self.draws, rand)

    def image_params(self) -> list[Tensor]:
        return [self.mu]

    def current(self) -> Tensor:
        return self.mu

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mu.detach().cpu().numpy()[:, 0], "sigma": self.log_sigma.detach().exp().cpu().numpy()[:, 0]}


class Transform(Parameterization):
    """theta = (input i, weights of G); x = G(i), G one k x k convolution or a small CNN (circular padding)."""

    def __init__(self, config: AMConfig, rand: RowRandom) -> None:
        super().__init__()
        opts = config.transform
        k = opts.kernel_size
        self.pad = k // 2
        self.input = nn.Parameter(_initial_images(config, rand))
        if opts.kind == "conv":
            shapes = [(1, 1)]
        else:
            c = opts.channels
            shapes = [(c, 1)] + [(c, c)] * (opts.layers - 2) + [(1, c)]
        # He-style init per row, drawn from the row's own generator
        self.kernels = nn.ParameterList(
            nn.Parameter(rand.normal(c_out, c_in, k, k) * np.sqrt(1.0 / (c_in * k * k))) for c_out, c_in in shapes)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(len(rand), c_out, device=rand.device)) for c_out, _ in shapes[:-1])

    def transformed(self) -> Tensor:
        rows = self.input.shape[0]
        y = self.input.reshape(1, rows, PATCH, PATCH)
        for i, w in enumerate(self.kernels):
            y = F.pad(y, (self.pad,) * 4, mode="circular")
            bias = self.biases[i].reshape(-1) if i < len(self.biases) else None
            y = F.conv2d(y, w.reshape(-1, *w.shape[2:]), bias, groups=rows)
            if i < len(self.kernels) - 1:
                y = F.leaky_relu(y, 0.1)
        return y.reshape(rows, 1, PATCH, PATCH)

    def forward(self, rand: RowRandom) -> Tensor:
        return self.transformed()

    def image_params(self) -> list[Tensor]:
        return [self.input]

    def current(self) -> Tensor:
        return self.transformed()

    def arrays(self) -> dict[str, np.ndarray]:
        first = self.kernels[0].detach().cpu().numpy()  # (rows, c_out, 1, k, k)
        return {"inputs": self.input.detach().cpu().numpy()[:, 0], "kernels": first[:, :, 0]}


class TransformDistribution(Transform):
    """G(i) is the mean of a Normal or Laplace with fixed sigma; each step draws a batch around it."""

    def __init__(self, config: AMConfig, rand: RowRandom) -> None:
        super().__init__(config, rand)
        self.family, self.draws, self.sigma = config.distribution.family, config.distribution.draws, config.distribution.sigma

    def forward(self, rand: RowRandom) -> Tensor:
        mean = self.transformed()
        return _draw(mean, torch.full_like(mean, self.sigma), self.family, self.draws, rand)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "sigma": np.full(len(self.input), self.sigma, dtype=np.float32)}


class Latent(Parameterization):
    """theta = a code in the model's own generator: z2 (x = W z1 + b, z1 the mean or a sample of
    p(z1 | z2)) or z1 (x = W z1 + b). The model's weights stay fixed."""

    def __init__(self, config: AMConfig, rand: RowRandom, model: TDVAE, layer: str, one_hot_units: list[tuple[str, int]]) -> None:
        super().__init__()
        self.model, self.layer = [model], layer  # a list keeps the model out of this module's parameters
        self.sample_z1 = layer == "z2" and config.latent.z1 == "sample"
        opts = config.latent
        rows = len(rand)
        with torch.no_grad():
            if opts.init == "prior_mean":
                z2 = torch.zeros(rows, Z2_DIM, device=rand.device)
            elif opts.init == "prior_sample":
                z2 = rand.normal(Z2_DIM)
            else:
                z2 = torch.zeros(rows, Z2_DIM, device=rand.device)
                for row, (unit_layer, unit) in enumerate(one_hot_units):
                    if unit_layer == "z2":
                        z2[row, unit] = opts.one_hot_scale
            if layer == "z2":
                code = z2
            else:
                pmu, pb = model.z1_prior(z2)
                code = laplace_from_uniform(pmu, pb, rand.uniform(Z1_DIM, low=-0.5, high=0.5)) \
                    if opts.init == "prior_sample" else pmu
                if opts.init == "one_hot":
                    for row, (unit_layer, unit) in enumerate(one_hot_units):
                        if unit_layer == "z1":
                            code[row] = 0.0
                            code[row, unit] = opts.one_hot_scale
        self.code = nn.Parameter(code.clone())

    def _decode(self, rand: RowRandom | None) -> Tensor:
        model = self.model[0]
        if self.layer == "z1":
            return model.decode(self.code)
        pmu, pb = model.z1_prior(self.code)
        if self.sample_z1 and rand is not None:
            return model.decode(laplace_from_uniform(pmu, pb, rand.uniform(Z1_DIM, low=-0.5, high=0.5)))
        return model.decode(pmu)

    def forward(self, rand: RowRandom) -> Tensor:
        return self._decode(rand)

    def vector_params(self) -> list[Tensor]:
        return [self.code]

    def current(self) -> Tensor:
        """The decoded prior mean (no sampling), so that snapshots do not flicker."""
        return self._decode(None)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"latents": self.code.detach().cpu().numpy()}


def build(config: AMConfig, model: TDVAE, rand: RowRandom) -> Parameterization:
    method = config.method
    if method == "pixel":
        return Pixel(config, rand)
    if method == "distribution":
        return Distribution(config, rand)
    if method == "transform":
        return Transform(config, rand)
    if method == "transform_distribution":
        return TransformDistribution(config, rand)
    main = [(o.main.layer, o.main.unit) for o in config.objectives for _ in range(config.samples)]
    return Latent(config, rand, model, "z2" if method == "latent_z2" else "z1", main)
