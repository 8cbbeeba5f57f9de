"""Names for runs shown together (an export, a sheet): each labelled by its target and method and by the
config fields that differ between the runs ("unit 141 · pixel · jitter 2" beside "unit 141 · pixel ·
jitter 0"), and folder names by unit, method and id ("u141-pixel-3f2a9c01b2d4")."""

from __future__ import annotations

import json
import re
from typing import Any

from ..engine.config import AMConfig
from ..engine.result import Run

SEP = " · "
ALWAYS = ("unit", "method")  # every label starts with the target and the method
SKIP = ("objective",)  # part of the target (see target_text)
SHORT = {"optimizer.name": "optimizer", "obj.elbo_weight": "ELBO weight", "pre.scale": "zoom",
         "distribution.sigma": "sigma", "diversity.weight": "diversity", "post.max_norm": "max norm"}


def flat_config(config: AMConfig) -> dict[str, Any]:
    """The config as dotted names -> JSON values (sections flattened; the objective kept whole)."""
    out: dict[str, Any] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and key != "objective" and not _is_schedule(value):
                walk(value, f"{prefix}{key}.")
            else:
                out[prefix + key] = value

    walk(config.model_dump(mode="json"), "")
    return out


def _is_schedule(value: dict) -> bool:
    return "kind" in value and ({"start", "end"} <= set(value) or {"low", "high"} <= set(value) or "value" in value)


def differing_fields(runs: dict[str, Run]) -> list[str]:
    """Config fields (dotted, in the config's order) whose values are not the same in every run, and
    `model` when the runs come from different models."""
    flats = [flat_config(run.config) for run in runs.values()]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    fields = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    if len({model_name(run) for run in runs.values()}) > 1:
        fields.insert(0, "model")
    return fields


def model_name(run: Run) -> str:
    return str(run.info.get("model", {}).get("name", "unknown model"))


def short_name(field: str) -> str:
    """'pre.jitter' -> 'jitter'; a name whose last part is ambiguous keeps its section ('init.scale')."""
    if field in SHORT:
        return SHORT[field]
    last = field.rsplit(".", 1)[-1]
    ambiguous = sum(k.rsplit(".", 1)[-1] == last for k in flat_config(AMConfig())) > 1
    return field if ambiguous else last.replace("_", " ")


def value_text(value: Any) -> str:
    """A config value in a label: numbers short, schedules as 'linear 0.1→0.01', switches on/off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    if isinstance(value, dict) and _is_schedule(value):
        kind = value["kind"]
        if kind == "linear":
            return f"linear {value['start']:g}→{value['end']:g}"
        if kind == "random":
            return f"random {value['low']:g}–{value['high']:g}"
        return f"{value['value']:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def units_text(units: list[int]) -> str:
    """'unit 141', 'units 3, 5, 6', 'units 0–249' or '12 units'."""
    if len(units) == 1:
        return f"unit {units[0]}"
    if units == list(range(units[0], units[0] + len(units))):
        return f"units {units[0]}–{units[-1]}"
    return f"units {', '.join(map(str, units))}" if len(units) <= 4 else f"{len(units)} units"


def target_text(config: AMConfig) -> str:
    """The run's target: its unit(s), or its objective as a weighted sum ('1·z2[3] − 0.5·z2[7]')."""
    if config.objective is None:
        return units_text(config.units)
    parts = []
    for k, t in enumerate(config.objective.terms):
        sign = "−" if t.weight < 0 else "+"
        term = f"{abs(t.weight):g}·{t.layer}[{t.unit}]" + (" std" if t.stat == "std" else "")
        parts.append((("−" if sign == "−" else "") if k == 0 else f" {sign} ") + term)
    return "objective " + "".join(parts)


def relevant(field: str, config: AMConfig) -> bool:
    """Whether `field` can change what a run with `config` does (a distribution's sigma cannot change a pixel
    run, a diversity weight a run of one sample)."""
    section, method = field.split(".", 1)[0], config.method
    if section == "distribution":
        return method in ("distribution", "transform_distribution") and (
            field != "distribution.learn_sigma" or method == "distribution")
    if section == "transform":
        return method.startswith("transform")
    if section == "latent":
        return method.startswith("latent") and (field != "latent.z1" or method == "latent_z2")
    if section == "init":
        return not method.startswith("latent")
    if section == "diversity":
        return config.samples > 1
    return True


def run_label(run: Run, fields: list[str]) -> str:
    """The run's target and method, then each of `fields` (those that differ) that matters to it, with its
    value."""
    flat = flat_config(run.config)
    parts = [target_text(run.config), run.config.method]
    for field in fields:
        if field in ALWAYS or field in SKIP or field == "layer" and run.config.objective is not None:
            continue
        if field != "model" and not relevant(field, run.config):
            continue
        value = model_name(run) if field == "model" else value_text(flat.get(field))
        parts.append(f"{short_name(field)} {value}")
    return SEP.join(parts)


def run_labels(runs: dict[str, Run]) -> dict[str, str]:
    """name -> label of each run (labels that would still coincide get the run's name added)."""
    fields = differing_fields(runs)
    labels = {name: run_label(run, fields) for name, run in runs.items()}
    counts = {label: list(labels.values()).count(label) for label in labels.values()}
    return {name: label if counts[label] == 1 or len(runs) == 1 else f"{label}{SEP}{name}"
            for name, label in labels.items()}


def folder_name(name: str, run: Run) -> str:
    """'u141-pixel-<name>' (units 3,5,6: 'u3_5_6'; 0..249: 'u0-249'; an objective: 'obj'); unsafe
    characters become '_'. A name that already starts so is kept."""
    units = run.config.units
    if run.config.objective is not None:
        target = "obj"
    elif len(units) <= 3:
        target = "u" + "_".join(map(str, units))
    elif units == list(range(units[0], units[0] + len(units))):
        target = f"u{units[0]}-{units[-1]}"
    else:
        target = f"{len(units)}units"
    prefix = f"{target}-{run.config.method}"
    full = name if name.startswith(prefix) else f"{prefix}-{name}"
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", full)[:120]


def folder_names(runs: dict[str, Run]) -> dict[str, str]:
    """name -> a distinct folder name for each run."""
    out: dict[str, str] = {}
    for name, run in runs.items():
        base = candidate = folder_name(name, run)
        k = 2
        while candidate in out.values():
            candidate, k = f"{base}-{k}", k + 1
        out[name] = candidate
    return out
