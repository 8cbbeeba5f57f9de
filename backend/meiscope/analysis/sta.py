"""White-noise analysis: the spike-triggered average STA = (1/N) sum_t a(s_t) (s_t - m) over N white-noise
stimuli s_t of mean m, a linear estimate of a unit's receptive field; and the gradient map, the unit's local
linear receptive field at one input. Chunked, so that a million stimuli fit in memory, and seeded."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..model.tdvae import PATCH


def unit_response(model, units: list[int], layer: str = "z2", stat: str = "mean") -> Callable[[Tensor], Tensor]:
    """x (B, ...) holding B inputs of the model (flat or (B, C, H, W)) -> readout of the chosen units
    (B, len(units)), differentiable in x."""
    shape = tuple(model.input.shape)
    device = model.device

    def read(x: Tensor) -> Tensor:
        out = model.readouts(x.reshape(len(x), *shape).to(device), {(layer, stat)})[(layer, stat)]
        return out[:, units].cpu()

    return read


def noise_frame(model) -> tuple[float, float, tuple[float, float] | None]:
    """(mean, std, clip range) of the white noise for a model's input: N(0, 1) per pixel for an unbounded input,
    else the range's middle with a quarter of its width as std, clipped to the range."""
    spec = model.input
    if spec.range is None:
        return 0.0, 1.0, None
    low, high = spec.range
    return (low + high) / 2, (high - low) / 4, (low, high)


@torch.no_grad()
def spike_triggered_average(response: Callable[[Tensor], Tensor], n_units: int, n_stimuli: int = 100_000,
                            noise_std: float = 1.0, chunk: int = 4096, seed: int = 0,
                            progress: bool = False, shape: tuple[int, ...] = (PATCH, PATCH), mean: float = 0.0,
                            clip: tuple[float, float] | None = None) -> np.ndarray:
    """STA of each unit of `response` over noise of `shape` (default 40 x 40), shape (n_units, *shape); the
    stimuli are mean + noise_std N(0, 1), clipped to `clip` if given, and their mean is subtracted."""
    if n_stimuli < 1 or chunk < 1 or noise_std <= 0:
        raise ValueError("n_stimuli and chunk must be >= 1 and noise_std > 0")
    generator = torch.Generator().manual_seed(seed)
    size = int(np.prod(shape))
    total = torch.zeros(n_units, size, dtype=torch.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_stimuli, desc="STA", unit="stim", leave=False)
    done = 0
    while done < n_stimuli:
        b = min(chunk, n_stimuli - done)
        stimuli = mean + torch.randn(b, size, generator=generator) * noise_std
        if clip is not None:
            stimuli = stimuli.clamp(*clip)
        activation = response(stimuli.reshape(b, *shape))
        total += (activation.double().T @ (stimuli.double() - mean))
        done += b
        if bar is not None:
            bar.update(b)
    if bar is not None:
        bar.close()
    return (total / n_stimuli).reshape(n_units, *shape).float().numpy()


def gradient_map(response: Callable[[Tensor], Tensor], image: np.ndarray) -> np.ndarray:
    """d activation / d input at `image` (same shape): the unit's local linear receptive field there (activation
    per input unit)."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))[None].clone().requires_grad_(True)
    response(x)[0, 0].backward()
    return x.grad[0].numpy()
