"""A sweep as a figure set: each grid point's unit runs joined into one batched run (so each config gets the
usual run figures over all its units), plus the sweep's summary, sweep.json and grid sheets."""

from __future__ import annotations

import re
from pathlib import Path

from ..engine.result import Run
from ..presentation.export import FORMATS, write_export
from .store import SweepStore, join_units

NOTE = """
This is the sweep {name}: its folders are the grid points, named by their index and axis values (one
batched run over the units each; a unit whose run was not stored is left out). Also:
  sweep.json     the spec and its expansion (axes, units, the run id of every cell)
  summary.csv    one row per grid point, unit and sample: axis values, final/best activation, ELBO,
  summary.json   runner-up, wall time, run id (also in summary.json)
  sheets/        grid sheets: rows of units, columns of one axis (the other axes at their first value); each
                 row on its own grey scale centred on 0, its range ±r written under the unit
"""


def point_name(index: int, values: dict) -> str:
    """A folder name for a grid point: 'p03_grad.gamma=1.0_optimizer.name=mei' (unsafe characters as '_')."""
    label = "_".join(f"{axis}={value}" for axis, value in values.items())
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", f"p{index:02d}" + (f"_{label}" if label else ""))[:120]


def point_runs(store: SweepStore) -> dict[str, Run]:
    """Folder name -> the joined run of each grid point that has stored runs."""
    out = {}
    for i, point in enumerate(store.manifest()["points"]):
        stored = [rid for rid in point["run_ids"] if store.has(rid)]
        if stored:
            out[point_name(i, point["values"])] = join_units([store.load(rid) for rid in stored])
    return out


def export_sweep(store: SweepStore, zip_path: Path, formats: tuple[str, ...] = FORMATS) -> Path:
    runs = point_runs(store)
    if not runs:
        raise FileNotFoundError(f"sweep {store.folder.name} has no stored runs to export")
    extra = {name: store.folder / name for name in ("sweep.json", "summary.csv", "summary.json", "sheets")
             if (store.folder / name).exists()}
    return write_export(runs, zip_path, formats, extra=extra, readme_note=NOTE.format(name=store.folder.name),
                        name_folders=False)

