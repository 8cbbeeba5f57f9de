"""White-noise analysis: the spike-triggered average STA = (1/N) sum_t a(s_t) s_t over N zero-mean white-noise
stimuli s_t, a linear estimate of a unit's receptive field. Chunked, so that a million
stimuli fit in memory, and seeded."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..model.tdvae import PATCH, TDVAE


def unit_response(model: TDVAE, units: list[int], layer: str = "z2", stat: str = "mean") -> Callable[[Tensor], Tensor]:
    """x (B, 1600) -> readout of the chosen units (B, len(units))."""
    return lambda x: model.readout(x, layer=layer, stat=stat, units=units)


@torch.no_grad()
def spike_triggered_average(response: Callable[[Tensor], Tensor], n_units: int, n_stimuli: int = 100_000,
                            noise_std: float = 1.0, chunk: int = 4096, seed: int = 0,
                            progress: bool = False) -> np.ndarray:
    """STA of each unit of `response`, shape (n_units, 40, 40)."""
    if n_stimuli < 1 or chunk < 1 or noise_std <= 0:
        raise ValueError("n_stimuli and chunk must be >= 1 and noise_std > 0")
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(n_units, PATCH * PATCH, dtype=torch.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_stimuli, desc="STA", unit="stim", leave=False)
    done = 0
    while done < n_stimuli:
        b = min(chunk, n_stimuli - done)
        stimuli = torch.randn(b, PATCH * PATCH, generator=generator) * noise_std
        activation = response(stimuli)
        total += (activation.double().T @ stimuli.double())
        done += b
        if bar is not None:
            bar.update(b)
    if bar is not None:
        bar.close()
    return (total / n_stimuli).reshape(n_units, PATCH, PATCH).float().numpy()
