"""Objectives: what a run maximises, as a weighted sum of unit readouts that composes with + and *.

    from meiscope.engine.objectives import unit
    objective = unit(3) - 0.5 * unit(7) + 0.1 * unit(12, layer="z1", stat="std")

A single unit is the common case; a weighted sum over the units of one layer is a direction. These are plain
pydantic models (no torch: the CLI validates configs before it imports torch); engine/bank.py evaluates them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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

    @property
    def plain_unit(self) -> Term | None:
        """The term when the objective is one unit's mean at weight 1 (what a unit census measures), else None."""
        term = self.terms[0]
        return term if len(self.terms) == 1 and term.weight == 1.0 and term.stat == "mean" else None

    def readouts(self) -> set[tuple[str, str]]:
        return {(t.layer, t.stat) for t in self.terms}


def unit(index: int, layer: Layer = "z2", stat: Stat = "mean") -> Objective:
    return Objective(terms=[Term(layer=layer, stat=stat, unit=index)])


def direction(weights: dict[int, float], layer: Layer = "z2", stat: Stat = "mean") -> Objective:
    return Objective(terms=[Term(layer=layer, stat=stat, unit=u, weight=w) for u, w in weights.items()])
