"""The `meiscope` typer app and what its commands share: one-line failures (exit code 2), loading the model,
checking an output folder. The commands live in the modules beside this one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find and explore the preferred inputs of units in the TDVAE-40 (or any PyTorch model: "
                       "--model package.module:factory, docs/OWN_MODEL.md).")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def check_device(device: str) -> None:
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        fail(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


MODEL_HELP = ("Checkpoint folder, or a PyTorch model as package.module:factory (docs/OWN_MODEL.md); "
              "default: the shipped models/tdvae40.")


def load_model_or_exit(model: Optional[str | Path], device: str = "cpu"):
    """The model `model` names (a checkpoint folder or a factory; default: the shipped TDVAE) on `device`
    (auto: CUDA when present); a missing or corrupt checkpoint, a factory that fails or a bad device exits 2
    with one line."""
    import torch

    from ..model.loader import load_model

    check_device(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return load_model(model, device)
    except ValueError as exc:  # CheckpointError is one
        fail(str(exc))


def check_writable(folder: Path, option: str) -> None:
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

