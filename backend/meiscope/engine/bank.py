"""ObjectiveBank: the objectives of one batched run (engine/objectives.py) evaluated on readouts in one pass."""

from __future__ import annotations

import torch
from torch import Tensor

from .objectives import Objective


class ObjectiveBank:
    """Evaluates one objective per target for a batch of images in one pass.

    Each (layer, stat) readout gets a dense weight matrix (targets x layer size), so that any mix of single
    units and directions costs one multiply-and-sum per readout, whatever the batch holds.
    """

    def __init__(self, objectives: list[Objective], layer_sizes: dict[str, int],
                 device: torch.device | str = "cpu") -> None:
        self.objectives = objectives
        self.keys = sorted({key for o in objectives for key in o.readouts()})
        self.weights: dict[tuple[str, str], Tensor] = {}
        for key in self.keys:
            w = torch.zeros(len(objectives), layer_sizes[key[0]])
            for i, o in enumerate(objectives):
                for t in o.terms:
                    if (t.layer, t.stat) == key:
                        w[i, t.unit] += t.weight
            self.weights[key] = w.to(device)
        # runner-up: the largest readout among units of the main layer that the objective does not use
        main = [o.main for o in objectives]
        self.main_key = (main[0].layer, "mean")
        if any(m.layer != main[0].layer for m in main):
            raise ValueError("all targets of one run must have their main term in the same layer")
        used = torch.zeros(len(objectives), layer_sizes[self.main_key[0]], dtype=torch.bool)
        for i, o in enumerate(objectives):
            for t in o.terms:
                if t.layer == self.main_key[0]:
                    used[i, t.unit] = True
        self.excluded = used.to(device)
        self.needed = set(self.keys) | {self.main_key}
        # the common case, one plain unit per target in one readout: a gather instead of a weighted sum
        self.single_units = None
        if len(self.keys) == 1 and all(len(o.terms) == 1 and o.terms[0].weight == 1.0 for o in objectives):
            self.single_units = torch.tensor([o.terms[0].unit for o in objectives], device=device)

    def activation(self, readouts: dict[tuple[str, str], Tensor], target_of_row: Tensor) -> Tensor:
        """Objective value per image, (B,); image b belongs to target target_of_row[b]."""
        if self.single_units is not None:
            index = self.single_units.index_select(0, target_of_row).unsqueeze(1)
            return readouts[self.keys[0]].gather(1, index).squeeze(1)
        total = None
        for key in self.keys:
            value = (readouts[key] * self.weights[key].index_select(0, target_of_row)).sum(-1)
            total = value if total is None else total + value
        return total

    @torch.no_grad()
    def runner_up(self, main: Tensor, target_of_row: Tensor) -> tuple[Tensor, Tensor]:
        """(value, unit) of the largest posterior mean among the other units of the main layer, (B,) each;
        main: the readout self.main_key, (B, layer size)."""
        masked = main.masked_fill(self.excluded.index_select(0, target_of_row), float("-inf"))
        return masked.max(-1)
