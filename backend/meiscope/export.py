"""Figure sets for papers: a zip with, per run, figures in PNG, SVG and PDF, config.json, arrays.npz and
metrics.csv, plus a sheet of all runs side by side and a README of the contents. Written to a temporary
name and renamed, so a failed export leaves nothing behind."""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from .atomic import clean_leftovers_once, partial_prefix
from .engine.figures import write_figures, write_sheet
from .engine.result import METRICS, Run
from .plotting import FIGURE_LOCK

FORMATS = ("png", "svg", "pdf")

README = """meiscope figure set
===================

{n} run(s). For each run, a folder named after it holds:
  config.json    the AMConfig that made the run; `meiscope am --config config.json` replays it
  run.json       rows (unit, sample), status, wall time, device
  arrays.npz     images, best_images, snapshots, metric_* (steps x rows), array_* (kernels, sigma, ...)
  metrics.csv    one line per step and row: activation, runner_up, runner_up_unit, elbo, objective
  figures/       inputs, best inputs, amplitude spectra, kernels (transform methods), sigma (distribution
                 methods) and metric curves, each as .png, .svg and .pdf
sheet.png/.svg/.pdf  the final inputs of all runs side by side.

Runs: {names}
Models (name, where from, sha256 of the weights or their manifest) and software:
{models}
"""


def _models(runs: dict[str, Run]) -> str:
    """One line per distinct model and meiscope version the runs record."""
    lines = []
    for run in runs.values():
        m = run.info.get("model", {})
        line = (f"  {m.get('name', 'unknown model')}, {m.get('spec', '?')}, sha256 {m.get('sha256', '?')}; "
                f"meiscope {run.info.get('meiscope', '?')}, torch {run.info.get('torch', '?')}")
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def metrics_csv(run: Run) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(METRICS)
    writer.writerow(["step", "unit", "sample", *names])
    for step in range(len(run.metrics["activation"])):
        for i, row in enumerate(run.rows):
            values = [run.metrics[n][step, i] for n in names]
            writer.writerow([step, row["unit"], row["sample"],
                             *("" if v != v else (int(v) if n == "runner_up_unit" else f"{float(v):.6g}")
                               for n, v in zip(names, values))])
    return out.getvalue()


def write_export(runs: dict[str, Run], zip_path: str | Path, formats: tuple[str, ...] = FORMATS,
                 extra: dict[str, Path] | None = None, readme_note: str = "") -> Path:
    """Write the figure set of `runs` (name -> Run) to zip_path; `extra` (name in the zip -> a file or a
    folder) adds files such as a sweep's summary and sheets, which `readme_note` describes."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, run in runs.items():
            folder = root / name
            run.save(folder)
            (folder / "metrics.csv").write_text(metrics_csv(run))
            with FIGURE_LOCK:
                write_figures(run, folder / "figures", formats)
        with FIGURE_LOCK:
            write_sheet(list(runs.items()), root / "sheet.png", formats)
        for name, source in (extra or {}).items():
            (shutil.copytree if Path(source).is_dir() else shutil.copyfile)(source, root / name)
        (root / "README.txt").write_text(README.format(n=len(runs), names=", ".join(runs), models=_models(runs)) + readme_note)
        clean_leftovers_once(zip_path.parent)
        fd, partial = tempfile.mkstemp(prefix=partial_prefix(zip_path), dir=zip_path.parent)
        os.close(fd)
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        zf.write(path, path.relative_to(root).as_posix())
            os.replace(partial, zip_path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return zip_path
