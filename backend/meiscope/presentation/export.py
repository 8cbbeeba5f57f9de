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
from typing import Callable

from ..atomic import clean_leftovers_once, partial_prefix
from ..engine.checks import summary_lines
from ..engine.result import METRICS, Run
from .figures import write_figures, write_sheet
from .labels import differing_fields, flat_config, folder_names, model_name, relevant, run_labels, value_text
from .plotting import FIGURE_LOCK

FORMATS = ("png", "svg", "pdf")

README = """meiscope figure set
===================

{n} run(s). For each run, a folder named by its unit(s), method and id holds:
  config.json    the AMConfig that made the run; `meiscope am --config config.json` replays it
  run.json       rows (unit, sample), status, wall time, device, and each row's checks
  arrays.npz     images, best_images, snapshots, metric_* (steps x rows), array_* (kernels, sigma, ...),
                 natural_images and natural_activation (rows x 8: the data inputs that drive each unit most)
  metrics.csv    one line per step and row: activation, runner_up, runner_up_unit, elbo, objective
  figures/       inputs, best inputs, amplitude spectra, kernels (transform methods), sigma (distribution
                 methods), metric curves and, for a model with a census, each unit's preferred input beside
                 the 8 data inputs that drive it most (natural), each as .png (300 dpi), .svg and .pdf (vector)
sheet.png/.svg/.pdf  the final inputs of all runs side by side.

Scales: inputs and kernels are on a grey scale centred on 0 (grey = 0) with a colour bar; where the tiles'
ranges differ by more than a factor 2, each tile is scaled to its own range, written above it as ±r, and
the colour bar reads in fractions of it. Spectra are log10 amplitudes on axes in cycles/pixel, DC at the
centre. Metric curves: activation per step, ELBO in nats.

Runs, labelled in the figures by their target, method and the config fields that differ between them:
{table}

Checks of each result (ok, FAIL, or n/a where a check does not apply to the model): driven (the final activation
against the unit's 99.9th percentile on data, or against the start without a census), target_wins (no other unit
of the layer ends above the target), in_range (inside the model's declared input range), in_distribution (the
ELBO's percentile among held-out inputs), converged (at most 2% change over the last 10% of the steps),
inside_receptive_field (at most 10% of the change of the input outside the unit's receptive field). A result is
trustworthy when every check that applies is ok.
{checks}

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


def _columns(lines: list[list[str]]) -> str:
    widths = [max(len(line[k]) for line in lines) for k in range(len(lines[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def runs_table(runs: dict[str, Run], folders: dict[str, str], labels: dict[str, str]) -> str:
    """Each run's folder and label, then a table of the config fields that differ between the runs, a line
    per run ('-' where a field does not apply to the run's method)."""
    text = _columns([[folders[name], labels[name]] for name in runs])
    fields = [f for f in differing_fields(runs) if f != "objective"]
    if not fields:
        return text + "\n\nNo config field differs between them." if len(runs) > 1 else text
    rows = [["folder", *fields]]
    for name, run in runs.items():
        flat = flat_config(run.config)
        rows.append([folders[name], *(model_name(run) if f == "model" else value_text(flat.get(f))
                                      if relevant(f, run.config) else "-" for f in fields)])
    return f"{text}\n\nThe config fields that differ between them:\n{_columns(rows)}"


def checks_text(runs: dict[str, Run], folders: dict[str, str]) -> str:
    """Each run's checks, a line per row (the first 20 rows of a run, then a tally)."""
    lines = []
    for name, run in runs.items():
        if not run.checks:
            lines.append(f"  {folders[name]}: no checks recorded (a run saved before meiscope checked its results)")
        lines += [f"  {folders[name]} {line}" for line in summary_lines(run.rows, run.checks, run.config.samples)]
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


def zip_written(write: Callable[[Path], list[str]], path: str | Path, name: str) -> Path:
    """A zip at `path` of the files `write(folder)` writes (it returns their names), under the folder `name`."""
    folder = Path(path).parent / name
    files = write(folder)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(folder / file, f"{name}/{file}")
    return Path(path)


def write_export(runs: dict[str, Run], zip_path: str | Path, formats: tuple[str, ...] = FORMATS,
                 extra: dict[str, Path] | None = None, readme_note: str = "", name_folders: bool = True) -> Path:
    """Write the figure set of `runs` (name -> Run, the name an id) to zip_path, a folder per run named by
    unit, method and id (name_folders=False: by the name alone); `extra` (name in the zip -> a file or a
    folder) adds files such as a sweep's summary and sheets, which `readme_note` describes."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    labels = run_labels(runs)
    folders = folder_names(runs) if name_folders else {name: name for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, run in runs.items():
            folder = root / folders[name]
            run.save(folder)
            (folder / "metrics.csv").write_text(metrics_csv(run))
            with FIGURE_LOCK:
                write_figures(run, folder / "figures", formats, label=labels[name])
        with FIGURE_LOCK:
            write_sheet(list(runs.items()), root / "sheet.png", formats, labels=labels)
        for name, source in (extra or {}).items():
            (shutil.copytree if Path(source).is_dir() else shutil.copyfile)(source, root / name)
        readme = README.format(n=len(runs), table=runs_table(runs, folders, labels), models=_models(runs),
                               checks=checks_text(runs, folders))
        (root / "README.txt").write_text(readme + readme_note, encoding="utf-8")
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
