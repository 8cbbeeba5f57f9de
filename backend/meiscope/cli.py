"""The `meiscope` command. User errors exit with code 2 and one line naming the problem."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find and explore the preferred inputs of units in the TDVAE-40.")
data_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Build the data sets the model is trained on.")
app.add_typer(data_app, name="data")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


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
    seed: int = typer.Option(0, min=0, help="Seed of initialisation and batches."),
    device: str = typer.Option("auto", help="auto (CUDA with TF32 when present, else CPU), cpu, cuda, cuda:N."),
    max_minutes: Optional[float] = typer.Option(None, min=0.1, help="Stop with a checkpoint after this wall time."),
    n_train: int = typer.Option(640_000, min=1024, help="Training patches in the data set."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming from OUT."),
    init_from: Optional[Path] = typer.Option(None, help="Start from the weights in this checkpoint folder (e.g. "
                                             "models/tdvae40) with a fresh optimiser; combine with --beta-start 1."),
) -> None:
    """Train TDVAE-40 (resumes from OUT when it holds a checkpoint)."""
    from .data.patches import PatchSetParams
    from .train import TrainConfig
    from .train import train as run_training

    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        fail(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    config = TrainConfig(steps=steps, batch=batch, lr=lr, lr_decay_start=lr_decay_start, lr_final_frac=lr_final_frac,
                         beta_start=beta_start, beta_warmup_frac=beta_warmup_frac,
                         clip_norm=clip_norm, seed=seed, device=device, max_minutes=max_minutes,
                         init_from=None if init_from is None else str(init_from),
                         data=PatchSetParams(n_train=n_train))
    from .model.checkpoint import CheckpointError

    try:
        folder = run_training(config, out, resume=not fresh)
    except CheckpointError as exc:  # only --init-from loads a checkpoint here
        fail(f"--init-from: {exc}")
    typer.echo(f"training state in {folder}")


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


@app.command()
def info(
    model: Optional[Path] = typer.Option(None, help="Checkpoint folder (default: the shipped models/tdvae40)."),
) -> None:
    """Load the model, check its shards, and print its card's summary."""
    from .model.card import read_card
    from .model.checkpoint import DEFAULT_MODEL_DIR, CheckpointError, load_model

    folder = model or DEFAULT_MODEL_DIR
    try:
        tdvae = load_model(folder)
    except CheckpointError as exc:
        fail(str(exc))
    n = sum(p.numel() for p in tdvae.parameters())
    typer.echo(f"TDVAE-40 from {folder}: {n:,} parameters, shards verified")
    try:
        card = read_card(folder)
    except FileNotFoundError:
        typer.echo("(no model card beside the weights)")
        return
    m, t = card["metrics"], card["training"]
    if t.get("interim_note"):
        typer.echo(f"NOTE: {t['interim_note']}")
    typer.echo(f"trained {t['steps']:,} steps on {t['machine']} in {t['wall_s'] / 60:.0f} min")
    typer.echo(f"held-out ELBO {m['heldout']['elbo']:.1f} nats/patch "
               f"(floored-Gaussian baseline {m['baselines']['floored_gaussian']:.1f}, "
               f"margin {m['baselines']['margin_over_floored_gaussian']:+.1f})")
    typer.echo(f"z2 units: {m['units']['n_active_kl_above_0.01']} active, {m['units']['n_kl_above_0.1']} above 0.1 nats; "
               f"Gabor-like projective fields {m['projective_fields']['fraction_gabor_like']:.0%}; "
               f"reconstruction R2 {m['reconstruction_r2']:.3f}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
