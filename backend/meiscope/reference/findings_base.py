"""What every finding shares: the units (all clearly active z2 units), their seeds, their classes, one batched
run per condition (units x seeds rows), the data's reference numbers, figures, and the record of a finding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..analysis.census import ACTIVE_KL
from ..engine import AMConfig, Run, run
from ..engine.options import merge
from ..engine.presets import plain
from ..model.tdvae import TDVAE
from ..presentation.plotting import FIGURE_LOCK, image_grid, plt
from .findings_stats import bootstrap_ci, ci_text, power_above

# the thesis' starting point, with every regulariser off (PLAIN): each experiment adds what it studies, and the
# findings do not move when the default configuration does. The ELBO is measured only where a finding reads it.
BASE = plain({"steps": 200, "elbo_every": 0, "snapshot_every": 100_000})
# the thesis' texture-sensitive units: an even (nonlinear) readout, whose STA is noise
NONLINEAR = ("contrast", "phase-invariant", "even, phase-modulated", "untuned")
LINEAR = ("linear",)  # the thesis' other units: an edge for an STA
MIN_CLASS = 3  # fewest units a class needs before it is compared with another


@dataclass
class Finding:
    id: str
    claim: str
    verdict: str  # one of findings_stats.VERDICTS
    observed: str
    rule: str = ""  # the test and its interval
    section: str = ""  # the thesis section the protocol follows
    numbers: dict = field(default_factory=dict)
    figure: str | None = None


def clear_units(card: dict) -> list[int]:
    """Every clearly active z2 unit (mean KL above 0.1 nats over held-out data): a unit that carries a hundredth
    of a nat barely depends on its input, and its preferred input says little."""
    census = card["metrics"]["units"]["census"]
    return [r["unit"] for r in census if r["status"] == "active" and r["mean_kl"] > ACTIVE_KL]


def characterise(model: TDVAE, units: list[int], data: np.ndarray | None) -> list[dict] | None:
    """Each unit's record from analysis.characterise (class, odd share, tuning), without its arrays."""
    from ..analysis.characterise import characterise_units

    tensor = None if data is None else torch.as_tensor(np.ascontiguousarray(data)).unsqueeze(1)
    records = characterise_units(model, "z2", units, data=tensor, natural=False)
    return [{k: v for k, v in r.items() if k not in ("arrays", "natural_top")} for r in records]


class Base:
    def __init__(self, model: TDVAE, card: dict, folder: Path, steps: int = 200, seeds: int = 5,
                 units: list[int] | None = None, data: np.ndarray | None = None) -> None:
        self.model, self.card, self.folder = model, card, Path(folder)
        self.units = units or clear_units(card)
        self.seeds = seeds
        census = {r["unit"]: r for r in card["metrics"]["units"]["census"]}
        self.p999 = np.array([census[u]["act_p999"] for u in self.units])[:, None]
        self.base = {**BASE, "steps": steps}
        self.data = data
        self.data_hf = float(power_above(data).mean()) if data is not None else None
        self.traits = characterise(model, self.units, data)
        self.classes = [t["unit_class"] for t in self.traits] if self.traits else None
        (self.folder / "figures").mkdir(parents=True, exist_ok=True)

    # ---- runs ----------------------------------------------------------------------------------
    def go(self, on_step=None, **overrides) -> Run:
        """One batched run: every unit, `seeds` independent samples each (rows unit-major)."""
        config = AMConfig.model_validate(merge({**self.base, "unit": self.units, "samples": self.seeds}, overrides))
        return run(self.model, config, on_step=on_step, progress=True)

    def grid(self, values: np.ndarray) -> np.ndarray:
        """Per-row values (rows, ...) -> (units, seeds, ...)."""
        values = np.asarray(values)
        return values.reshape(len(self.units), self.seeds, *values.shape[1:])

    def ratio(self, r: Run, at: int = -1) -> np.ndarray:
        """(units, seeds): activation at step `at` over the unit's 99.9th percentile on held-out data."""
        return self.grid(r.metrics["activation"][at]) / self.p999

    @property
    def short(self) -> int:
        """Steps of the transform methods: half a pixel run's (the thesis: they converge faster)."""
        return max(self.base["steps"] // 2, 5)

    @property
    def quick(self) -> int:
        """Steps of transform + distribution AM: a quarter of a pixel run's (the thesis: it reaches a high
        activation faster still, and its ELBO term on every draw makes a step ten times a pixel step's cost)."""
        return max(self.base["steps"] // 4, 5)

    def elbo_percentile(self, r: Run) -> np.ndarray:
        """(units, seeds): where each row's final input's ELBO falls among held-out inputs' (the engine's
        in_distribution check), in percent."""
        return self.grid(np.array([c["in_distribution"]["value"] for c in r.checks], dtype=np.float64))

    # ---- classes ---------------------------------------------------------------------------------
    def members(self, names: tuple[str, ...]) -> np.ndarray:
        return np.array([c in names for c in self.classes], dtype=bool)

    def class_counts(self) -> dict[str, int]:
        if self.classes is None:
            return {}
        return {c: self.classes.count(c) for c in dict.fromkeys(self.classes)}

    def untestable_contrast(self) -> str | None:
        """Why the thesis' texture-sensitive vs other contrast cannot be measured here, or None when it can."""
        if self.classes is None:
            return "the unit classes were not measured"
        n_lin, n_non = self.members(LINEAR).sum(), self.members(NONLINEAR).sum()
        if min(n_lin, n_non) < MIN_CLASS:
            odd = np.array([t["odd_share"] for t in self.traits])
            return (f"it needs at least {MIN_CLASS} units of each kind; the model has {n_lin} linear and {n_non} "
                    f"nonlinear (even) units among {len(self.units)} (odd share of the "
                    f"response: median {np.median(odd):.3f}, max {odd.max():.3f})")
        return None

    def by_class(self, values: np.ndarray, digits: int = 2) -> str:
        """Mean [CI] of `values` (units, seeds) in each class present."""
        if self.classes is None:
            return ""
        parts = []
        for names, label in ((NONLINEAR, "nonlinear"), (LINEAR, "linear")):
            m = self.members(names)
            if m.sum():
                parts.append(f"{label} ({m.sum()}) {ci_text(bootstrap_ci(values[m]), digits)}")
        return "; ".join(parts)

    # ---- figures ---------------------------------------------------------------------------------
    def column_titles(self) -> list[str]:
        short = {"contrast": "C", "phase-invariant": "PI", "linear": "L", "even, phase-modulated": "E", "untuned": "U"}
        if self.classes is None:
            return [f"u{u}" for u in self.units]
        return [f"u{u} {short.get(c, '?')}" for u, c in zip(self.units, self.classes)]

    def figure(self, name: str, rows: list[tuple[str, np.ndarray]], caption: str) -> str:
        """A grid: one row per condition, one column per unit (seed 0's result), each image on its own grey
        scale symmetric about 0."""
        with FIGURE_LOCK:
            n = len(self.units)
            fig, axes = plt.subplots(len(rows), n, figsize=(0.75 * n + 1.4, 0.85 * len(rows) + 0.9), squeeze=False)
            for i, (label, images) in enumerate(rows):
                image_grid(axes[i], list(images), self.column_titles() if i == 0 else None)
                axes[i, 0].text(-6, 20, label, ha="right", va="center", fontsize=8)
            for ax in axes[0]:
                ax.title.set_fontsize(6)
            fig.suptitle(f"{name}: {caption}\ncolumns: units (C contrast, PI phase-invariant, L linear), seed 0; "
                         "grey scale symmetric about 0 per image", fontsize=8)
            fig.tight_layout(rect=(0.08, 0, 1, 0.93))
            path = f"figures/{name}.png"
            fig.savefig(self.folder / path, dpi=100)
            plt.close(fig)
        return path

    def first_seed(self, r: Run, images: np.ndarray | None = None) -> np.ndarray:
        return self.grid(r.images if images is None else images)[:, 0]
