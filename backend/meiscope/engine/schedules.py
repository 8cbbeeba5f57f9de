"""Schedules: any scalar hyper-parameter of a run may change over the iterations.

A schedule is written as a plain number (constant) or as one of the models below. `bounded(lo, hi)`
makes a field type that accepts either and checks every number in it against the field's range, so an
error names the field and the allowed range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np


class Constant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["constant"] = "constant"
    value: float


class Linear(BaseModel):
    """From `start` at the first step to `end` at the last, linearly."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["linear"] = "linear"
    start: float
    end: float


class RandomRange(BaseModel):
    """A fresh uniform draw from [low, high] at every step (seeded by the run's seed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["random"] = "random"
    low: float
    high: float


ScheduleSpec = Annotated[Union[Constant, Linear, RandomRange], Field(discriminator="kind")]
Schedule = Union[float, ScheduleSpec]


def _numbers(value: Schedule) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, Constant):
        return [value.value]
    if isinstance(value, Linear):
        return [value.start, value.end]
    return [value.low, value.high]


def bounded(lo: float, hi: float):
    """A schedule field type whose every number must lie in [lo, hi]."""

    def check(value: Schedule) -> Schedule:
        for number in _numbers(value):
            if not (lo <= number <= hi):  # also rejects NaN
                raise ValueError(f"must lie in [{lo:g}, {hi:g}], got {number:g}")
        if isinstance(value, RandomRange) and value.low > value.high:
            raise ValueError(f"random range needs low <= high, got [{value.low:g}, {value.high:g}]")
        return value

    return Annotated[Schedule, AfterValidator(check), Field(json_schema_extra={"minimum": lo, "maximum": hi})]


def is_zero(value: Schedule) -> bool:
    """True when the schedule is 0 at every step (the stage it drives can be skipped)."""
    return all(n == 0 for n in _numbers(value))


def values(value: Schedule, steps: int, rng: np.random.Generator) -> np.ndarray:
    """The schedule's value at each of `steps` steps, float64 array of shape (steps,)."""
    import numpy as np  # here, not at import: the CLI validates configs without numpy's import time

    if isinstance(value, (int, float)):
        return np.full(steps, float(value))
    if isinstance(value, Constant):
        return np.full(steps, value.value)
    if isinstance(value, Linear):
        return np.linspace(value.start, value.end, steps) if steps > 1 else np.array([value.start])
    return rng.uniform(value.low, value.high, size=steps)


def describe(value: Schedule) -> str:
    if isinstance(value, (int, float)):
        return f"{value:g}"
    if isinstance(value, Constant):
        return f"{value.value:g}"
    if isinstance(value, Linear):
        return f"linear {value.start:g}->{value.end:g}"
    return f"random [{value.low:g}, {value.high:g}]"
