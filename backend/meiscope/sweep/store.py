"""The store of a sweep: `<root>/<name>/` holds sweep.json (the spec and its expansion), one Run folder per
(config, unit) under runs/<first 2 hex digits>/<run id>, the summary table, grid arrays and sheets.

Runs are stored per unit, keyed by the hash of their single-unit config, so what is stored does not
depend on how units were batched: a resumed sweep (or one with another batch size, or another sweep that
shares a grid point) skips every unit run that is already there. Run.save writes atomically, so a folder
that exists is complete.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..engine.result import Run
from ..model.checkpoint import atomic_write_text
from .spec import NAME_PATTERN, Expansion, Point, run_id, unit_config

DEFAULT_ROOT = Path("runs/sweeps")
SUMMARY_COLUMNS = ("unit", "sample", "final_activation", "best_activation", "elbo", "runner_up", "runner_up_unit",
                   "wall_s", "run_id")


def split_by_unit(run: Run) -> dict[int, Run]:
    """The single-unit runs inside a batched run (rows, metrics, snapshots and arrays sliced)."""
    out = {}
    units = run.config.units
    for unit in units:
        rows = [i for i, r in enumerate(run.rows) if r["unit"] == unit]
        info = dict(run.info, wall_s=round(run.info.get("wall_s", 0.0) / len(units), 4),
                    batch={"units": len(units), "wall_s": run.info.get("wall_s")})
        out[unit] = Run(
            config=unit_config(run.config, unit), images=run.images[rows], best_images=run.best_images[rows],
            best_step=run.best_step[rows], metrics={k: v[:, rows] for k, v in run.metrics.items()},
            arrays={k: v[rows] for k, v in run.arrays.items()}, snapshots=run.snapshots[:, rows],
            snapshot_steps=run.snapshot_steps, rows=[run.rows[i] for i in rows], info=info)
    return out


def join_units(runs: list[Run]) -> Run:
    """The inverse of split_by_unit: single-unit runs of one config as one batched run (for export)."""
    first = runs[0]
    config = type(first.config).model_validate({**first.config.model_dump(mode="json"),
                                                "unit": [r.config.unit for r in runs]})

    def cat(get, axis: int = 0) -> np.ndarray:
        return np.concatenate([get(r) for r in runs], axis=axis)

    return Run(config=config, images=cat(lambda r: r.images), best_images=cat(lambda r: r.best_images),
               best_step=cat(lambda r: r.best_step), metrics={k: cat(lambda r: r.metrics[k], 1) for k in first.metrics},
               arrays={k: cat(lambda r: r.arrays[k]) for k in first.arrays}, snapshots=cat(lambda r: r.snapshots, 1),
               snapshot_steps=first.snapshot_steps, rows=[row for r in runs for row in r.rows],
               info={"status": first.info.get("status"), "wall_s": sum(r.info.get("wall_s", 0.0) for r in runs)})


def _last_finite(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else math.nan


class SweepStore:
    def __init__(self, root: Path | str, name: str) -> None:
        if not NAME_PATTERN.match(name):
            raise ValueError(f"sweep name {name!r} must match {NAME_PATTERN.pattern}")
        self.folder = Path(root) / name
        self.runs = self.folder / "runs"
        self.sheets = self.folder / "sheets"

    # ---- runs -----------------------------------------------------------------------------------
    def run_dir(self, rid: str) -> Path:
        # 256 shards: a flat folder of 10^5 runs is slow to list (the first save of a process into a folder
        # scans it for partial writes of killed processes, meiscope.atomic)
        return self.runs / rid[:2] / rid

    def has(self, rid: str) -> bool:
        return (self.run_dir(rid) / "run.json").is_file()

    def load(self, rid: str) -> Run:
        return Run.load(self.run_dir(rid))

    def save_batch(self, run: Run) -> list[str]:
        """Store each unit of a batched run in its own folder; returns the run ids written."""
        written = []
        for single in split_by_unit(run).values():
            rid = run_id(single.config)
            single.save(self.run_dir(rid))
            written.append(rid)
        return written

    def missing(self, expansion: Expansion) -> list[tuple[Point, list[int]]]:
        """Per grid point, the units whose run is not stored yet."""
        out = []
        for point, ids in zip(expansion.points, expansion.run_ids):
            units = [u for u, rid in zip(expansion.units, ids) if not self.has(rid)]
            if units:
                out.append((point, units))
        return out

    # ---- sweep-level files ------------------------------------------------------------------------
    def write_manifest(self, expansion: Expansion) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "sweep.json", json.dumps(expansion.manifest(), indent=1) + "\n")

    def manifest(self) -> dict:
        return json.loads((self.folder / "sweep.json").read_text())

    def status(self) -> dict:
        """What a listing shows: axes (with their values), unit count, grid points, runs and runs stored."""
        manifest = self.manifest()
        ids = [rid for p in manifest["points"] for rid in p["run_ids"]]
        return {"name": self.folder.name, "axes": manifest["axes"], "units": len(manifest["units"]),
                "points": len(manifest["points"]), "runs": len(ids), "stored": sum(map(self.has, ids))}

    def summarise(self, expansion: Expansion) -> dict[str, np.ndarray]:
        """summary.csv and summary.json (one row per grid point, unit and sample) and grid.npz: each cell's
        first-sample final input (`images`, points x units x the input's shape) and final activation
        (`activation`, NaN where the cell's run is not stored). Returns the grid arrays."""
        rows: list[dict] = []
        thumbs = None  # shaped by the first stored run: the model's input

        final = np.full((len(expansion.points), len(expansion.units)), np.nan, np.float32)
        for p, point in enumerate(expansion.points):
            for u, unit in enumerate(expansion.units):
                rid = expansion.run_ids[p][u]
                if not self.has(rid):
                    continue
                run = self.load(rid)
                if thumbs is None:
                    thumbs = np.zeros((len(expansion.points), len(expansion.units), *run.images.shape[1:]), np.float32)
                thumbs[p, u] = run.images[0]
                act = run.metrics["activation"]
                final[p, u] = act[-1, 0]
                for i, r in enumerate(run.rows):
                    rows.append({**point.values, "unit": unit, "sample": r["sample"],
                                 "final_activation": float(act[-1, i]), "best_activation": float(act[:, i].max()),
                                 "elbo": _last_finite(run.metrics["elbo"][:, i]),
                                 "runner_up": float(run.metrics["runner_up"][-1, i]),
                                 "runner_up_unit": int(run.metrics["runner_up_unit"][-1, i]),
                                 "wall_s": run.info.get("wall_s"), "run_id": rid})
        columns = [*expansion.axes, *SUMMARY_COLUMNS]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else
                                 "" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
        atomic_write_text(self.folder / "summary.csv", out.getvalue())
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
        atomic_write_text(self.folder / "summary.json", json.dumps({"columns": columns, "rows": clean}, indent=1) + "\n")
        if thumbs is None:  # nothing stored yet: empty cells of the TDVAE's patch size
            thumbs = np.zeros((len(expansion.points), len(expansion.units), 40, 40), np.float32)
        grid = {"images": thumbs, "activation": final}
        tmp = self.folder / "grid.tmp.npz"
        np.savez_compressed(tmp, **grid)
        tmp.replace(self.folder / "grid.npz")
        return grid

    def grid(self) -> dict[str, np.ndarray]:
        with np.load(self.folder / "grid.npz") as data:
            return {k: data[k] for k in data.files}


def list_sweeps(root: Path | str) -> list[str]:
    """Names of the sweeps stored under root (folders with a sweep.json), sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if NAME_PATTERN.match(p.name) and (p / "sweep.json").is_file())
