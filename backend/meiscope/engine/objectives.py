"""Objectives: what a run maximises, as a weighted sum of unit readouts that composes with + and *.

    from meiscope.engine.objectives import unit
    objective = unit(3) - 0.5 * unit(7) + 0.1 * unit(12, layer="z1", stat="std")

A single unit is the common case; a weighted sum over the units of one layer is a direction.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

# Bounds that hold for any model; a unit's bound in its layer is the model's (engine.model_check).
MAX_UNIT = 9_999_999
MAX_UNITS = 100_000
Layer = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.\-]*$", max_length=200)]
Stat = Literal["mean", "std"]


class Term(BaseModel):
    """weight x (posterior mean or std of `unit` in `layer`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    layer: Layer = "z2"
    stat: Stat = "mean"
    unit: int = Field(ge=0, le=MAX_UNIT)
    weight: float = Field(1.0, ge=-1e3, le=1e3)


class Objective(BaseModel):
    """A sum of terms. Supports objective + objective, objective - objective, scalar * objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    terms: list[Term] = Field(min_length=1, max_length=MAX_UNITS)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(terms=[*self.terms, *other.terms])

    def __mul__(self, scale: float) -> "Objective":
        return Objective(terms=[t.model_copy(update={"weight": t.weight * float(scale)}) for t in self.terms])

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    @property
    def main(self) -> Term:
        """The term with the largest |weight|: its layer is where the runner-up is looked for."""
        return max(self.terms, key=lambda t: abs(t.weight))

    def readouts(self) -> set[tuple[str, str]]:
        return {(t.layer, t.stat) for t in self.terms}


def unit(index: int, layer: Layer = "z2", stat: Stat = "mean") -> Objective:
    return Objective(terms=[Term(layer=layer, stat=stat, unit=index)])


def direction(weights: dict[int, float], layer: Layer = "z2", stat: Stat = "mean") -> Objective:
    return Objective(terms=[Term(layer=layer, stat=stat, unit=u, weight=w) for u, w in weights.items()])


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
