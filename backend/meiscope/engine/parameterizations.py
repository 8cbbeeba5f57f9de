"""Parameterizations: what theta is and how it makes the input x = G(theta).

Every parameter has the batch's rows (target x sample) as its first dimension, so optimizers and
regularisers act on each row on its own. `forward` gives the images the objective sees, (rows x draws,
C, H, W) in the model's input shape; `current` gives one image per row, the run's "current input" (the mean
for distributions).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.seam import Explorable
from ..model.tdvae import laplace_from_uniform
from .config import AMConfig
from .randomness import RowRandom

Shape = tuple[int, int, int]  # (channels, height, width)
Bounds = tuple[float, float] | None  # the input range a parameterization keeps its images in (None: free)


def _initial_images(config: AMConfig, rand: RowRandom, shape: Shape, bounds: Bounds = None) -> Tensor:
    """Noise of std init.scale (or zeros) around 0, or, inside bounds, around the range's middle."""
    if config.init.kind == "zeros":
        images = torch.zeros(len(rand), *shape, device=rand.device)
    else:
        images = rand.normal(*shape) * config.init.scale
    if bounds is None:
        return images
    low, high = bounds
    return (images + (low + high) / 2).clamp(low, high)


def _squash(y: Tensor, bounds: Bounds) -> Tensor:
    """A smooth map of any value into the open range (the identity's slope at its middle): tanh, centred and
    scaled, so that a transform's output stays inside without a clamp that would cut its gradient."""
    if bounds is None:
        return y
    low, high = bounds
    middle, half = (low + high) / 2, (high - low) / 2
    return middle + half * torch.tanh((y - middle) / half)


def _draw(mean: Tensor, sigma: Tensor, family: str, draws: int, rand: RowRandom, bounds: Bounds = None) -> Tensor:
    """`draws` reparameterised samples per row around `mean` (rows, C, H, W) -> (rows x draws, C, H, W);
    inside bounds, each sample is clipped to the range (a value outside it is no input of the model)."""
    rows, shape = mean.shape[0], tuple(mean.shape[1:])
    mean, sigma = mean.unsqueeze(1), sigma.unsqueeze(1)
    if family == "normal":
        x = mean + sigma * rand.normal(draws, *shape)
    else:
        x = laplace_from_uniform(mean, sigma, rand.uniform(draws, *shape, low=-0.5, high=0.5))
    x = x.reshape(rows * draws, *shape)
    return x if bounds is None else x.clamp(*bounds)


class Parameterization(nn.Module):
    draws = 1
    bounds: Bounds = None

    @torch.no_grad()
    def project(self) -> None:
        """Put the image parameters back inside the bounds (projected gradient ascent); the loop calls it after
        every step. Transforms need none: their output is squashed into the range."""
        if self.bounds is not None:
            for p in self.image_params():
                p.clamp_(*self.bounds)

    def image_params(self) -> list[Tensor]:
        """Parameters that are images (rows, C, H, W): every R_post stage acts on them."""
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
    def __init__(self, config: AMConfig, rand: RowRandom, shape: Shape, bounds: Bounds = None) -> None:
        super().__init__()
        self.bounds = bounds
        self.x = nn.Parameter(_initial_images(config, rand, shape, bounds))

    def forward(self, rand: RowRandom) -> Tensor:
        return self.x

    def image_params(self) -> list[Tensor]:
        return [self.x]

    def current(self) -> Tensor:
        return self.x


class Distribution(Parameterization):
    """theta = (mu, sigma) of a Normal or Laplace over images; sigma per pixel, learned or fixed."""

    def __init__(self, config: AMConfig, rand: RowRandom, shape: Shape, bounds: Bounds = None) -> None:
        super().__init__()
        opts = config.distribution
        self.family, self.draws, self.bounds = opts.family, opts.draws, bounds
        self.mu = nn.Parameter(_initial_images(config, rand, shape, bounds))
        log_sigma = torch.full_like(self.mu, float(np.log(opts.sigma)))
        if opts.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def forward(self, rand: RowRandom) -> Tensor:
        return _draw(self.mu, self.log_sigma.exp(), self.family, self.draws, rand, self.bounds)

    def image_params(self) -> list[Tensor]:
        return [self.mu]

    def current(self) -> Tensor:
        return self.mu

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": as_images(self.mu), "sigma": as_images(self.log_sigma.exp())}


class Transform(Parameterization):
    """theta = (input i, weights of G); x = G(i), G one k x k convolution or a small CNN (circular padding).
    With C input channels the convolution maps C channels to C, the CNN C to `channels` to C."""

    def __init__(self, config: AMConfig, rand: RowRandom, shape: Shape, bounds: Bounds = None) -> None:
        super().__init__()
        opts = config.transform
        k = opts.kernel_size
        self.pad = k // 2
        self.shape = shape
        self.out_bounds = bounds  # G's output is squashed into them; the input i itself is free
        self.input = nn.Parameter(_initial_images(config, rand, shape))
        channels = shape[0]
        if opts.kind == "conv":
            shapes = [(channels, channels)]
        else:
            c = opts.channels
            shapes = [(c, channels)] + [(c, c)] * (opts.layers - 2) + [(channels, c)]
        # He-style init per row, drawn from the row's own generator
        self.kernels = nn.ParameterList(
            nn.Parameter(rand.normal(c_out, c_in, k, k) * np.sqrt(1.0 / (c_in * k * k))) for c_out, c_in in shapes)
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(len(rand), c_out, device=rand.device)) for c_out, _ in shapes[:-1])

    def transformed(self) -> Tensor:
        rows = self.input.shape[0]
        y = self.input.reshape(1, -1, *self.shape[1:])
        for i, w in enumerate(self.kernels):
            y = F.pad(y, (self.pad,) * 4, mode="circular")
            bias = self.biases[i].reshape(-1) if i < len(self.biases) else None
            y = F.conv2d(y, w.reshape(-1, *w.shape[2:]), bias, groups=rows)
            if i < len(self.kernels) - 1:
                y = F.leaky_relu(y, 0.1)
        return _squash(y.reshape(rows, *self.shape), self.out_bounds)

    def forward(self, rand: RowRandom) -> Tensor:
        return self.transformed()

    def image_params(self) -> list[Tensor]:
        return [self.input]

    def current(self) -> Tensor:
        return self.transformed()

    def arrays(self) -> dict[str, np.ndarray]:
        first = self.kernels[0].detach().cpu().numpy()  # (rows, c_out, c_in, k, k)
        return {"inputs": as_images(self.input), "kernels": first[:, :, 0]}


class TransformDistribution(Transform):
    """G(i) is the mean of a Normal or Laplace with fixed sigma; each step draws a batch around it."""

    def __init__(self, config: AMConfig, rand: RowRandom, shape: Shape, bounds: Bounds = None) -> None:
        super().__init__(config, rand, shape, bounds)
        self.family, self.draws, self.sigma = config.distribution.family, config.distribution.draws, config.distribution.sigma

    def forward(self, rand: RowRandom) -> Tensor:
        mean = self.transformed()
        return _draw(mean, torch.full_like(mean, self.sigma), self.family, self.draws, rand, self.out_bounds)

    def arrays(self) -> dict[str, np.ndarray]:
        return {**super().arrays(), "sigma": np.full(len(self.input), self.sigma, dtype=np.float32)}


class Latent(Parameterization):
    """theta = a code in one of the model's latent spaces (for the TDVAE: z2, decoded through the mean or a
    sample of p(z1 | z2), or z1); x is what the model generates from it. The model's weights stay fixed."""

    def __init__(self, config: AMConfig, rand: RowRandom, model: Explorable, latent: str,
                 one_hot_units: list[tuple[str, int]]) -> None:
        super().__init__()
        self.model, self.latent = [model], latent  # a list keeps the model out of this module's parameters
        self.sample_z1 = latent == "z2" and config.latent.z1 == "sample"
        opts = config.latent
        with torch.no_grad():
            code = model.latent_start(latent, opts.init, rand, len(rand), one_hot_units, opts.one_hot_scale)
        self.code = nn.Parameter(code.clone())

    def _decode(self, rand: RowRandom | None) -> Tensor:
        return self.model[0].latent_decode(self.latent, self.code, rand if self.sample_z1 else None)

    def forward(self, rand: RowRandom) -> Tensor:
        return self._decode(rand)

    def vector_params(self) -> list[Tensor]:
        return [self.code]

    def current(self) -> Tensor:
        """The decoded prior mean (no sampling), so that snapshots do not flicker."""
        return self._decode(None)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"latents": self.code.detach().cpu().numpy()}


def as_images(t: Tensor) -> np.ndarray:
    """(rows, C, H, W) -> numpy (rows, H, W) for one channel, else (rows, C, H, W)."""
    t = t.detach().cpu()
    return (t[:, 0] if t.shape[1] == 1 else t).numpy()


def build(config: AMConfig, model: Explorable, rand: RowRandom) -> Parameterization:
    """The parameterization of config.method; image methods keep their images inside the model's declared input
    range unless config.keep_in_range is off. The latent methods' images are what the model generates."""
    method = config.method
    shape = model.input.shape
    bounds = model.input.range if config.keep_in_range else None
    images = {"pixel": Pixel, "distribution": Distribution, "transform": Transform,
              "transform_distribution": TransformDistribution}
    if method in images:
        return images[method](config, rand, shape, bounds)
    main = [(o.main.layer, o.main.unit) for o in config.objectives for _ in range(config.samples)]
    return Latent(config, rand, model, method.removeprefix("latent_"), main)
