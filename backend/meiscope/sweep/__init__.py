"""Sweeps: grids of AM runs (a unit set against values of config fields), resumable, on this machine or a
Ray cluster, summarised in a table and in grid sheets like the thesis' figures.

    spec.py     the spec file and its expansion into validated configs, config hashes
    store.py    runs/sweeps/<name>/: per-unit runs keyed by config hash, summary, grid arrays
    execute.py  tasks (one config, a batch of units) run locally or with Ray
    sheets.py   grid sheets (PNG/SVG/PDF)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .execute import Task, plan
from .spec import Expansion, SweepSpec, expand, read_spec
from .store import DEFAULT_ROOT, SweepStore, list_sweeps

__all__ = ["DEFAULT_ROOT", "Expansion", "SweepResult", "SweepSpec", "SweepStore", "Task", "expand", "list_sweeps",
           "plan", "read_spec", "run_sweep"]


@dataclass
class SweepResult:
    folder: Path
    total: int  # unit runs in the grid
    skipped: int  # already stored before this call
    stored: int  # stored by this call
    errors: list[str] = field(default_factory=list)  # tasks that failed every attempt (Ray)
    sheets: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_sweep(expansion: Expansion, root: Path = DEFAULT_ROOT, model_dir: Optional[Path] = None, model=None,
              ray_address: Optional[str] = None, batch_size: Optional[int] = None,
              formats: tuple[str, ...] = ("png", "svg", "pdf"), progress: bool = True) -> SweepResult:
    """Run what is missing of the sweep, then write its summary and sheets. `model` (already loaded) saves
    the local backend a load; with `ray_address` the tasks go to Ray (`local`, `auto` or an address)."""
    from .execute import run_local
    from .sheets import write_sheets

    started = time.perf_counter()
    store = SweepStore(root, expansion.name)
    store.write_manifest(expansion)
    tasks = plan(expansion, store, batch_size or expansion.spec.batch_size)
    pending = sum(len(t.config.units) for t in tasks)
    bar = None
    if progress and tasks:
        from tqdm import tqdm

        bar = tqdm(total=sum(t.size for t in tasks), desc=f"sweep {expansion.name}", unit="unit-step",
                   unit_scale=True, smoothing=0.1)
    try:
        if not tasks:
            stored, errors = 0, []
        elif ray_address:
            from .execute import init_ray, run_ray

            init_ray(ray_address)
            stored, errors = run_ray(tasks, store, model_dir, bar)
        else:
            if model is None:
                from ..model.loader import load_model

                model = load_model(model_dir)
            stored, errors = run_local(tasks, store, model, bar)
    finally:
        if bar is not None:
            bar.close()
    grid = store.summarise(expansion)
    sheets = write_sheets(expansion, grid, store.sheets, formats)
    return SweepResult(folder=store.folder, total=expansion.n_runs, skipped=expansion.n_runs - pending,
                       stored=stored, errors=errors, sheets=sheets, wall_s=time.perf_counter() - started)
