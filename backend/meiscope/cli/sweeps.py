"""Commands for grids of runs: sweep (locally or on Ray), sweeps (list the stored ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, check_writable, fail, load_model_or_exit


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
    from ..engine.options import ConfigError
    from ..sweep import SweepStore, expand, plan, read_spec, run_sweep

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not chosen or not set(chosen) <= {"png", "svg", "pdf"}:
        fail(f"--formats takes png, svg and pdf, got {formats!r}")
    if not dry_run:
        check_writable(out, "--out")
    loaded = load_model_or_exit(model, device if ray is None else "cpu")
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
        from ..sweep.execute import init_ray

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
    from ..sweep.store import SweepStore, list_sweeps

    names = list_sweeps(out)
    if not names:
        typer.echo(f"no sweeps in {out}")
    for name in names:
        status = SweepStore(out, name).status()
        axes = ", ".join(f"{a} ({len(v)})" for a, v in status["axes"].items()) or "no axes"
        typer.echo(f"{name}: {status['units']} units x {axes}; {status['stored']}/{status['runs']} runs stored")
