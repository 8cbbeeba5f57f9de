"""`meiscope serve`: the dashboard server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from .app import MODEL_HELP, app, check_writable, fail, load_model_or_exit


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

    from ..server.guard import LOOPBACK_HOSTS, is_loopback

    if token == "generate":
        token = secrets.token_urlsafe(24)
    if token is not None and not re.fullmatch(r"[A-Za-z0-9._~-]{16,128}", token):
        fail("--token must be 16 to 128 characters from A-Z a-z 0-9 . _ ~ - (or 'generate')")
    loopback = is_loopback(host)
    if not loopback and token is None:
        fail(f"refusing to serve on {host}, which other machines can reach, without a token: "
             "add --token generate (or set MEISCOPE_TOKEN)")
    if atlas:
        check_writable(cache_dir, "--cache-dir")
    if runs_dir is not None:
        check_writable(runs_dir, "--runs-dir")

    import uvicorn

    from ..server.app import create_app

    loaded = load_model_or_exit(model)  # fail here, with one line, rather than inside the server
    if not loopback:
        typer.echo(f"warning: serving on {host}: anyone who can reach this port and has the token can run "
                   "jobs on this machine", err=True)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"meiscope: http://{shown}:{port}/{'?token=' + token if token else ''}  (API docs at /docs)")
    app_ = create_app(model, runs_dir, max_running, cache_dir if atlas else None, token=token,
                      allowed_hosts=[*LOOPBACK_HOSTS, host] if loopback else None, sweeps_dir=sweeps_dir,
                      model=loaded)
    uvicorn.run(app_, host=host, port=port, log_level="warning", ws_max_size=1 << 20)
