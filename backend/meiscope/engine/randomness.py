"""Per-row random numbers: each (target unit, sample) row of a batch has its own generator.

A row's generator is seeded from (run seed, target key, sample index) only, so a unit draws the same
numbers (initialisation, jitter, distribution draws, ELBO noise) alone and inside a batch of 250: the
batched result matches the single-unit run. Separate streams keep optional work (measuring the ELBO)
from shifting the numbers of the optimisation itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class RowRandom:
    def __init__(self, seed: int, keys: list[int], samples: int, device: torch.device, stream: int = 0) -> None:
        self.device = device
        self.generators = []
        for key in keys:
            for sample in range(samples):
                seq = np.random.SeedSequence([seed, key, sample, stream])
                g = torch.Generator()
                g.manual_seed(int(seq.generate_state(1, dtype=np.uint64)[0] >> 1))
                self.generators.append(g)

    def __len__(self) -> int:
        return len(self.generators)

    def _stack(self, draw) -> Tensor:
        return torch.stack([draw(g) for g in self.generators]).to(self.device)

    def normal(self, *shape: int) -> Tensor:
        """(rows, *shape) standard normal numbers."""
        return self._stack(lambda g: torch.randn(shape, generator=g))

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> Tensor:
        return self._stack(lambda g: torch.rand(shape, generator=g) * (high - low) + low)

    def integers(self, low: int, high: int, *shape: int) -> Tensor:
        """(rows, *shape) integers in [low, high)."""
        return self._stack(lambda g: torch.randint(low, high, shape, generator=g))
