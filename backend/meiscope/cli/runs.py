"""Commands that find preferred inputs and export them: am, atlas (one batched run of every unit), export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..engine.presets import ATLAS
from .app import MODEL_HELP, app, check_writable, fail, load_model_or_exit


def _option_doc(name: str) -> str:
    from ..engine.options import option_table

    for dotted, default, allowed, description in option_table():
        if dotted == name:
            return f"{description} (config {dotted}; default {default}; {allowed or 'any'})"
    raise KeyError(name)


def _parse_units(text: str) -> list[int] | str:
    """'3', '3,5,10-19', 'all' or 'active' -> a list of unit indices (or the keyword)."""
    if text in ("all", "active"):
        return text
    units: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                units.extend(range(int(lo), int(hi) + 1))
            else:
                units.append(int(part))
    except ValueError:
        fail(f"--unit must be a number, a list like 3,5,10-19, 'all' or 'active', got {text!r}")
    return units


def _flag_layer(unit: Optional[str], method: Optional[str], steps: Optional[int], seed: Optional[int],
                samples: Optional[int], optimizer: Optional[str], lr: Optional[float], jitter: Optional[str],
                gamma: Optional[float], elbo_weight: Optional[float], layer: Optional[str]) -> tuple[dict, Optional[str]]:
    """The config values that flags set explicitly (an unset flag leaves the file's or the default value), and
    the unit set's name ('all' or 'active') when --unit names one: it is resolved once the model is loaded."""
    flags: dict = {}
    unit_set = None
    if unit is not None:
        units = _parse_units(unit)
        if isinstance(units, str):
            unit_set = units
        else:
            flags["unit"] = units[0] if len(units) == 1 else units
    for key, value in (("method", method), ("steps", steps), ("seed", seed), ("samples", samples), ("layer", layer)):
        if value is not None:
            flags[key] = value
    sections = {"optimizer": {"name": optimizer, "lr": lr}, "pre": {"jitter": jitter}, "grad": {"gamma": gamma},
                "obj": {"elbo_weight": elbo_weight}}
    for section, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            flags[section] = values
    return flags, unit_set


def _unit_set(model, layer: str, name: str) -> list[int]:
    """The units of `layer` that `name` ('all' or 'active') stands for in the loaded model."""
    try:
        units = model.layer(layer).units
    except ValueError as exc:
        fail(str(exc))
    if name == "all":
        return list(range(units))
    census = model.census(layer)
    if census is None:
        fail(f"--unit active needs a unit census of layer {layer} (a model card beside the weights)")
    return [r["unit"] for r in census if r["status"] == "active"]


def _run_and_save(defaults: dict, config_file: Optional[Path], flags: dict, unit_set: Optional[str], sets: list[str],
                  out: Path, model_spec: Optional[str], device: str, figures: bool) -> None:
    from ..engine.options import ConfigError, build_config, parse_assignment, read_config_file

    try:  # checked before torch and the model load, so that a typo costs no wait
        file_layer = read_config_file(config_file) if config_file else {}
        assignments = [parse_assignment(s) for s in sets]
        config = build_config(defaults, file_layer, flags, *assignments)
    except ConfigError as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    check_writable(out.parent, "--out")
    from ..engine.loop import run
    from ..engine.model_check import ConfigMismatch, check_config
    from ..presentation.figures import save_with_figures

    model = load_model_or_exit(model_spec, device)
    layer_given = any("layer" in part for part in (file_layer, flags, *assignments))
    changes = {} if layer_given else {"layer": model.default_layer}  # the model's own first layer
    if unit_set is not None:
        changes["unit"] = _unit_set(model, changes.get("layer", config.layer), unit_set)
    try:
        if changes:
            config = build_config(config.model_dump(mode="json", exclude_none=True), changes)
        check_config(config, model)
    except (ConfigError, ConfigMismatch) as exc:
        fail(str(exc))
    result = run(model, config, progress=True)
    if figures:
        save_with_figures(result, out)
    else:
        result.save(out)
    act = result.final_activation
    typer.echo(f"{config.method}: {len(result.rows)} row(s), {config.steps} steps in {result.info['wall_s']:.1f} s; "
               f"final activation mean {act.mean():.3g} (min {act.min():.3g}, max {act.max():.3g}); saved to {out}")
    print_checks(result)


def print_checks(result, most: int = 20) -> None:
    """The checks of each row, a line each (the first `most` rows, then a tally)."""
    from ..engine.checks import summary_lines

    for line in summary_lines(result.rows, result.checks, result.config.samples, most):
        typer.echo(line)


def _am_options():
    """Shared typer options of `am` and `atlas` (flags that are left out keep the config's value)."""
    return dict(
        method=typer.Option(None, help=_option_doc("method")),
        steps=typer.Option(None, help=_option_doc("steps")),
        seed=typer.Option(None, help=_option_doc("seed")),
        samples=typer.Option(None, help=_option_doc("samples")),
        layer=typer.Option(None, help=_option_doc("layer")),
        optimizer=typer.Option(None, help=_option_doc("optimizer.name")),
        lr=typer.Option(None, help=_option_doc("optimizer.lr")),
        jitter=typer.Option(None, help=_option_doc("pre.jitter")),
        gamma=typer.Option(None, help=_option_doc("grad.gamma")),
        elbo_weight=typer.Option(None, help=_option_doc("obj.elbo_weight")),
        config=typer.Option(None, "--config", help="AMConfig as a JSON file (flags and --set override it)."),
        set_=typer.Option([], "--set", help="NAME=VALUE for any option below, e.g. --set post.blur_sigma=0.5 "
                                            "(repeatable; VALUE is JSON when it parses)."),
        model=typer.Option(None, help=MODEL_HELP),
        device=typer.Option("auto", help="auto (CUDA when present), cpu, cuda or cuda:N."),
        figures=typer.Option(True, help="Also write PNG figures into OUT/figures."),
    )


def _options_epilog() -> str:
    from ..engine.options import option_help

    # \b keeps click from re-wrapping the table
    return "\b\n" + option_help()


def _add_am_command(name: str, unit_default: str, out_default: Path, defaults: dict, doc: str) -> None:
    """Register `am` or `atlas`: the same options, different defaults."""
    o = _am_options()

    def command(
        unit: str = typer.Option(unit_default, help="Unit(s): 3, a list 3,5,10-19, 'all' or 'active' (one batched run)."),
        out: Path = typer.Option(out_default, help="Folder for run.json, arrays.npz, config.json and figures/."),
        method: Optional[str] = o["method"], steps: Optional[int] = o["steps"], seed: Optional[int] = o["seed"],
        samples: Optional[int] = o["samples"], layer: Optional[str] = o["layer"],
        optimizer: Optional[str] = o["optimizer"], lr: Optional[float] = o["lr"], jitter: Optional[str] = o["jitter"],
        gamma: Optional[float] = o["gamma"], elbo_weight: Optional[float] = o["elbo_weight"],
        config: Optional[Path] = o["config"], set_: list[str] = o["set_"], model: Optional[str] = o["model"],
        device: str = o["device"], figures: bool = o["figures"],
    ) -> None:
        flags, unit_set = _flag_layer(unit, method, steps, seed, samples, optimizer, lr, jitter, gamma, elbo_weight,
                                      layer)
        _run_and_save(defaults, config, flags, unit_set, set_, out, model, device, figures)

    command.__doc__ = doc
    app.command(name, epilog=_options_epilog())(command)


_add_am_command("am", "0", Path("runs/am"), {},
                "Find the preferred input of one unit or a list of units (a list is one batched run).\n\n"
                "Every method and option, what it does and when to use it: docs/METHODS.md; the model: docs/MODEL.md.")
_add_am_command("atlas", "all", Path("runs/atlas"), ATLAS,
                "Preferred inputs of every unit of a layer in one batched run (the default configuration, recorded "
                "more sparsely: snapshots every 50 steps, the ELBO every 10).")


@app.command()
def export(
    run_dirs: list[Path] = typer.Argument(..., help="Saved run folders (from `meiscope am`, `atlas` or the server), "
                                         "or one sweep folder (runs/sweeps/NAME)."),
    out: Path = typer.Option(Path("meiscope-figures.zip"), help="The zip to write."),
) -> None:
    """A figure set for papers: PNG/SVG/PDF figures, config.json, arrays.npz and metrics.csv of each run (of a
    sweep: a batched run per grid point, plus its summary and sheets)."""
    from ..engine import Run
    from ..presentation.export import write_export

    if out.is_dir():
        fail(f"--out {out} is a folder: give the zip's file name, e.g. --out {out / 'figures.zip'}")
    check_writable(out.parent, "--out")
    if len(run_dirs) == 1 and (run_dirs[0] / "sweep.json").is_file():
        from ..sweep.export import export_sweep
        from ..sweep.store import SweepStore

        try:
            export_sweep(SweepStore(run_dirs[0].parent, run_dirs[0].name), out)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        typer.echo(f"wrote {out}: sweep {run_dirs[0].name}")
        return
    runs = {}
    for folder in run_dirs:
        try:
            runs[folder.name] = Run.load(folder)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    if len(runs) != len(run_dirs):
        fail("run folders must have different names")
    write_export(runs, out)
    typer.echo(f"wrote {out}: {len(runs)} run(s)")
