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
from .config import AMConfig

METRICS = ("activation", "runner_up", "runner_up_unit", "elbo", "objective")
FORMAT_VERSION = 1


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
