"""A sweep spec (YAML or JSON): a base config, axes over any config field, and a unit set; expanded into
grid points, each one validated AMConfig with the whole unit list (one batched engine call).

    name: f4-gamma                # optional: the file name's stem
    base: {method: pixel, steps: 200, pre: {jitter: 2}}
    axes:
      grad.gamma: [0, 0.5, 1, 2]            # a list of values (numbers, strings, dicts, schedules)
      optimizer.lr: {geomspace: [0.001, 0.1, 3]}
      steps: {range: [50, 200, 50]}         # start, stop (inclusive), step
    units: active                 # a list [3, 5, "10-19"], "3,5,10-19", all, active, texture-sensitive
    batch_size: 250               # units per engine call (default: all of them)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engine.config import AMConfig
from ..engine.options import ConfigError, build_config, describe_error, parse_assignment, read_mapping

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")  # a folder name: no '/', no '..'
UNIT_SETS = ("all", "active", "texture-sensitive")
GENERATORS = ("range", "linspace", "geomspace")
MAX_VALUES = 1000  # values of one axis
MAX_POINTS = 10_000  # grid points of a sweep (the thesis' largest full grid has 1,500)


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Optional[str] = Field(None, description="the sweep's folder name (default: the spec file's stem)")
    base: dict[str, Any] = Field(default_factory=dict, description="a partial AMConfig every grid point starts from")
    axes: dict[str, Union[list[Any], dict[str, list[float]]]] = Field(
        default_factory=dict, description="config field (dotted) -> list of values or {range|linspace|geomspace: [...]}")
    units: Union[str, list[Union[int, str]]] = Field(..., description="unit indices or all / active / texture-sensitive")
    batch_size: Optional[int] = Field(None, ge=1, le=100_000, description="units per engine call (default: all)")


@dataclass(frozen=True)
class Point:
    """One grid point: the axis values and the batched config of all the sweep's units."""

    values: dict[str, Any]
    config: AMConfig


@dataclass(frozen=True)
class Expansion:
    name: str
    spec: SweepSpec
    axes: dict[str, list[Any]]  # axis -> its values, in order
    units: list[int]
    points: list[Point]  # the Cartesian product of the axes, the last axis varying fastest

    @property
    def n_runs(self) -> int:
        return len(self.points) * len(self.units)

    @cached_property
    def run_ids(self) -> list[list[str]]:
        """The run id of every cell (points x units), hashed once: the manifest, the plan and the summary
        all need them."""
        return [[run_id(unit_config(p.config, u)) for u in self.units] for p in self.points]

    def manifest(self) -> dict:
        """What sweep.json records: the spec and its expansion."""
        return {"name": self.name, "spec": self.spec.model_dump(mode="json"), "axes": self.axes, "units": self.units,
                "points": [{"values": p.values, "run_ids": ids} for p, ids in zip(self.points, self.run_ids)]}


# ---- reading ------------------------------------------------------------------------------------
def read_spec(path: Path) -> SweepSpec:
    """Parse a YAML (or JSON, which is YAML) spec file; the sweep name defaults to the file's stem."""
    data = read_mapping(path, "sweep spec", yaml=True)
    data.setdefault("name", Path(path).stem)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"sweep spec: {describe_error(exc)}") from None


# ---- axes ---------------------------------------------------------------------------------------
def axis_values(name: str, raw: list | dict) -> list[Any]:
    """A list stays as it is; {range: [start, stop, step]} (stop included when on the grid),
    {linspace: [start, stop, n]} and {geomspace: [start, stop, n]} become lists of numbers."""
    if isinstance(raw, list):
        values = raw
    else:
        if len(raw) != 1 or next(iter(raw)) not in GENERATORS:
            raise ConfigError(f"axis {name}: give a list of values or one of {{{'|'.join(GENERATORS)}: [a, b, c]}}")
        kind, args = next(iter(raw.items()))
        if len(args) != 3:
            raise ConfigError(f"axis {name}: {kind} takes [start, stop, {'n' if kind != 'range' else 'step'}]")
        values = _generate(name, kind, *args)
    if not values:
        raise ConfigError(f"axis {name}: has no values")
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise ConfigError(f"axis {name}: values repeat")
    return values


def _generate(name: str, kind: str, a: float, b: float, c: float) -> list[float | int]:
    integral = all(float(v).is_integer() for v in (a, b, c)) and kind != "geomspace"
    if kind == "range":
        if c <= 0 or b < a:
            raise ConfigError(f"axis {name}: range needs start <= stop and a positive step")
        n = int(math.floor((b - a) / c + 1e-9)) + 1
        if n > MAX_VALUES:
            raise ConfigError(f"axis {name}: range gives {n} values, at most {MAX_VALUES}")
        values = [a + k * c for k in range(n)]
    else:
        if not float(c).is_integer() or not 1 <= c <= MAX_VALUES:
            raise ConfigError(f"axis {name}: {kind} needs a count n in 1..{MAX_VALUES}")
        n = int(c)
        if kind == "geomspace":
            if a <= 0 or b <= 0:
                raise ConfigError(f"axis {name}: geomspace needs positive start and stop")
            values = [a * (b / a) ** (k / max(1, n - 1)) for k in range(n)]
        else:
            values = [a + (b - a) * k / max(1, n - 1) for k in range(n)]
    # round away float noise (0.30000000000000004) so values read well in tables and file names
    values = [float(f"{v:.10g}") for v in values]
    if integral and all(v.is_integer() for v in values):
        return [int(v) for v in values]
    return values


# ---- units --------------------------------------------------------------------------------------
def parse_unit_list(text: str) -> list[int]:
    """'3,5,10-19' -> [3, 5, 10, ..., 19]; a ValueError names what did not parse."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            units.extend(range(int(lo), int(hi) + 1))
        else:
            units.append(int(part))
    return units


def resolve_units(units: str | list, layer: str, model=None) -> list[int]:
    """The unit set as indices: a list (ints and 'a-b' strings), '3,5,10-19', or a named set of the loaded
    `model`'s layer (all, or from its unit census: active, texture-sensitive)."""
    if isinstance(units, str) and units in UNIT_SETS:
        if model is None:
            raise ConfigError(f"units: {units!r} needs the model")
        try:
            size = model.layer(layer).units
        except ValueError as exc:
            raise ConfigError(f"base: {exc}") from None
        if units == "all":
            return list(range(size))
        census = model.census(layer)
        if census is None:
            raise ConfigError(f"units: {units!r} needs a unit census of layer {layer} (the model card beside the "
                              "weights)")
        key = (lambda r: r["status"] == "active") if units == "active" else (lambda r: bool(r.get("texture_sensitive")))
        chosen = [r["unit"] for r in census if key(r)]
        if not chosen:
            raise ConfigError(f"units: the unit census lists no {units} units (see `meiscope texture-units`); "
                              "give unit indices instead")
        return chosen
    parts = units.split(",") if isinstance(units, str) else units
    out: list[int] = []
    try:
        for part in parts:
            out.extend([part] if isinstance(part, int) else parse_unit_list(str(part)))
    except ValueError:
        raise ConfigError(f"units: expected indices like [3, 5, '10-19'], '3,5,10-19' or one of "
                          f"{', '.join(UNIT_SETS)}, got {units!r}") from None
    if not out:
        raise ConfigError("units: the unit set is empty")
    return out


# ---- expansion ----------------------------------------------------------------------------------
def expand(spec: SweepSpec, model=None) -> Expansion:
    """Every grid point as a validated config (checked against `model`, the loaded Explorable, when given);
    nothing runs. A bad axis value raises a ConfigError that names the axis and the value. Without a layer in
    the base, the sweep runs the model's first layer."""
    name = spec.name or "sweep"
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"name: {name!r} must match {NAME_PATTERN.pattern} (letters, digits, _ . -)")
    for key in ("unit", "objective"):
        if key in spec.base or key in spec.axes:
            raise ConfigError(f"{key}: a sweep's targets are its `units`; leave {key} out of base and axes")
    axes = {axis: axis_values(axis, raw) for axis, raw in spec.axes.items()}
    n_points = math.prod(len(v) for v in axes.values())
    if n_points > MAX_POINTS:
        raise ConfigError(f"axes: {' x '.join(str(len(v)) for v in axes.values())} = {n_points} grid points, "
                          f"at most {MAX_POINTS}: split the sweep")
    base_layer = dict(spec.base)
    if model is not None and "layer" not in base_layer:
        base_layer["layer"] = model.default_layer
    try:
        base = build_config(base_layer)
    except ConfigError as exc:
        raise ConfigError(f"base: {exc}") from None
    units = resolve_units(spec.units, base.layer, model)
    _check(base_layer, [], units, "units", model)
    layers = {axis: [parse_assignment(f"{axis}={json.dumps(v)}") for v in values] for axis, values in axes.items()}
    for axis, overrides in layers.items():  # one axis at a time first, so that an error names its axis
        for value, override in zip(axes[axis], overrides):
            _check(base_layer, [override], units, f"axis {axis} = {json.dumps(value)}", model)
    points = []
    for combo in itertools.product(*(range(len(v)) for v in axes.values())):
        values = {axis: axes[axis][i] for axis, i in zip(axes, combo)}
        overrides = [layers[axis][i] for axis, i in zip(axes, combo)]
        where = "axes " + ", ".join(f"{a} = {json.dumps(v)}" for a, v in values.items())
        points.append(Point(values, _check(base_layer, overrides, units, where, model)))
    return Expansion(name=name, spec=spec, axes=axes, units=units, points=points)


def _check(base: dict, overrides: list[dict], units: list[int], where: str, model=None) -> AMConfig:
    from ..engine.model_check import ConfigMismatch, check_config

    try:
        config = build_config(base, *overrides, {"unit": units})
        if model is not None:
            check_config(config, model)
        return config
    except (ConfigError, ConfigMismatch) as exc:
        raise ConfigError(f"{where}: {exc}") from None


# ---- identity -----------------------------------------------------------------------------------
def unit_config(config: AMConfig, unit: int) -> AMConfig:
    """The single-unit config of one unit of a batched config (what `meiscope am` would run)."""
    return AMConfig.model_validate({**config.model_dump(mode="json"), "unit": unit})


def config_hash(config: AMConfig) -> str:
    """sha256 of the config's canonical JSON (sorted keys): equal configs, equal hashes."""
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")


def run_id(config: AMConfig) -> str:
    """The folder name of a stored run: the first 16 hex digits of its config hash."""
    return config_hash(config)[:16]
