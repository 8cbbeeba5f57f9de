"""The model seam: everything meiscope needs from a model, and nothing more.

The engine, the analysis, the server and the page see a model only through `Explorable`:

- `input`: the input's shape (channels, height, width) and value range;
- `layers`: named readout layers, each with its number of units, the statistics it offers ("mean", and
  "std" for a stochastic layer) and optionally a label per unit (a class name);
- `readouts(x, needed)`: those readouts for a batch, differentiable in x;
- optional extras, each switching features on where present:
  `has_elbo` with `elbo_rows` (the ELBO weight, the ELBO curve, out-of-distribution measures),
  `latents` with `latent_start` / `latent_decode` (the latent methods, one-hot synthesis),
  `census(layer)` (a record per unit measured on data: status, activation mean / std / 99.9th percentile),
  `data_sample(n)` (real inputs, for measures taken on data).

The TDVAE (model/tdvae.py) is one implementation, a PyTorch module read through forward hooks
(model/hooked.py) another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

ReadoutKey = tuple[str, str]  # (layer name, statistic)


class NoiseSource(Protocol):
    """Random numbers per row of a batch: `normal(*shape)` -> (rows, *shape); `uniform(*shape, low, high)`."""

    def normal(self, *shape: int) -> Tensor: ...

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> Tensor: ...


@dataclass(frozen=True)
class InputSpec:
    """What a model takes: images of `channels` x `height` x `width`.

    `range`: the values the data spans (None: unbounded, e.g. whitened patches); `centred`: values scatter
    around 0 with either sign meaningful (figures then use a colour scale centred on 0)."""

    channels: int
    height: int
    width: int
    range: tuple[float, float] | None = None
    centred: bool = True
    description: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


@dataclass(frozen=True)
class ReadoutLayer:
    """A layer whose units can be targets: `units` of them, offering `stats`."""

    name: str
    units: int
    stats: tuple[str, ...] = ("mean",)
    description: str = ""
    labels: tuple[str, ...] | None = None  # one per unit, e.g. class names


@dataclass(frozen=True)
class LatentSpace:
    """A code the model generates inputs from (the latent methods optimise it)."""

    name: str
    size: int
    description: str = ""


class Readouts(dict):
    """(layer, stat) -> (B, units). `shared` holds whatever the model may reuse for the same x (the TDVAE:
    the shared encoding h), so that an ELBO of the same batch does not encode it twice."""

    shared: object = None


@dataclass
class ModelInfo:
    """What the page and the API say about a model (JSON-ready)."""

    name: str
    kind: str
    description: str
    input: dict
    layers: list[dict]
    latents: list[dict] = field(default_factory=list)
    has_elbo: bool = False
    methods: list[str] = field(default_factory=list)
    default_layer: str = ""
    natural: bool = False  # the data inputs that drive a unit most can be shown


class Explorable(nn.Module):
    """Base class of every model meiscope explores. Subclasses set `name`, `input`, `layers` (first: the
    default layer) and implement `readouts`; the rest is optional."""

    name: str = "model"
    kind: str = "model"
    description: str = ""
    input: InputSpec
    layers: dict[str, ReadoutLayer]
    latents: dict[str, LatentSpace] = {}
    has_elbo: bool = False
    source: dict = {}  # set by load_model: {"name", "spec" (folder or factory), "sha256" of the weights}

    # ---- required ----
    def readouts(self, x: Tensor, needed: set[ReadoutKey]) -> Readouts:
        """The readouts `needed` (and possibly more) for x of shape (B, C, H, W), differentiable in x."""
        raise NotImplementedError

    # ---- optional ----
    def elbo_rows(self, x: Tensor, noise: NoiseSource, draws: int = 1, shared: object = None) -> Tensor:
        """ELBO (or log-likelihood) per image, (B,), nats; images come row by row, `draws` per row, and take
        their random numbers from `noise`. Only where has_elbo."""
        raise NotImplementedError(f"{self.name} has no ELBO")

    def latent_start(self, latent: str, init: str, noise: NoiseSource, rows: int,
                     one_hot: list[tuple[str, int]], scale: float) -> Tensor:
        """Starting codes (rows, size): the prior mean, a prior sample, or `scale` on each row's target unit."""
        raise NotImplementedError(f"{self.name} has no latent space {latent}")

    def latent_decode(self, latent: str, code: Tensor, noise: NoiseSource | None = None) -> Tensor:
        """The input a code generates, (rows, C, H, W); with `noise`, a sample where the model samples."""
        raise NotImplementedError(f"{self.name} has no latent space {latent}")

    def census(self, layer: str) -> list[dict] | None:
        """A record per unit of `layer` measured on data ({"unit", "status", "act_mean", "act_std", "act_p999",
        "label", ...}), or None when unknown."""
        return None

    def natural_top(self, layer: str) -> dict | None:
        """The real inputs that drive each unit of `layer` most, largest first ({"index", "activation", "images"},
        each units x k; model/natural.py), or None when the model has no data to take them from."""
        return None

    @property
    def has_natural(self) -> bool:
        """Whether natural_top has data to take inputs from (cheap: nothing is computed)."""
        return False

    def data_sample(self, n: int) -> Tensor | None:
        """Up to n real inputs (n, C, H, W) of the kind the census is measured on, or None when the model has no
        data (the characterisation then measures on noise)."""
        return None

    def elbo_reference(self):
        """ELBOs of held-out inputs (a numpy array, e.g. their percentiles), against which an input's ELBO is
        placed (the in_distribution check), or None when unknown. Only where has_elbo."""
        return None

    # ---- derived ----
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def default_layer(self) -> str:
        return next(iter(self.layers))

    def layer(self, name: str) -> ReadoutLayer:
        if name not in self.layers:
            raise ValueError(f"layer must be one of {', '.join(self.layers)} for {self.name}, got {name!r}")
        return self.layers[name]

    def methods(self) -> list[str]:
        """The engine's methods this model supports."""
        image_methods = ["pixel", "distribution", "transform", "transform_distribution"]
        return image_methods + [f"latent_{name}" for name in ("z2", "z1") if name in self.latents]

    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name, kind=self.kind, description=self.description, input={**asdict(self.input), "shape": list(self.input.shape)},
            layers=[{**asdict(layer), "stats": list(layer.stats),
                     "labels": list(layer.labels) if layer.labels else None} for layer in self.layers.values()],
            latents=[asdict(latent) for latent in self.latents.values()],
            has_elbo=self.has_elbo, methods=self.methods(), default_layer=self.default_layer, natural=self.has_natural)
