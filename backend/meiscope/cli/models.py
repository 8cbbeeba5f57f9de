"""Commands that make, import and describe models, and build their data: data natural|textures, train,
dictionary, recipe, release, import tdvae, info."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import MODEL_HELP, app, check_device, fail, load_model_or_exit

data_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build the data sets the model is trained on.")
app.add_typer(data_app, name="data")


@data_app.command("natural")
def data_natural(
    n: int = typer.Option(640_000, min=1024, max=10_000_000, help="Training patches."),
    n_heldout: int = typer.Option(32_768, min=1024, max=1_000_000, help="Held-out patches (from held-out images)."),
    seed: int = typer.Option(0, min=0, help="Seed: the same seed gives the same set, byte for byte."),
    f0: float = typer.Option(0.4, min=0.05, max=0.5, help="Whitening cutoff in cycles/pixel."),
    root: Optional[Path] = typer.Option(None, help="Cache folder (default: $MEISCOPE_DATA or ./data)."),
) -> None:
    """Whitened 40x40 natural-image patches, cached on disk; prints the folder and content hashes."""
    from ..data.patches import PatchSetParams, build_natural, params_key
    from ..data.patches import default_data_root

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
    from ..data.textures import TextureParams, build_textures
    from ..presentation.card import read_card
    from ..model.checkpoint import DEFAULT_MODEL_DIR

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
    z2_free_bits_per: str = typer.Option("unit", help="unit (each z2 unit's KL floored) or layer (the layer's KL "
                                         "floored at the free bits x 250)."),
    encoder_start: str = typer.Option("energy", help="With --init-dictionary, how the encoder starts: energy "
                                      "(softplus of +code and -code), signed (the code itself) or random."),
) -> None:
    """Train TDVAE-40 (resumes from OUT when it holds a checkpoint). Schedules follow the steps or, with
    --max-minutes, the training time, whichever is further along."""
    from ..data.patches import PatchSetParams
    from ..reference.dictionary import ENCODER_STARTS
    from ..reference.train import FREE_BITS_PER, TrainConfig
    from ..reference.train import train as run_training

    check_device(device)
    if encoder_start not in ENCODER_STARTS:
        fail(f"--encoder-start must be one of {', '.join(ENCODER_STARTS)}, got {encoder_start!r}")
    if z2_free_bits_per not in FREE_BITS_PER:
        fail(f"--z2-free-bits-per must be unit or layer, got {z2_free_bits_per!r}")
    if precision not in ("float32", "bfloat16"):
        fail(f"--precision must be float32 or bfloat16, got {precision!r}")
    if init_from is not None and init_dictionary is not None:
        fail("--init-from and --init-dictionary are two different starts: give one")
    if init_dictionary is not None and not (init_dictionary / "dictionary.json").is_file():
        fail(f"--init-dictionary: no dictionary at {init_dictionary} (run `meiscope dictionary --out {init_dictionary}`)")
    config = TrainConfig(steps=steps, batch=batch, lr=lr, lr_decay_start=lr_decay_start, lr_final_frac=lr_final_frac,
                         beta_start=beta_start, beta_warmup_frac=beta_warmup_frac, z2_free_bits=z2_free_bits,
                         z2_free_bits_until=z2_free_bits_until, z2_free_bits_per=z2_free_bits_per,
                         encoder_start=encoder_start, freeze_decoder=freeze_decoder, clip_norm=clip_norm,
                         precision=precision, seed=seed, device=device, max_minutes=max_minutes,
                         init_from=None if init_from is None else str(init_from),
                         init_dictionary=None if init_dictionary is None else str(init_dictionary),
                         data=PatchSetParams(n_train=n_train))
    from ..model.checkpoint import CheckpointError

    try:
        folder = run_training(config, out, resume=not fresh)
    except CheckpointError as exc:  # only --init-from loads a checkpoint here
        fail(f"--init-from: {exc}")
    typer.echo(f"training state in {folder}")


@app.command()
def dictionary(
    out: Path = typer.Option(Path("runs/dictionary"), help="Folder for dictionary.safetensors and dictionary.json."),
    method: str = typer.Option("ica", help="ica (FastICA on the signal subspace), ica_refined (its atoms completed to "
                                           "1800 by sparse coding) or sparse_coding (Olshausen-Field, FISTA codes)."),
    patches: int = typer.Option(40_000, min=1000, max=640_000, help="Training patches to learn from."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
    seed: int = typer.Option(0, min=0, help="Seed."),
) -> None:
    """Stage 1 of the recipe: a sparse dictionary for W from whitened training patches."""
    from ..data.patches import PatchSetParams, build_natural
    from ..reference.machine import machine_description
    from ..reference.dictionary import METHODS, dictionary_command, fit_dictionary, gabor_share, patches_for_dictionary

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
    dictionary: str = typer.Option("ica", help="Dictionary method: ica, ica_refined (ICA completed to 1800 atoms "
                                               "by sparse coding) or sparse_coding."),
    dictionary_patches: int = typer.Option(40_000, min=1000, max=640_000, help="Patches the dictionary learns from."),
    dictionary_atoms: Optional[int] = typer.Option(None, min=2, max=1800, help="Atoms (default: ica the signal "
                                                   "dimensions, at most 1600; sparse_coding 1800)."),
    inference_minutes: float = typer.Option(20.0, min=0.05, help="Minutes of the inference stage (W frozen)."),
    batch: int = typer.Option(256, min=1, max=65_536, help="Patches per training step."),
    inference_lr: float = typer.Option(2e-4, min=1e-7, max=1e-2, help="Adam learning rate, inference stage."),
    joint_lr: float = typer.Option(1e-4, min=1e-7, max=1e-2, help="Adam learning rate, joint stage."),
    free_bits: float = typer.Option(0.1, min=0.0, max=10.0, help="Free bits per z2 unit against collapse."),
    free_bits_until: float = typer.Option(0.6, min=0.01, max=1.0, help="Share of the joint stage over which the "
                                          "free bits fall to 0."),
    free_bits_per: str = typer.Option("unit", help="unit (each z2 unit's KL floored) or layer (the layer's KL "
                                      "floored at free bits x 250)."),
    encoder_start: str = typer.Option("energy", help="How the dictionary starts the encoder: energy (softplus of "
                                      "+code and -code), signed (the code itself) or random."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Cap each training stage's steps as well as its time."),
    seed: int = typer.Option(0, min=0, help="Seed of every stage."),
    device: str = typer.Option("auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
) -> None:
    """The reference model from nothing: data, dictionary, inference, joint training and release, each stage
    resumable (rerun the same command after an interruption)."""
    from ..data.patches import PatchSetParams
    from ..reference.dictionary import ENCODER_STARTS, METHODS
    from ..reference.recipe import RecipeConfig, run_recipe
    from ..reference.train import FREE_BITS_PER

    check_device(device)
    if dictionary not in METHODS:
        fail(f"--dictionary must be one of {', '.join(METHODS)}, got {dictionary!r}")
    if encoder_start not in ENCODER_STARTS:
        fail(f"--encoder-start must be one of {', '.join(ENCODER_STARTS)}, got {encoder_start!r}")
    if free_bits_per not in FREE_BITS_PER:
        fail(f"--free-bits-per must be unit or layer, got {free_bits_per!r}")
    if inference_minutes >= minutes:
        fail(f"--inference-minutes {inference_minutes} leaves nothing of --minutes {minutes} for the joint stage")
    config = RecipeConfig(minutes=minutes, dictionary=dictionary, dictionary_patches=dictionary_patches,
                          dictionary_atoms=dictionary_atoms, inference_minutes=inference_minutes, batch=batch,
                          inference_lr=inference_lr, joint_lr=joint_lr, free_bits=free_bits, seed=seed, device=device,
                          free_bits_until=free_bits_until, free_bits_per=free_bits_per, encoder_start=encoder_start,
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
def ablate(
    arm: Optional[list[str]] = typer.Option(None, help="An arm to train and measure (repeat for several; none: "
                                            "only the table and figure of the arms measured so far)."),
    out: Path = typer.Option(Path("runs/ablation"), help="Folder for the arms and ablation.json (resumes)."),
    dictionaries: Path = typer.Option(Path("runs/ablation/dictionaries"), help="Shared dictionaries (fitted once)."),
    inference_steps: int = typer.Option(600, min=1, help="Steps of each arm's inference stage (W frozen)."),
    joint_steps: int = typer.Option(1500, min=1, help="Steps of each arm's joint stage."),
    seed: int = typer.Option(0, min=0, help="Seed of the arms' training."),
    figure: Optional[Path] = typer.Option(None, help="Also draw every measured arm's curves into this PNG."),
    released: Optional[Path] = typer.Option(None, help="Also measure a released checkpoint folder (e.g. "
                                            "models/tdvae40) as a row of the table, named after the folder."),
) -> None:
    """Recipe ablations at a short, equal budget, each measured on the reference model's targets."""
    from ..reference.ablation import ARMS, collect, measure_released, run_arm, table, write_figure

    arm = arm or []
    unknown = [a for a in arm if a not in ARMS]
    if unknown:
        fail(f"unknown arm {unknown[0]!r}; arms: {', '.join(ARMS)}")
    if released is not None and not (released / "model_card.json").is_file():
        fail(f"--released {released} holds no model_card.json (a folder written by `meiscope release`)")
    for name in arm:
        run_arm(name, out, dictionaries, inference_steps, joint_steps, seed=seed)
    if released is not None:
        measure_released(released, out, dictionaries)
    rows = collect(out)
    if figure is not None:
        write_figure(rows, out, figure)
    typer.echo(table(rows))


@app.command()
def release(
    train_dir: Path = typer.Argument(..., help="A `meiscope train` output folder (state.safetensors)."),
    out: Path = typer.Option(Path("models/tdvae40"), help="Where the shipped checkpoint and its card go."),
    interim_note: Optional[str] = typer.Option(None, help="A warning printed at the top of the card."),
) -> None:
    """Write float16 shards of a trained model and its card, measured on held-out patches."""
    from ..reference.release import release as do_release

    if not (train_dir / "state.safetensors").is_file():
        fail(f"TRAIN_DIR {train_dir} holds no state.safetensors (run `meiscope train --out {train_dir}` first)")
    card = do_release(train_dir, out, interim_note)
    m = card["metrics"]
    typer.echo(f"wrote {out}: held-out ELBO {m['heldout']['elbo']:.1f} nats/patch, "
               f"{m['units']['n_kl_above_0.1']} z2 units above 0.1 nats, "
               f"reconstruction R2 {m['reconstruction_r2']:.3f}")


@app.command()
def card(
    model: Path = typer.Option(Path("models/tdvae40"), help="A released checkpoint folder (shards and model card)."),
) -> None:
    """Measure a released model's card again on its shipped weights (nothing is trained) and rewrite
    model_card.json, MODEL_CARD.md and the figures; where the weights come from is kept."""
    from ..reference.release import remeasure

    if not (model / "model_card.json").is_file():
        fail(f"--model {model} holds no model_card.json (a folder written by `meiscope release`)")
    try:
        written = remeasure(model)
    except ValueError as exc:
        fail(str(exc))
    m = written["metrics"]
    b = m["baselines"]
    typer.echo(f"wrote {model}: held-out ELBO {m['heldout']['elbo']:.1f} nats/patch, margin "
               f"{b['margin_over_floored_gaussian']:+.1f} over the floored Gaussian and "
               f"{b['margin_over_scale_mixture']:+.1f} over the scale mixture; "
               f"{m['texture_modulation']['n_sensitive_active']} of {m['texture_modulation']['n_active']} clearly "
               "active z2 units texture-sensitive against spectrally matched noise")


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
    from ..data.patches import PatchSetParams
    from ..model.checkpoint import CheckpointError
    from ..importers.tf_import import import_tdvae as do_import

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
    from ..presentation.card import read_card
    from ..model.checkpoint import DEFAULT_MODEL_DIR
    from ..model.factory import is_factory_spec

    factory = model is not None and is_factory_spec(model)
    loaded = load_model_or_exit(model)
    n = sum(p.numel() for p in loaded.parameters())
    shape = "x".join(str(d) for d in loaded.input.shape)
    typer.echo(f"{loaded.name} from {loaded.source.get('spec')}: {n:,} parameters" + ("" if factory else ", shards verified"))
    typer.echo(f"input {shape}; readout layers: "
               + ", ".join(f"{layer.name} ({layer.units} units)" for layer in loaded.layers.values())
               + f"; ELBO: {'yes' if loaded.has_elbo else 'no'}; methods: {', '.join(loaded.methods())}")
    for text in [loaded.description, loaded.input.description and f"input: {loaded.input.description}",
                 *(f"{layer.name}: {layer.description}" for layer in loaded.layers.values() if layer.description)]:
        if text:
            typer.echo(f"  {text}")
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
