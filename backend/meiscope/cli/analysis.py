"""Commands that measure units and the model: analyze (every view of one unit), characterise (a unit as a
physiologist would), texture-units, reproduce (the thesis' findings)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import MODEL_HELP, app, fail, load_model_or_exit


@app.command()
def analyze(
    unit: int = typer.Option(..., min=0, help="Unit of the layer (TDVAE-40: z2 0..249, z1 0..1799)."),
    layer: Optional[str] = typer.Option(None, help="Layer of the unit (default: the model's first layer, z2 for the TDVAE)."),
    out: Path = typer.Option(Path("runs/analysis"), help="Folder for analysis.json, arrays.npz and analysis.png (300 dpi)."),
    n_sta: int = typer.Option(20_000, min=100, max=10_000_000, help="White-noise stimuli for the STA."),
    one_hot_scale: float = typer.Option(5.0, min=0.1, max=20.0, help="c in z = c e_i for one-hot synthesis (a latent layer)."),
    patches: int = typer.Option(2048, min=0, max=32_768, help="Data inputs to search for the nearest ones (0: skip)."),
    seed: int = typer.Option(0, min=0, help="Seed of the preferred-input runs, the STA noise and the samples."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
) -> None:
    """Every view of one unit of any layer of an image model: preferred inputs over 3 seeds, STA and gradient map,
    odd share, occlusion/shift/jitter probes, spectra, nearest and top natural data inputs (where the model has
    data), best Gabor and Gabor fit (one-channel inputs), one-hot synthesis (a latent layer: the TDVAE's z2, z1), and
    how well the views agree, each with a one-line reading."""
    from ..analysis.report import analysis_applies, analyze_unit, check_unit
    from ..presentation.readings import read_agreement, summary_line
    from ..presentation.report import write_analysis

    explored = load_model_or_exit(model)
    if not analysis_applies(explored):
        fail(f"analyze draws one- or three-channel images of at least 4 x 4 pixels; {explored.name} takes "
             f"{'x'.join(map(str, explored.input.shape))}")
    try:
        layer = check_unit(explored, layer, unit)
    except ValueError as exc:
        fail(f"--layer/--unit: {exc}")
    report = analyze_unit(explored, unit, layer=layer, n_data=patches, n_sta=n_sta, one_hot_scale=one_hot_scale,
                          seed=seed, progress=lambda stage: typer.echo(f"measuring: {stage}", err=True))
    write_analysis(report, out)
    typer.echo(summary_line(report))
    for row in read_agreement(report):
        typer.echo(f"  {row['measure']}: {row['value']}: {row['reading']}")
    typer.echo(f"written to {out} (analysis.json, arrays.npz, analysis.png at 300 dpi)")


@app.command()
def characterise(
    unit: list[int] = typer.Option(..., min=0, help="Unit to characterise; repeat for several (read in one batch)."),
    layer: Optional[str] = typer.Option(None, help="Layer of the unit (default: the model's first layer, z2 for the TDVAE)."),
    out: Path = typer.Option(Path("runs/characterisation"), help="Folder for characterisation.json, arrays.npz and "
                                                                  "characterisation.png (a sub-folder per unit when several)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
) -> None:
    """Characterise units as a physiologist would: grating tuning (orientation, spatial frequency, bandwidths),
    F1/F0 over phase (simple vs complex), the odd share under x -> -x, the contrast-response function and the blank
    response, and on data the correlation with patch contrast and the top natural inputs (docs/METHODS.md)."""
    from ..analysis.characterise import characterise_units
    from ..presentation.characterisation import summary_line, write_characterisation

    explored = load_model_or_exit(model)
    layer = layer or next(iter(explored.layers))
    if explored.input.channels not in (1, 3):
        fail(f"characterise draws gratings for one- or three-channel images; {explored.name} takes "
             f"{explored.input.channels} channels")
    try:
        records = characterise_units(explored, layer, list(dict.fromkeys(unit)),
                                     progress=lambda stage: typer.echo(f"measuring: {stage}", err=True))
    except ValueError as exc:
        fail(str(exc))
    for record in records:
        folder = out if len(records) == 1 else out / f"{layer}-{record['unit']}"
        write_characterisation(record, folder)
        typer.echo(f"{summary_line(record)}; written to {folder}")


def model_and_card(model: Optional[Path]):
    """(folder, model, card) of a checkpoint folder (default: the shipped one); a user error exits 2."""
    from ..presentation.card import read_card
    from ..model.checkpoint import DEFAULT_MODEL_DIR

    folder = model or DEFAULT_MODEL_DIR
    tdvae = load_model_or_exit(folder)
    try:
        return folder, tdvae, read_card(folder)
    except FileNotFoundError as exc:
        fail(str(exc))


@app.command("texture-units")
def texture_units(
    write_card: bool = typer.Option(False, "--write-card", help="Record the result in the model card's census."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint folder (default: the shipped models/tdvae40)."),
    root: Optional[Path] = typer.Option(None, help="Texture cache folder (default: $MEISCOPE_DATA or ./data)."),
) -> None:
    """Which z2 units carry the texture family: decoding accuracy from z2, z1 and pixels, and per-unit ANOVA F,
    eta² and one-unit accuracy (needs `meiscope data textures` first; builds it otherwise)."""
    from ..analysis.texture import ALPHA, MIN_ETA2, census_fields, texture_sensitivity
    from ..data.textures import TextureParams, build_textures
    from ..presentation.card import write_card as save_card

    folder, tdvae, card = model_and_card(model)
    params = TextureParams()
    textures = build_textures(params, scale=card["data"]["scale"], root=root)
    result = texture_sensitivity(tdvae, textures["patches"], textures["families"])
    acc = result["accuracy"]
    typer.echo(f"decoding accuracy (chance {result['chance']:.2f}): z2 {acc['z2']:.3f}, z1 {acc['z1']:.3f}, "
               f"pixels {acc['pixels']:.3f}; {int(result['sensitive'].sum())} texture-sensitive z2 units")
    if write_card:
        for record in card["metrics"]["units"]["census"]:
            record.update(census_fields(result, record["unit"]))
        card["metrics"]["texture"] = {"families": result["families"], "n_synth": params.n_synth,
                                      "n_test": result["n_test"], "chance": result["chance"], "accuracy": acc,
                                      "n_sensitive": int(result["sensitive"].sum()), "alpha": ALPHA,
                                      "min_eta2": MIN_ETA2, "params": textures["params"]}
        save_card(folder, card)
        typer.echo(f"wrote the texture census into {folder}")


@app.command()
def reproduce(
    out: Path = typer.Option(Path("docs"), help="Where FINDINGS.md and figures/ go."),
    steps: int = typer.Option(200, min=5, max=5000, help="Steps of a pixel AM run (F8 runs 10x as many; the "
                                                         "transform methods half)."),
    seeds: int = typer.Option(5, min=2, max=16, help="Independent seeds (samples) per unit in every condition."),
    patches: int = typer.Option(2048, min=64, max=32_768, help="Held-out patches for the data's reference numbers "
                                                               "and the unit characterisation."),
    units: Optional[str] = typer.Option(None, help="Comma-separated z2 units (default: every clearly active one, "
                                                   "mean KL above 0.1 nats)."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint folder (default: the shipped models/tdvae40)."),
) -> None:
    """Measure the thesis' findings F1-F16 on the model (every clearly active z2 unit x several seeds, bootstrap
    95% intervals) and write FINDINGS.md with numbers, rules, verdicts and figures."""
    import json
    import time

    from tqdm import tqdm

    from ..data import build_split
    from ..reference.findings import EXPERIMENTS, Experiments
    from ..reference.findings_report import model_label, render_findings
    from ..reference.findings_stats import VERDICTS
    from ..model.checkpoint import atomic_write_text

    _, tdvae, card = model_and_card(model)
    started = time.perf_counter()
    data, _ = build_split("heldout", patches, scale=card["data"]["scale"])
    try:
        chosen = [int(u) for u in units.split(",")] if units else None
    except ValueError:
        fail(f"--units takes comma-separated integers, got {units!r}")
    experiments = Experiments(tdvae, card, out, steps=steps, seeds=seeds, units=chosen, data=data)
    with tqdm(total=EXPERIMENTS, desc="experiments", unit="exp") as bar:
        def progress(name: str, done: bool) -> None:
            bar.set_description(name)
            if done:
                bar.update(1)

        findings = experiments.all(progress=progress)
    seconds = time.perf_counter() - started
    record = out / "findings.json"  # the previous model's verdicts, to say which changed
    previous = json.loads(record.read_text()) if record.is_file() else None
    previous_rows = previous["findings"] if isinstance(previous, dict) else previous
    previous_model = previous.get("model") if isinstance(previous, dict) else None
    atomic_write_text(out / "FINDINGS.md", render_findings(findings, experiments, seconds, previous_rows, previous_model))
    atomic_write_text(record, json.dumps({"model": model_label(card), "units": experiments.units, "seeds": seeds,
                                          "unit_classes": experiments.traits, "seconds": round(seconds, 1),
                                          "seconds_per_experiment": experiments.timings,
                                          "findings": [f.__dict__ for f in findings]}, indent=1, default=float))
    verdicts = {v: sum(f.verdict == v for f in findings) for v in VERDICTS}
    typer.echo(f"wrote {out / 'FINDINGS.md'}: {verdicts} in {seconds / 60:.1f} min")
