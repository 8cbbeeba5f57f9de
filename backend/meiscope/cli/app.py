"""The `meiscope` command. User errors exit with code 2 and one line naming the problem."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find and explore the preferred inputs of units in the TDVAE-40 (or any PyTorch model: "
                       "--model package.module:factory, docs/OWN_MODEL.md).")
data_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build the data sets the model is trained on.")
app.add_typer(data_app, name="data")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def check_device(device: str) -> None:
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        fail(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


MODEL_HELP = ("Checkpoint folder, or a PyTorch model as package.module:factory (docs/OWN_MODEL.md); "
              "default: the shipped models/tdvae40.")


def _load_model(model: Optional[str | Path], device: str = "cpu"):
    """The model `model` names (a checkpoint folder or a factory; default: the shipped TDVAE) on `device`
    (auto: CUDA when present); a missing or corrupt checkpoint, a factory that fails or a bad device exits 2
    with one line."""
    import torch

    from .model.loader import load_model

    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return load_model(model, device)
    except ValueError as exc:  # CheckpointError is one
        fail(str(exc))


@data_app.command("natural")
def data_natural(
    n: int = typer.Option(640_000, min=1024, max=10_000_000, help="Training patches."),
    n_heldout: int = typer.Option(32_768, min=1024, max=1_000_000, help="Held-out patches (from held-out images)."),
    seed: int = typer.Option(0, min=0, help="Seed: the same seed gives the same set, byte for byte."),
    f0: float = typer.Option(0.4, min=0.05, max=0.5, help="Whitening cutoff in cycles/pixel."),
    root: Optional[Path] = typer.Option(None, help="Cache folder (default: $MEISCOPE_DATA or ./data)."),
) -> None:
    """Whitened 40x40 natural-image patches, cached on disk; prints the folder and content hashes."""
    from .data.patches import PatchSetParams, build_natural, params_key
    from .data.patches import default_data_root

    params = PatchSetParams(n_train=n, n_heldout=n_heldout, seed=seed, f0=f0)
    data = build_natural(params, root=root)
    folder = (root or default_data_root()) / f"natural-{params_key(params)}"
    typer.echo(f"{folder}: train {data.train.shape[0]} patches sha256 {data.meta['train_sha256'][:16]}..., "
               f"held-out {data.heldout.shape[0]} sha256 {data.meta['heldout_sha256'][:16]}...")


@data_app.command("textures")
def data_textures(
    n_synth: int = typer.Option(3, min=2, max=50, help="Syntheses per family (decoding is held out by synthesis)."),
    size: int = typer.Option(128, min=64, max=512, help="Synthesis size in pixels (a power of two)."),
    iters: int = typer.Option(300, min=10, max=10_000, help="Portilla-Simoncelli optimisation steps per synthesis."),
    patches_per_synth: int = typer.Option(200, min=10, max=10_000, help="40x40 patches cut from each synthesis."),
    seed: int = typer.Option(0, min=0, help="Seed of the syntheses and the patch positions."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint whose card gives the data scale (default: shipped)."),
    root: Optional[Path] = typer.Option(None, help="Cache folder (default: $MEISCOPE_DATA or ./data)."),
) -> None:
    """Five texture families synthesised with Portilla-Simoncelli (plenoptic), whitened like the natural data,
    cached on disk (minutes an image on a CPU)."""
    from .data.textures import TextureParams, build_textures
    from .model.card import read_card
    from .model.checkpoint import DEFAULT_MODEL_DIR

    if size & (size - 1):
        fail(f"--size must be a power of two, got {size}")
    try:
        scale = read_card(model or DEFAULT_MODEL_DIR)["data"]["scale"]
    except FileNotFoundError:
        fail("the model card (for the data scale) is missing")
    params = TextureParams(n_synth=n_synth, size=size, iters=iters, patches_per_synth=patches_per_synth, seed=seed)
    textures = build_textures(params, scale=scale, root=root)
    typer.echo(f"{len(textures['families'])} families x {n_synth} syntheses: {', '.join(textures['families'])}")


@app.command()
def train(
    out: Path = typer.Option(Path("runs/train"), help="Folder for the training state, metrics.csv and config."),
    steps: int = typer.Option(36_000, min=1, max=100_000_000, help="Optimiser steps."),
    batch: int = typer.Option(512, min=1, max=65_536, help="Patches per step."),
    lr: float = typer.Option(2e-4, min=1e-7, max=1e-2, help="Adam learning rate."),
    lr_decay_start: float = typer.Option(0.25, min=0.0, max=1.0,
                                         help="Fraction of the steps after which lr falls linearly..."),
    lr_final_frac: float = typer.Option(0.05, min=0.0, max=1.0, help="...to this fraction of --lr at the last step."),
    beta_start: float = typer.Option(0.1, min=0.0, max=1.0, help="Initial weight of the z2 KL."),
    beta_warmup_frac: float = typer.Option(0.4, min=0.0, max=1.0, help="Fraction of steps to warm beta up to 1."),
    clip_norm: float = typer.Option(1000.0, min=1e-3, help="Gradient-norm clip."),
    precision: str = typer.Option("float32", help="float32, or bfloat16: the nets' products under autocast, the "
                                  "ELBO's sums in float32 (docs/BENCHMARKS.md: slower on CPUs without fast bfloat16)."),
    seed: int = typer.Option(0, min=0, help="Seed of initialisation and batches."),
    device: str = typer.Option("auto", help="auto (CUDA with TF32 when present, else CPU), cpu, cuda, cuda:N."),
    max_minutes: Optional[float] = typer.Option(None, min=0.1, help="Stop with a checkpoint after this wall time."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming from OUT."),
    init_from: Optional[Path] = typer.Option(None, help="Start from the weights in this checkpoint folder (e.g. "
                                             "models/tdvae40) with a fresh optimiser; combine with --beta-start 1."),
    init_dictionary: Optional[Path] = typer.Option(None, help="Start from a `meiscope dictionary` folder: W from its "
                                                   "atoms, nets a and d passing its linear code through."),
    freeze_decoder: bool = typer.Option(False, help="Keep W and its bias fixed (train nets a-e only)."),
    z2_free_bits: float = typer.Option(0.0, min=0.0, max=10.0, help="Nats per z2 unit not charged below "
                                       "(free bits, against posterior collapse)..."),
    z2_free_bits_until: float = typer.Option(1.0, min=1e-3, help="...falling linearly to 0 at this fraction of the run "
                                             "(above 1: never reaches 0)."),
) -> None:
    """Train TDVAE-40 (resumes from OUT when it holds a checkpoint). Schedules follow the steps or, with
    --max-minutes, the training time, whichever is further along."""
    from .data.patches import PatchSetParams
    from .train import TrainConfig
    from .train import train as run_training

    check_device(device)
    if precision not in ("float32", "bfloat16"):
        fail(f"--precision must be float32 or bfloat16, got {precision!r}")
    if init_from is not None and init_dictionary is not None:
        fail("--init-from and --init-dictionary are two different starts: give one")
    if init_dictionary is not None and not (init_dictionary / "dictionary.json").is_file():
        fail(f"--init-dictionary: no dictionary at {init_dictionary} (run `meiscope dictionary --out {init_dictionary}`)")
    config = TrainConfig(steps=steps, batch=batch, lr=lr, lr_decay_start=lr_decay_start, lr_final_frac=lr_final_frac,
                         beta_start=beta_start, beta_warmup_frac=beta_warmup_frac, z2_free_bits=z2_free_bits,
                         z2_free_bits_until=z2_free_bits_until, freeze_decoder=freeze_decoder,
                         clip_norm=clip_norm, precision=precision, seed=seed, device=device, max_minutes=max_minutes,
                         init_from=None if init_from is None else str(init_from),
                         init_dictionary=None if init_dictionary is None else str(init_dictionary),
                         data=PatchSetParams(n_train=n_train))
    from .model.checkpoint import CheckpointError

    try:
        folder = run_training(config, out, resume=not fresh)
    except CheckpointError as exc:  # only --init-from loads a checkpoint here
        fail(f"--init-from: {exc}")
    typer.echo(f"training state in {folder}")


@app.command()
def dictionary(
    out: Path = typer.Option(Path("runs/dictionary"), help="Folder for dictionary.safetensors and dictionary.json."),
    method: str = typer.Option("ica", help="ica (FastICA on the signal subspace) or sparse_coding (Olshausen-Field, "
                                           "FISTA codes)."),
    patches: int = typer.Option(40_000, min=1000, max=640_000, help="Training patches to learn from."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
    seed: int = typer.Option(0, min=0, help="Seed."),
) -> None:
    """Stage 1 of the recipe: a sparse dictionary for W from whitened training patches."""
    from .data.patches import PatchSetParams, build_natural
    from .machine import machine_description
    from .model.dictionary import METHODS, dictionary_command, fit_dictionary, gabor_share, patches_for_dictionary

    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    data = build_natural(PatchSetParams(n_train=n_train))
    if patches > len(data.train):
        fail(f"--patches {patches} exceeds the {len(data.train)} training patches")
    fitted = fit_dictionary(method, patches_for_dictionary(data.train, patches), seed=seed, progress=True)
    share, median = gabor_share(fitted.atoms)
    fitted.info.update(machine=machine_description("cpu"), gabor_share=share, gabor_median_r2=median,
                       command=dictionary_command(method, patches, seed, out))
    fitted.save(out)
    typer.echo(f"wrote {out}: {fitted.n_atoms} atoms by {method} in {fitted.seconds:.0f} s, "
               f"{share:.0%} Gabor-like (median R2 {median:.2f})")


@app.command()
def recipe(
    out: Path = typer.Option(Path("runs/recipe"), help="Folder for every stage (resumes what is there)."),
    release_to: Optional[Path] = typer.Option(Path("models/tdvae40"), "--release",
                                              help="Release the result here (the shipped checkpoint by default)."),
    minutes: float = typer.Option(150.0, min=5.0, help="Time budget of the whole recipe; the joint stage gets the rest."),
    dictionary: str = typer.Option("ica", help="Dictionary method: ica or sparse_coding."),
    dictionary_patches: int = typer.Option(40_000, min=1000, max=640_000, help="Patches the dictionary learns from."),
    dictionary_atoms: Optional[int] = typer.Option(None, min=2, max=1800, help="Atoms (default: ica the signal "
                                                   "dimensions, at most 1600; sparse_coding 1800)."),
    inference_minutes: float = typer.Option(20.0, min=0.05, help="Minutes of the inference stage (W frozen)."),
    batch: int = typer.Option(256, min=1, max=65_536, help="Patches per training step."),
    inference_lr: float = typer.Option(2e-4, min=1e-7, max=1e-2, help="Adam learning rate, inference stage."),
    joint_lr: float = typer.Option(1e-4, min=1e-7, max=1e-2, help="Adam learning rate, joint stage."),
    free_bits: float = typer.Option(0.1, min=0.0, max=10.0, help="Free bits per z2 unit against collapse."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Cap each training stage's steps as well as its time."),
    seed: int = typer.Option(0, min=0, help="Seed of every stage."),
    device: str = typer.Option("auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
) -> None:
    """The reference model from nothing: data, dictionary, inference, joint training and release, each stage
    resumable (rerun the same command after an interruption)."""
    from .data.patches import PatchSetParams
    from .model.dictionary import METHODS
    from .recipe import RecipeConfig, run_recipe

    check_device(device)
    if dictionary not in METHODS:
        fail(f"--dictionary must be one of {', '.join(METHODS)}, got {dictionary!r}")
    if inference_minutes >= minutes:
        fail(f"--inference-minutes {inference_minutes} leaves nothing of --minutes {minutes} for the joint stage")
    config = RecipeConfig(minutes=minutes, dictionary=dictionary, dictionary_patches=dictionary_patches,
                          dictionary_atoms=dictionary_atoms, inference_minutes=inference_minutes, batch=batch,
                          inference_lr=inference_lr, joint_lr=joint_lr, free_bits=free_bits, seed=seed, device=device,
                          max_steps=max_steps, data=PatchSetParams(n_train=n_train))
    record = run_recipe(config, out, release_to)
    for name, st in record["stages"].items():
        typer.echo(f"{name}: {st['seconds'] / 60:.1f} min")
    if "card" in record:
        m = record["card"]["metrics"]
        typer.echo(f"released {release_to}: held-out ELBO {m['heldout']['elbo']:.1f} nats/patch "
                   f"(margin {m['baselines']['margin_over_floored_gaussian']:+.1f}), "
                   f"{m['units']['n_kl_above_0.1']} z2 units above 0.1 nats, "
                   f"{m['projective_fields']['fraction_gabor_like']:.0%} Gabor-like fields")


@app.command()
def release(
    train_dir: Path = typer.Argument(..., help="A `meiscope train` output folder (state.safetensors)."),
    out: Path = typer.Option(Path("models/tdvae40"), help="Where the shipped checkpoint and its card go."),
    interim_note: Optional[str] = typer.Option(None, help="A warning printed at the top of the card."),
) -> None:
    """Write float16 shards of a trained model and its card, measured on held-out patches."""
    from .model.release import release as do_release

    if not (train_dir / "state.safetensors").is_file():
        fail(f"TRAIN_DIR {train_dir} holds no state.safetensors (run `meiscope train --out {train_dir}` first)")
    card = do_release(train_dir, out, interim_note)
    m = card["metrics"]
    typer.echo(f"wrote {out}: held-out ELBO {m['heldout']['elbo']:.1f} nats/patch, "
               f"{m['units']['n_kl_above_0.1']} z2 units above 0.1 nats, "
               f"reconstruction R2 {m['reconstruction_r2']:.3f}")


import_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Import models trained elsewhere.")
app.add_typer(import_app, name="import")


@import_app.command("tdvae")
def import_tdvae(
    checkpoint: Path = typer.Argument(..., help="TensorFlow checkpoint prefix (PREFIX of PREFIX.index and "
                                      "PREFIX.data-*), or a folder holding one."),
    out: Path = typer.Option(..., help="Where the release folder (shards, manifest, model card) goes, e.g. models/NAME."),
    name: Optional[str] = typer.Option(None, help="The model's name (default: its sizes, e.g. 'TDVAE (x 1600, ...)')."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches of the data set (the baselines' covariance)."),
    n_heldout: int = typer.Option(32_768, min=1024, help="Held-out patches the card is measured on."),
) -> None:
    """Import a published TensorFlow TDVAE checkpoint: float16 shards in meiscope's release format and a card
    measured on meiscope's held-out natural patches (the weights were trained elsewhere, on other data)."""
    from .data.patches import PatchSetParams
    from .model.checkpoint import CheckpointError
    from .model.tf_import import import_tdvae as do_import

    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    try:
        card = do_import(checkpoint, out, name, PatchSetParams(n_train=n_train, n_heldout=n_heldout))
    except (CheckpointError, ValueError) as exc:
        fail(str(exc))
    m = card["metrics"]
    step = card["training"]["global_step"]
    typer.echo(f"wrote {out}: {card['model']} from {card['training']['source']}"
               + (f" (global step {step:,})" if step is not None else "")
               + f", held-out ELBO {m['heldout']['elbo']:.1f} nats/patch, "
               f"{m['units']['n_kl_above_0.1']} z2 units above 0.1 nats, reconstruction R2 {m['reconstruction_r2']:.3f}")


@app.command()
def info(
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
) -> None:
    """Load the model, check its shards, and print what it offers and its card's summary."""
    from .model.card import read_card
    from .model.checkpoint import DEFAULT_MODEL_DIR
    from .model.factory import is_factory_spec

    factory = model is not None and is_factory_spec(model)
    loaded = _load_model(model)
    n = sum(p.numel() for p in loaded.parameters())
    shape = "x".join(str(d) for d in loaded.input.shape)
    typer.echo(f"{loaded.name} from {loaded.source.get('spec')}: {n:,} parameters" + ("" if factory else ", shards verified"))
    typer.echo(f"input {shape}; readout layers: "
               + ", ".join(f"{layer.name} ({layer.units} units)" for layer in loaded.layers.values())
               + f"; ELBO: {'yes' if loaded.has_elbo else 'no'}; methods: {', '.join(loaded.methods())}")
    if factory:
        return
    folder = Path(model) if model else DEFAULT_MODEL_DIR
    try:
        card = read_card(folder)
    except FileNotFoundError:
        typer.echo("(no model card beside the weights)")
        return
    m, t = card["metrics"], card["training"]
    if t.get("interim_note"):
        typer.echo(f"NOTE: {t['interim_note']}")
    if t.get("imported"):  # `meiscope import tdvae`: trained elsewhere
        step = t.get("global_step")
        typer.echo(f"imported from {t['source']}" + (f" at global step {step:,}" if step is not None else "")
                   + f"; trained elsewhere, on other data, by {t['trained_by']}")
    else:
        typer.echo(f"trained {t.get('total_steps', t['steps']):,} steps on {t['machine']} in "
                   f"{t.get('total_wall_s', t['wall_s']) / 60:.0f} min")
    if t.get("recipe"):
        typer.echo(f"reproduce: {t['recipe']['command']}")
    typer.echo(f"held-out ELBO {m['heldout']['elbo']:.1f} nats/patch "
               f"(floored-Gaussian baseline {m['baselines']['floored_gaussian']:.1f}, "
               f"margin {m['baselines']['margin_over_floored_gaussian']:+.1f})")
    typer.echo(f"z2 units: {m['units']['n_active_kl_above_0.01']} active, {m['units']['n_kl_above_0.1']} above 0.1 nats; "
               f"Gabor-like projective fields {m['projective_fields']['fraction_gabor_like']:.0%}; "
               f"reconstruction R2 {m['reconstruction_r2']:.3f}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Any address but loopback needs a token."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    runs_dir: Optional[Path] = typer.Option(Path("runs/server"), help="Where finished runs are saved."),
    sweeps_dir: Path = typer.Option(Path("runs/sweeps"), help="Stored sweeps the page lists (`meiscope sweep --out`)."),
    max_running: int = typer.Option(2, min=1, max=16, help="Runs at once; later ones queue."),
    cache_dir: Path = typer.Option(Path("cache"), help="Where the unit atlas is cached (built on first start)."),
    atlas: bool = typer.Option(True, help="Build the unit atlas of the start page (--no-atlas: skip it)."),
    token: Optional[str] = typer.Option(None, envvar="MEISCOPE_TOKEN",
                                        help="Access token (16-128 URL-safe characters, or 'generate'): every "
                                             "request then needs it. Required when --host is not loopback."),
) -> None:
    """Start the dashboard server (REST API, websocket runs, and the page when frontend/ is present)."""
    import secrets

    from .server.guard import LOOPBACK_HOSTS, is_loopback

    if token == "generate":
        token = secrets.token_urlsafe(24)
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", token):
        fail("--token must be 16 to 128 characters from A-Z a-z 0-9 . _ ~ - (or 'generate')")
    loopback = is_loopback(host)
    if not loopback and token is None:
        fail(f"refusing to serve on {host}, which other machines can reach, without a token: "
             "add --token generate (or set MEISCOPE_TOKEN)")
    if atlas:
        _check_writable(cache_dir, "--cache-dir")
    if runs_dir is not None:
        _check_writable(runs_dir, "--runs-dir")

    import uvicorn

    from .server.app import create_app

    loaded = _load_model(model)  # fail here, with one line, rather than inside the server
    if not loopback:
        typer.echo(f"warning: serving on {host}: anyone who can reach this port and has the token can run "
                   "jobs on this machine", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"meiscope: http://{shown}:{port}/{'?token=' + token if token else ''}  (API docs at /docs)")
    app_ = create_app(model, runs_dir, max_running, cache_dir if atlas else None, token=token,
                      allowed_hosts=[*LOOPBACK_HOSTS, host] if loopback else None, sweeps_dir=sweeps_dir,
                      model=loaded)
    uvicorn.run(app_, host=host, port=port, log_level="warning", ws_max_size=1 << 20)


def _check_writable(folder: Path, option: str) -> None:
    """A folder the server will write to: made now, so that a read-only or full disk is one clear line."""
    import tempfile

    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        fail(f"{option}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:
            f.write(b"x" * 4096)
            f.flush()
    except OSError as exc:
        fail(f"{option} {folder} is not writable: {exc.strerror or exc}")


@app.command()
def export(
    run_dirs: list[Path] = typer.Argument(..., help="Saved run folders (from `meiscope am`, `atlas` or the server), "
                                         "or one sweep folder (runs/sweeps/NAME)."),
    out: Path = typer.Option(Path("meiscope-figures.zip"), help="The zip to write."),
) -> None:
    """A figure set for papers: PNG/SVG/PDF figures, config.json, arrays.npz and metrics.csv of each run (of a
    sweep: a batched run per grid point, plus its summary and sheets)."""
    from .engine import Run
    from .export import write_export

    if out.is_dir():
        fail(f"--out {out} is a folder: give the zip's file name, e.g. --out {out / 'figures.zip'}")
    _check_writable(out.parent, "--out")
    if len(run_dirs) == 1 and (run_dirs[0] / "sweep.json").is_file():
        from .sweep.export import export_sweep
        from .sweep.store import SweepStore

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


@app.command()
def analyze(
    unit: int = typer.Option(..., min=0, help="z2 unit (TDVAE-40: 0..249)."),
    out: Path = typer.Option(Path("runs/analysis"), help="Folder for analysis.json, arrays.npz and analysis.png."),
    n_sta: int = typer.Option(20_000, min=100, max=10_000_000, help="White-noise stimuli for the STA."),
    one_hot_scale: float = typer.Option(5.0, min=0.1, max=20.0, help="c in z2 = c e_i for one-hot synthesis."),
    patches: int = typer.Option(2048, min=0, max=32_768, help="Held-out patches to search for nearest ones (0: skip)."),
    seed: int = typer.Option(0, min=0, help="Seed of the preferred-input runs, the STA noise and the samples."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
) -> None:
    """Every view of one z2 unit of a TDVAE: preferred inputs over 3 seeds, STA, one-hot synthesis, best Gabor,
    nearest held-out patches, occlusion/shift/jitter probes, spectra, and how well the views agree."""
    import json

    import numpy as np

    from .analysis.report import analyze_unit, split_arrays, write_report_figure
    from .model.card import read_card
    from .model.checkpoint import DEFAULT_MODEL_DIR, atomic_write_text

    from .analysis.report import analysis_applies

    tdvae = _load_model(model)
    if not analysis_applies(tdvae):
        fail(f"analyze reads z2 units of a TDVAE (a z2 latent, one input channel); {tdvae.name} has none: "
             "use `meiscope am --model ...` for its preferred inputs")
    if unit >= tdvae.layers["z2"].units:
        fail(f"--unit must lie in 0..{tdvae.layers['z2'].units - 1}, got {unit}")
    folder = Path(tdvae.source["spec"])
    data = None
    if patches:
        from .data import build_split

        try:
            scale = read_card(folder)["data"]["scale"]
        except FileNotFoundError:
            scale = None
        data, _ = build_split("heldout", patches, scale=scale)
    report = analyze_unit(tdvae, unit, patches=data, n_sta=n_sta, one_hot_scale=one_hot_scale, seed=seed)
    numbers, arrays = split_arrays(report)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "arrays.npz", **arrays)
    atomic_write_text(out / "analysis.json", json.dumps(numbers, indent=1))
    write_report_figure(report, out / "analysis.png")
    a = report["agreement"]
    typer.echo(f"unit {unit}: preferred vs STA r={a['preferred_vs_sta']:.2f}, vs one-hot r={a['preferred_vs_one_hot']:.2f}, "
               f"across seeds r={a['across_seeds_mean']:.2f}; best Gabor activation "
               f"{report['gabor']['optimised']['activation']:.3g}; written to {out}")


def _model_and_card(model: Optional[Path]):
    """(folder, model, card) of a checkpoint folder (default: the shipped one); a user error exits 2."""
    from .model.card import read_card
    from .model.checkpoint import DEFAULT_MODEL_DIR

    folder = model or DEFAULT_MODEL_DIR
    tdvae = _load_model(folder)
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
    from .analysis.texture import ALPHA, MIN_ETA2, census_fields, texture_sensitivity
    from .data.textures import TextureParams, build_textures
    from .model.card import write_card as save_card

    folder, tdvae, card = _model_and_card(model)
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
    steps: int = typer.Option(200, min=5, max=5000, help="Steps of every run."),
    model: Optional[Path] = typer.Option(None, help="Checkpoint folder (default: the shipped models/tdvae40)."),
) -> None:
    """Measure the thesis' findings F1-F16 on the model (10 units: the 5 most and 5 least texture-sensitive
    active ones) and write FINDINGS.md with numbers, verdicts and figures."""
    import json
    import time

    from tqdm import tqdm

    from .analysis.findings import Experiments, model_label, render_findings
    from .model.checkpoint import atomic_write_text

    _, tdvae, card = _model_and_card(model)
    started = time.perf_counter()
    experiments = Experiments(tdvae, card, out, steps=steps)
    with tqdm(total=11, desc="experiments", unit="exp") as bar:
        findings = experiments.all(progress=lambda name: bar.update(1))
    seconds = time.perf_counter() - started
    record = out / "findings.json"  # the previous model's verdicts, to say which changed
    previous = json.loads(record.read_text()) if record.is_file() else None
    previous_rows = previous["findings"] if isinstance(previous, dict) else previous
    previous_model = previous.get("model") if isinstance(previous, dict) else None
    atomic_write_text(out / "FINDINGS.md", render_findings(findings, experiments, seconds, previous_rows, previous_model))
    atomic_write_text(record, json.dumps({"model": model_label(card), "findings": [f.__dict__ for f in findings]},
                                         indent=1, default=float))
    verdicts = {v: sum(f.verdict == v for f in findings) for v in ("agrees", "mixed", "disagrees")}
    typer.echo(f"wrote {out / 'FINDINGS.md'}: {verdicts} in {seconds / 60:.1f} min")


# ---- activation maximisation -----------------------------------------------------------------------
def _option_doc(name: str) -> str:
    from .engine.options import option_table

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
                samples: Optional[int], optimizer: Optional[str], lr: Optional[float], jitter: Optional[int],
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
    from .engine.options import ConfigError, build_config, parse_assignment, read_config_file

    try:  # checked before torch and the model load, so that a typo costs no wait
        file_layer = read_config_file(config_file) if config_file else {}
        assignments = [parse_assignment(s) for s in sets]
        config = build_config(defaults, file_layer, flags, *assignments)
    except ConfigError as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file, not a folder")
    _check_writable(out.parent, "--out")
    from .engine.loop import run
    from .engine.model_check import ConfigMismatch, check_config

    model = _load_model(model_spec, device)
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
    result.save(out, figures=figures)
    act = result.final_activation
    typer.echo(f"{config.method}: {len(result.rows)} row(s), {config.steps} steps in {result.info['wall_s']:.1f} s; "
               f"final activation mean {act.mean():.3g} (min {act.min():.3g}, max {act.max():.3g}); saved to {out}")


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
    from .engine.options import option_help

    # \b keeps click from re-wrapping the table
    return "\b\n" + option_help()


# the ELBO of 250 inputs every step would cost more than the optimisation itself (docs/BENCHMARKS.md)
from .engine.presets import ATLAS  # noqa: E402


def _add_am_command(name: str, unit_default: str, out_default: Path, defaults: dict, doc: str) -> None:
    """Register `am` or `atlas`: the same options, different defaults."""
    o = _am_options()

    def command(
        unit: str = typer.Option(unit_default, help="Unit(s): 3, a list 3,5,10-19, 'all' or 'active' (one batched run)."),
        out: Path = typer.Option(out_default, help="Folder for run.json, arrays.npz, config.json and figures/."),
        method: Optional[str] = o["method"], steps: Optional[int] = o["steps"], seed: Optional[int] = o["seed"],
        samples: Optional[int] = o["samples"], layer: Optional[str] = o["layer"],
        optimizer: Optional[str] = o["optimizer"], lr: Optional[float] = o["lr"], jitter: Optional[int] = o["jitter"],
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
                "Preferred inputs of every z2 unit in one batched run (atlas defaults: 200 steps, jitter 2, gamma 1, "
                "ELBO measured every 10 steps).")


# ---- sweeps --------------------------------------------------------------------------------------
@app.command()
def sweep(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML): base config, axes and units; see README 'Sweeps'."),
    out: Path = typer.Option(Path("runs/sweeps"), help="Sweeps folder: the sweep is stored in OUT/<name>."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Run the tasks on Ray: 'local' (Ray on this machine), "
                                      "'auto' (the cluster this machine joined) or the head's HOST:6379."),
    batch_size: Optional[int] = typer.Option(None, min=1, max=100_000, help="Units per task (default: the spec's "
                                             "batch_size, else all units of a config in one engine call)."),
    formats: str = typer.Option("png,svg,pdf", help="Formats of the grid sheets (comma-separated)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the spec and print the plan; run nothing."),
    model: Optional[str] = typer.Option(None, help="Checkpoint folder or package.module:factory (default: the "
                                        "shipped models/tdvae40); "
                                         "with --ray it must exist at this path on every node."),
    device: str = typer.Option("auto", help="Local backend: auto (CUDA when present), cpu, cuda or cuda:N."),
) -> None:
    """Run a grid of AM runs (units x values of config fields), resumably: runs already stored under their
    config hash are skipped. Writes every run, summary.csv/json and grid sheets (rows of units, columns of
    an axis)."""
    from .engine.options import ConfigError
    from .sweep import SweepStore, expand, plan, read_spec, run_sweep

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not chosen or not set(chosen) <= {"png", "svg", "pdf"}:
        fail(f"--formats takes png, svg and pdf, got {formats!r}")
    if not dry_run:
        _check_writable(out, "--out")
    loaded = _load_model(model, device if ray is None else "cpu")
    try:
        expansion = expand(read_spec(spec), loaded)
    except ConfigError as exc:
        fail(str(exc))
    tasks = plan(expansion, SweepStore(out, expansion.name), batch_size or expansion.spec.batch_size)
    todo = sum(len(t.config.units) for t in tasks)
    typer.echo(f"sweep {expansion.name}: {len(expansion.points)} config(s) x {len(expansion.units)} unit(s) = "
               f"{expansion.n_runs} runs; {expansion.n_runs - todo} stored, {todo} to run in {len(tasks)} task(s)"
               f"{' on Ray (' + ray + ')' if ray else ''}")
    if dry_run:
        for point in expansion.points:
            typer.echo("  " + (", ".join(f"{a}={v}" for a, v in point.values.items()) or "base config"))
        return
    if tasks and ray is not None:
        try:
            import ray as _ray  # noqa: F401  (only to say clearly when it is missing)
        except ImportError:
            fail("--ray needs Ray: pip install 'ray>=2.9'")
        from .sweep.execute import init_ray

        typer.echo(f"connecting to Ray ({ray})...")
        try:  # before the progress bar: joining a cluster that is not there fails here, in one line
            init_ray(ray)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... by case
            fail(f"--ray {ray}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
    result = run_sweep(expansion, root=out, model_dir=model, model=loaded, ray_address=ray,
                       batch_size=batch_size, formats=chosen)
    for error in result.errors:
        typer.echo(f"failed: {error}", err=True)
    typer.echo(f"stored {result.stored} run(s) in {result.wall_s:.1f} s; {result.folder}/summary.csv, "
               f"sheets/ ({len(result.sheets)} files)")
    if result.errors:
        typer.echo(f"error: {len(result.errors)} task(s) failed after their retries; run the same command "
                   "again to retry them (stored runs are skipped)", err=True)
        raise typer.Exit(code=1)


@app.command()
def sweeps(out: Path = typer.Option(Path("runs/sweeps"), help="Sweeps folder.")) -> None:
    """List the stored sweeps: axes, units and how many of their runs are stored."""
    from .sweep.store import SweepStore, list_sweeps

    names = list_sweeps(out)
    if not names:
        typer.echo(f"no sweeps in {out}")
    for name in names:
        status = SweepStore(out, name).status()
        axes = ", ".join(f"{a} ({len(v)})" for a, v in status["axes"].items()) or "no axes"
        typer.echo(f"{name}: {status['units']} units x {axes}; {status['stored']}/{status['runs']} runs stored")


def main() -> None:  # pragma: no cover - console entry point (tested through a subprocess)
    """Run the command; a usage error (a bad option or argument) is one line and exit code 2."""
    try:  # typer 0.2x carries its own copy of click
        from typer._click import exceptions as errors
    except ImportError:
        from click import exceptions as errors

    command = typer.main.get_command(app)
    try:
        code = command.main(prog_name="meiscope", standalone_mode=False)
    except errors.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        code = 0
    except errors.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        code = 2
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
