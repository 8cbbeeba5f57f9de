"""Building an AMConfig from layers of user input (a JSON file, flags, KEY=VALUE overrides), the table of
every option with its default and range, and one-line messages for invalid configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .config import AMConfig


class ConfigError(ValueError):
    """A config the user wrote is invalid; the message names the field and what it allows."""


def _bounds(info: FieldInfo) -> str:
    lo = hi = None
    open_lo = False
    for meta in info.metadata:
        if getattr(meta, "ge", None) is not None:
            lo = meta.ge
        if getattr(meta, "gt", None) is not None:
            lo, open_lo = meta.gt, True
        if getattr(meta, "le", None) is not None:
            hi = meta.le
    if isinstance(info.json_schema_extra, dict):  # schedule fields carry their range here
        lo, hi = info.json_schema_extra.get("minimum", lo), info.json_schema_extra.get("maximum", hi)
    if lo is None and hi is None:
        return ""
    def fmt(v) -> str:
        return "" if v is None else str(v) if isinstance(v, int) else f"{v:g}"

    return f"{'(' if open_lo else '['}{fmt(lo)}, {fmt(hi)}]"


def _choices(info: FieldInfo) -> str:
    if info.annotation is bool:
        return "true|false"
    args = getattr(info.annotation, "__args__", None)
    if args and all(isinstance(a, str) for a in args):
        return "|".join(args)
    return ""


def _number_or_word(model: type[BaseModel], name: str) -> str:
    """'[0, 20] or auto' for a field that takes a bounded number or a word (pre.jitter), read off its schema."""
    branches = model.model_json_schema()["properties"][name].get("anyOf", [])
    words = [b["const"] for b in branches if "const" in b]
    numbers = [f"[{b['minimum']}, {b['maximum']}]" for b in branches if "minimum" in b and "maximum" in b]
    return " or ".join(numbers + words) if words and numbers else ""


def option_table(model: type[BaseModel] = AMConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted name, default, allowed values, description) for every leaf option of the config."""
    rows = []
    for name, info in model.model_fields.items():
        default = info.default
        if isinstance(default, BaseModel):
            rows += option_table(type(default), f"{prefix}{name}.")
            continue
        allowed = _choices(info) or _bounds(info) or _number_or_word(model, name)
        if isinstance(info.json_schema_extra, dict):  # set by schedules.bounded: the field takes a schedule
            allowed += " or a schedule"
        rows.append((prefix + name, json.dumps(default), allowed, info.description or ""))
    return rows


def option_help() -> str:
    """The option table as text, for `--help` epilogs and the docs."""
    lines = ["Every config option (set with --set NAME=VALUE or in --config FILE.json):", ""]
    for name, default, allowed, description in option_table():
        lines.append(f"  {name} = {default}  {allowed}  {description}".rstrip())
    lines += ["", 'A schedule is a number or {"kind": "linear", "start": a, "end": b}, '
                  '{"kind": "random", "low": a, "high": b} or {"kind": "constant", "value": a}.']
    return "\n".join(lines)


def parse_assignment(text: str) -> dict[str, Any]:
    """'optimizer.lr=0.05' -> {'optimizer': {'lr': 0.05}}; the value is read as JSON when it parses."""
    if "=" not in text:
        raise ConfigError(f"--set expects NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = name.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def merge(base: dict, override: dict) -> dict:
    """Nested dict merge; override wins. Returns a new dict (neither input is changed)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# the names pydantic gives the branches of a union in an error's location, and what each branch accepts
_BRANCHES = {"float": "a number", "int": "an integer", "constrained-int": "an integer", "literal": '"auto"',
             "list[int]": "a list of integers",
             "tagged-union": "a schedule ({\"kind\": \"linear\", \"start\": a, \"end\": b}, ...)"}


def _branch(part) -> str | None:
    part = str(part)
    return next((b for b in _BRANCHES if part == b or part.startswith(b + "[")), None)


def _split(loc: tuple) -> tuple[str, str | None, str]:
    """(the field, the union branch the error arose in, the place inside that branch) of an error location."""
    for k, part in enumerate(loc):
        if str(part).startswith("function-after"):
            return _split(loc[:k] + loc[k + 1:])
        branch = _branch(part)
        if branch:
            rest = loc[k + 1:]
            if branch == "tagged-union" and rest:  # the tag ('linear') names the schedule the input chose
                rest = rest[1:]
            return ".".join(map(str, loc[:k])), branch, ".".join(map(str, rest))
    return ".".join(map(str, loc)), None, ""


def _chosen(errors: list[dict]) -> dict | None:
    """Of the errors of a union's branches, the branch the input meant (a dict: a schedule; a list: a list),
    or None when it fits none of them."""
    value = errors[0].get("input")
    meant = ("tagged-union",) if isinstance(value, dict) else ("list[int]",) if isinstance(value, list) else \
        ("int", "constrained-int") if isinstance(value, int) and not isinstance(value, bool) else ()
    return next((e for e in errors if e["branch"] in meant), None)


def describe_error(exc: ValidationError) -> str:
    """One part per field, joined in one line: 'grad.gamma: must lie in [0, 4], got 9'. A field that takes
    one of several kinds (a number or a schedule) gets one message, not one per kind."""
    fields: dict[str, list[dict]] = {}
    for err in exc.errors():
        field, branch, inner = _split(err["loc"])
        fields.setdefault(field, []).append({**err, "branch": branch, "inner": inner})
    parts = []
    for field, errors in fields.items():
        err = errors[0] if len(errors) == 1 else _chosen(errors)
        if err is None:
            kinds = " or ".join(dict.fromkeys(_BRANCHES[e["branch"]] for e in errors if e["branch"]))
            parts.append(f"{field or 'config'}: must be {kinds}, got {json.dumps(errors[0].get('input'))}")
            continue
        where = ".".join(p for p in (field, err["inner"]) if p)
        parts.append(f"{where or 'config'}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def validate(data: dict) -> AMConfig:
    try:
        return AMConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from None


def read_mapping(path: Path, what: str = "config file", yaml: bool = False) -> dict:
    """The object a JSON (or, with yaml, a YAML) file holds; a ConfigError names the file and the problem."""
    if yaml:
        import yaml as yaml_module

        parse, errors, form = yaml_module.safe_load, yaml_module.YAMLError, "YAML"
    else:
        parse, errors, form = json.loads, json.JSONDecodeError, "JSON"
    try:
        data = parse(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except errors as exc:
        raise ConfigError(f"{what} {path} is not valid {form}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a {form} object")
    return data


def read_config_file(path: Path) -> dict:
    return read_mapping(path)


def build_config(*layers: dict) -> AMConfig:
    """Validate the merge of the layers (later ones win)."""
    data: dict = {}
    for layer in layers:
        data = merge(data, layer)
    return validate(data)
