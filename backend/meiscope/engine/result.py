"""Run: the result of one (possibly batched) activation-maximisation run, saved as npz + JSON.

Rows are (target, sample) pairs in order: unit 0 samples 0..S-1, unit 1 samples 0..S-1, ...
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import clean_leftovers_once, old_name, partial_prefix
from .checks import trustworthy
from .config import AMConfig

METRICS = ("activation", "runner_up", "runner_up_unit", "elbo", "objective")
FORMAT_VERSION = 1

# A run's notebook face (Run._repr_html_, Run.show) is drawn by presentation/notebook.py. The engine may not import
# presentation/ or matplotlib, not even inside a function: import-linter counts every import statement wherever it
# stands. So the drawing side registers itself here when it is imported ("html": run -> str, "show": run -> ...),
# and the top-level package imports it whenever `meiscope.Run` or `meiscope.run` is first used
# (meiscope/__init__.py); without it, a run shows its text repr and show() says what to import.
NOTEBOOK: dict[str, Callable[["Run"], object]] = {}


@dataclass
class Frame:
    """What the engine hands to `on_step` every `snapshot_every` steps (and after the last step)."""

    step: int
    steps: int
    metrics: dict[str, list[float]]  # this step's value per row
    images: np.ndarray  # (rows, 40, 40), the current inputs
    arrays: dict[str, np.ndarray]  # kernels, inputs, sigma, latents, ... of the parameterization


@dataclass
class Run:
    config: AMConfig
    images: np.ndarray  # (rows, 40, 40): the inputs after the last step
    best_images: np.ndarray  # (rows, 40, 40): each row's input at its best objective (a copy)
    best_step: np.ndarray  # (rows,)
    metrics: dict[str, np.ndarray]  # name -> (steps run, rows); `elbo` is NaN where it was not measured
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # kernels, inputs, mean, sigma, latents, ...
    snapshots: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 40, 40), np.float32))  # (n, rows, 40, 40)
    snapshot_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows: list[dict] = field(default_factory=list)  # [{"unit": u, "sample": s}, ...]
    info: dict = field(default_factory=dict)  # status, steps_done, wall_s, device, versions
    checks: list[dict] = field(default_factory=list)  # per row: {name: {"ok", "value", "detail"}} (engine/checks.py)
    # per row, the real inputs that drive its unit most: "images" (rows, k, ...), "activation" (rows, k)
    natural: dict[str, np.ndarray] = field(default_factory=dict)

    # ---- convenience ----------------------------------------------------------------------------
    def row(self, unit: int, sample: int = 0) -> int:
        """Index of the row of `unit` (its `sample`-th sample)."""
        for i, r in enumerate(self.rows):
            if r["unit"] == unit and r["sample"] == sample:
                return i
        raise KeyError(f"no row for unit {unit} sample {sample} in this run")

    @property
    def nbytes(self) -> int:
        """Memory its arrays take."""
        arrays = [self.images, self.best_images, self.best_step, self.snapshots, self.snapshot_steps,
                  *self.metrics.values(), *self.arrays.values(), *self.natural.values()]
        return sum(a.nbytes for a in arrays)

    @property
    def final_activation(self) -> np.ndarray:
        return self.metrics["activation"][-1]

    # ---- in a notebook or a terminal -------------------------------------------------------------
    def __repr__(self) -> str:
        """One line: model, layer, method, targets and rows, steps, final activations, checks passed."""
        config, info = self.config, self.info
        model = info.get("model", {}).get("name", "model")
        if config.objective is not None:
            target = f"objective on {config.objective.main.layer}[{config.objective.main.unit}]"
        else:
            units = config.units
            target = f"{config.layer} unit{'s' * (len(units) > 1)} " + (
                ", ".join(map(str, units)) if len(units) <= 4 else f"{units[0]}..{units[-1]} ({len(units)})")
        steps = f"{info.get('steps_done', len(self.metrics.get('activation', ())))}/{config.steps} steps"
        act = self.metrics.get("activation")
        final = "" if act is None or not len(act) else (
            f", final activation {act[-1].min():.3g}..{act[-1].max():.3g}" if len(self.rows) > 1
            else f", final activation {act[-1][0]:.3g}")
        passed = f", {sum(map(trustworthy, self.checks))}/{len(self.checks)} rows pass their checks" \
            if self.checks else ""
        return (f"<Run {model} {target}, {config.method}, {len(self.rows)} row{'s' * (len(self.rows) != 1)}, "
                f"{steps} {info.get('status', '')}{final}{passed}>")

    def _repr_html_(self) -> str | None:
        """Jupyter's view: the final inputs, each row's checks and the curves (presentation/notebook.py)."""
        html = NOTEBOOK.get("html")
        return None if html is None else html(self)

    def show(self):
        """Display the run: in Jupyter inline, elsewhere written to an HTML file whose path is printed."""
        show = NOTEBOOK.get("show")
        if show is None:
            raise RuntimeError("Run.show draws with meiscope.presentation.notebook: import it first "
                               "(from meiscope import Run, run does)")
        return show(self)

    # ---- files --------------------------------------------------------------------------------
    def save(self, directory: str | Path, also: Callable[[Path], object] | None = None) -> Path:
        """Write run.json + arrays.npz into `directory`, atomically: the files are written to a hidden partial
        folder beside it that replaces `directory` only when complete (see meiscope.atomic: a writer killed
        mid-save leaves only a partial that the next writer removes). `also(folder)` writes more files into
        that partial folder before it is renamed (meiscope.presentation.figures.save_with_figures: the run's
        figures; the engine itself draws nothing)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers_once(directory.parent)
        tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(directory), dir=directory.parent))
        try:
            arrays = {"images": self.images, "best_images": self.best_images, "best_step": self.best_step,
                      "snapshots": self.snapshots, "snapshot_steps": self.snapshot_steps}
            arrays.update({f"metric_{k}": v for k, v in self.metrics.items()})
            arrays.update({f"array_{k}": v for k, v in self.arrays.items()})
            arrays.update({f"natural_{k}": v for k, v in self.natural.items()})
            np.savez_compressed(tmp / "arrays.npz", **arrays)
            meta = {"format_version": FORMAT_VERSION, "config": self.config.model_dump(mode="json"),
                    "rows": self.rows, "info": self.info, "checks": self.checks}
            (tmp / "run.json").write_text(json.dumps(meta, indent=1) + "\n")
            (tmp / "config.json").write_text(self.config.model_dump_json(indent=1) + "\n")
            if also is not None:
                also(tmp)
            os.chmod(tmp, 0o755)
            old = None
            if directory.exists():
                old = old_name(directory)
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Run":
        directory = Path(directory)
        meta_path, arrays_path = directory / "run.json", directory / "arrays.npz"
        if not meta_path.is_file() or not arrays_path.is_file():
            raise FileNotFoundError(f"{directory} is not a saved run (needs run.json and arrays.npz)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path}: unknown format_version {meta.get('format_version')!r}")
        with np.load(arrays_path) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(
            config=AMConfig.model_validate(meta["config"]),
            images=arrays.pop("images"), best_images=arrays.pop("best_images"), best_step=arrays.pop("best_step"),
            snapshots=arrays.pop("snapshots"), snapshot_steps=arrays.pop("snapshot_steps"),
            metrics={k[len("metric_"):]: v for k, v in arrays.items() if k.startswith("metric_")},
            arrays={k[len("array_"):]: v for k, v in arrays.items() if k.startswith("array_")},
            natural={k[len("natural_"):]: v for k, v in arrays.items() if k.startswith("natural_")},
            rows=meta["rows"], info=meta["info"], checks=meta.get("checks", []),
        )
