"""A unit characterised as a physiologist would: drifting-grating tuning (orientation, spatial frequency, phase),
the simple/complex index F1/F0, the polarity symmetry (the odd part of the response under x -> -x), the
contrast-response function and the response to a blank, and, where the model has data, the correlation with
patch contrast and the top natural inputs.

Stimuli are full-field sinusoidal gratings in the model's input range: mean + A cos(2 pi f (x cos t + y sin t) + p),
x the column and y the row from the image centre, so t is the angle of the wave vector. Their contrast is the
data's pixel std (A = sqrt(2) std) where the model has data, else unit contrast (pixel std 1, or the full input
range for a bounded input). Every stimulus set is read for all requested units at once, in chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .nearest import layer_means

CHUNK = 1024
PHASES = 8  # phases of every grating in the tuning grid (the phase response's first harmonic is exact for a linear unit)
FINE_PHASES = 16  # phases of the phase-modulation measurement
ORIENTATIONS = 12  # the coarse grid: every 15 degrees
FINE_ORIENTATIONS = 72  # the orientation tuning curve: every 2.5 degrees
SFS = 14  # the coarse grid's spatial frequencies, log-spaced
MAX_SF = 0.45  # cycles/pixel: nearer Nyquist (0.5) a sampled grating's contrast depends on its phase
FINE_SFS = 40  # the spatial-frequency tuning curve
CONTRASTS = (0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, 16.0)  # x the reference contrast
DATA_INPUTS = 4096  # real inputs for the odd share and the contrast correlation
MAX_PHASE_MODULATION = 1000.0  # F1/F0 of a linear unit is unbounded (F0 = 0): reported capped
CONTRAST_UNIT_R = 0.5  # |corr(activation, log patch contrast)| from which a unit is a contrast unit
LINEAR_ODD_SHARE = 0.5  # odd share from which a unit is linear (odd in its input)
COMPLEX_F1_F0 = 1.0  # F1/F0 below which an even unit is phase-invariant (the classical simple/complex split)


@dataclass(frozen=True)
class Stimulus:
    """The gratings' frame: size, mean level, the reference amplitude and the largest one the input range allows."""

    channels: int
    height: int
    width: int
    mean: float
    amplitude: float  # of the reference contrast
    max_amplitude: float  # inf for an unbounded input
    contrast_from: str  # "data" or "unit contrast"

    @property
    def sfs(self) -> np.ndarray:
        """The coarse grid's spatial frequencies (cycles/pixel): one cycle per image up to MAX_SF."""
        return np.geomspace(1.0 / max(self.height, self.width), MAX_SF, SFS)

    def gratings(self, orientation_deg, sf, phase, amplitude) -> Tensor:
        """Gratings (N, C, H, W) for equal-length arrays of orientation (deg), sf (c/px), phase (rad), amplitude."""
        t = torch.as_tensor(np.radians(np.asarray(orientation_deg, dtype=np.float64)))[:, None, None]
        f = torch.as_tensor(np.asarray(sf, dtype=np.float64))[:, None, None]
        p = torch.as_tensor(np.asarray(phase, dtype=np.float64))[:, None, None]
        a = torch.as_tensor(np.asarray(amplitude, dtype=np.float64))[:, None, None]
        y = torch.arange(self.height, dtype=torch.float64)[:, None] - (self.height - 1) / 2
        x = torch.arange(self.width, dtype=torch.float64)[None, :] - (self.width - 1) / 2
        g = self.mean + a * torch.cos(2 * math.pi * f * (x * torch.cos(t) + y * torch.sin(t)) + p)
        return g.float()[:, None].expand(-1, self.channels, -1, -1)

    def blank(self) -> Tensor:
        return torch.full((1, self.channels, self.height, self.width), self.mean)


def stimulus_frame(model, data: Tensor | None) -> Stimulus:
    """The gratings' mean and reference amplitude for this model: the data's mean and pixel std where there are
    data, else the middle of a bounded range at full-range contrast, or 0 at pixel std 1."""
    spec = model.input
    low, high = spec.range if spec.range is not None else (-math.inf, math.inf)
    max_amplitude = (high - low) / 2 if spec.range is not None else math.inf
    if data is not None and len(data):
        d = data.double()
        mean, amplitude, source = float(d.mean()), math.sqrt(2) * float(d.std()), "data"
        if spec.range is not None:
            max_amplitude = min(mean - low, high - mean)
    elif spec.range is not None:
        mean, amplitude, source = (low + high) / 2, max_amplitude, "unit contrast"
    else:
        mean, amplitude, source = 0.0, math.sqrt(2), "unit contrast"
    return Stimulus(spec.channels, spec.height, spec.width, mean, min(amplitude, max_amplitude), max_amplitude, source)


def characterisation_applies(model) -> bool:
    """Whether gratings can be drawn for the model's input: a one- or three-channel image."""
    return model.input.channels in (1, 3)


def responses(model, layer: str, units: list[int]) -> Callable[[Tensor], np.ndarray]:
    """x (N, C, H, W) -> the units' readouts (N, len(units)) as float64, read in chunks without gradients."""
    return lambda x: layer_means(model, layer, x, chunk=CHUNK)[:, units]


def harmonics(r: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(F0, F1) of responses sampled at equally spaced phases along `axis`: the mean and the amplitude of the
    first harmonic (a cos(p + q) has F1 = a)."""
    n = r.shape[axis]
    spectrum = np.fft.rfft(r, axis=axis)
    return r.mean(axis), 2 * np.abs(np.take(spectrum, 1, axis=axis)) / n


def peak_response(r: np.ndarray, blank) -> np.ndarray:
    """The peak of the phase response's fundamental, F0 + F1 of (r - blank) over the phases on the last axis: the
    amplitude for a linear unit, the level for a phase-invariant one. r and blank are units-first (or one unit)."""
    blank = np.asarray(blank, dtype=np.float64)
    f0, f1 = harmonics(r - blank.reshape(blank.shape + (1,) * (r.ndim - blank.ndim)))
    return f0 + f1


def refine_peak(values: np.ndarray, grid: np.ndarray, circular_period: float | None = None) -> float:
    """The grid position of the maximum, refined by a parabola through it and its neighbours."""
    i = int(np.argmax(values))
    n = len(values)
    if circular_period is None and (i == 0 or i == n - 1):
        return float(grid[i])
    left, right = values[(i - 1) % n], values[(i + 1) % n]
    denominator = left - 2 * values[i] + right
    offset = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
    step = (grid[1] - grid[0])
    position = grid[i] + np.clip(offset, -0.5, 0.5) * step
    return float(position % circular_period) if circular_period else float(position)


def half_height_width(values: np.ndarray, grid: np.ndarray, circular: bool) -> float | None:
    """Full width of the peak at half its height (in grid units), interpolated; None when the curve does not fall
    to half on both sides of the peak within the grid (an untuned or a broadband unit)."""
    i = int(np.argmax(values))
    half, n = values[i] / 2, len(values)
    if values[i] <= 0:
        return None
    step = grid[1] - grid[0]
    sides = []
    for direction in (-1, 1):
        for k in range(1, n // 2 + 1 if circular else n):
            j = i + direction * k
            if not circular and not 0 <= j < n:
                return None
            if values[j % n] <= half:
                inner = values[(j - direction) % n]
                sides.append((k - 1 + (inner - half) / (inner - values[j % n])) * step)
                break
        else:
            return None
    return float(sum(sides))


def _units_first(r: np.ndarray, n_units: int, shape: tuple[int, ...]) -> np.ndarray:
    """Readouts (N, units) of stimuli laid out as `shape` -> (units, *shape)."""
    return np.moveaxis(r.reshape(*shape, n_units), -1, 0)


def _per_unit(read, blocks: list[Tensor]) -> np.ndarray:
    """Unit u's readout of its own block of stimuli, for every u, in one pass: (units, block size)."""
    r = read(torch.cat(blocks))
    size = len(blocks[0])
    return np.stack([r[u * size:(u + 1) * size, u] for u in range(len(blocks))])


def _phases(n: int) -> np.ndarray:
    return 2 * np.pi * np.arange(n) / n


def _grid(frame: Stimulus, orientations, sfs, phases, amplitude: float) -> Tensor:
    """Every combination, phases fastest."""
    o, f, p = np.meshgrid(orientations, sfs, phases, indexing="ij")
    return frame.gratings(o.ravel(), f.ravel(), p.ravel(), np.full(o.size, amplitude))


def grating_tuning(read, frame: Stimulus, n_units: int, blank: np.ndarray) -> dict:
    """Coarse orientation x SF grid for all units, then per unit a fine orientation sweep at its best SF and a fine
    SF sweep at its best orientation. Curves hold the peak of the phase response (peak_response) minus the blank."""
    def at(orientations, sfs):
        return _grid(frame, orientations, sfs, _phases(PHASES), frame.amplitude)

    coarse_o, coarse_f = np.arange(ORIENTATIONS) * 180 / ORIENTATIONS, frame.sfs
    coarse = _units_first(read(at(coarse_o, coarse_f)), n_units,
                          (ORIENTATIONS, SFS, PHASES))
    coarse_peak = peak_response(coarse, blank)  # (units, O, F)
    best = [np.unravel_index(np.argmax(c), c.shape) for c in coarse_peak]
    fine_o = np.arange(FINE_ORIENTATIONS) * 180 / FINE_ORIENTATIONS
    by_orientation = _per_unit(read, [at(fine_o, [coarse_f[f]]) for _, f in best])
    orientation_curve = peak_response(by_orientation.reshape(n_units, FINE_ORIENTATIONS, PHASES), blank)
    preferred_o = [refine_peak(c, fine_o, 180.0) for c in orientation_curve]
    fine_f = np.geomspace(coarse_f[0], MAX_SF, FINE_SFS)
    by_sf = _per_unit(read, [at([o], fine_f) for o in preferred_o])
    sf_curve = peak_response(by_sf.reshape(n_units, FINE_SFS, PHASES), blank)
    log_f = np.log2(fine_f)
    preferred_f = [float(2 ** refine_peak(c, log_f)) for c in sf_curve]
    width_o = [half_height_width(c, fine_o, circular=True) for c in orientation_curve]
    width_f = [half_height_width(c, log_f, circular=False) for c in sf_curve]
    return {"orientations_deg": fine_o, "orientation_curves": orientation_curve, "sfs": fine_f, "sf_curves": sf_curve,
            "coarse_orientations_deg": coarse_o, "coarse_sfs": coarse_f, "coarse": coarse_peak,
            "preferred_orientation_deg": preferred_o, "preferred_sf": preferred_f,
            "orientation_bandwidth_deg": [None if w is None else w / 2 for w in width_o],
            "sf_bandwidth_octaves": width_f}


def phase_and_contrast(read, frame: Stimulus, blank: np.ndarray, orientations, sfs) -> dict:
    """At each unit's preferred grating: the response over FINE_PHASES phases at every contrast of CONTRASTS
    that the input range allows. Returns contrasts (pixel std), responses (units, contrasts, phases)."""
    factors = [c for c in CONTRASTS if c * frame.amplitude <= frame.max_amplitude + 1e-9]
    phases = _phases(FINE_PHASES)
    blocks = []
    for o, f in zip(orientations, sfs):
        amp = np.repeat(np.array(factors) * frame.amplitude, FINE_PHASES)
        blocks.append(frame.gratings(np.full(amp.size, o), np.full(amp.size, f), np.tile(phases, len(factors)), amp))
    r = _per_unit(read, blocks).reshape(len(blocks), len(factors), FINE_PHASES)
    return {"contrasts": np.array(factors) * frame.amplitude / math.sqrt(2), "responses": r, "phases": phases}


def phase_modulation(r: np.ndarray, blank: float) -> tuple[float, float, float]:
    """(F1/F0, F0, F1) of the response minus the blank over phase; F1/F0 capped at MAX_PHASE_MODULATION."""
    f0, f1 = harmonics(np.asarray(r) - blank)
    ratio = MAX_PHASE_MODULATION if abs(f0) * MAX_PHASE_MODULATION <= f1 else f1 / abs(f0)
    return float(ratio), float(f0), float(f1)


def saturation_index(contrasts: np.ndarray, crf: np.ndarray, reference: float) -> float | None:
    """1 - (the CRF's slope over its top contrast doubling) / (its slope over the doubling up to the reference
    contrast): 0 for a response that grows linearly with contrast, 1 for one flat at the top, above 1 for one that
    falls (supersaturation), negative for an accelerating (e.g. energy) response. None without both doublings."""
    at = {round(float(c / reference), 6): float(v) for c, v in zip(contrasts, crf)}
    top = max(at)
    if top < 2 or 0.5 not in at or 1.0 not in at or top / 2 not in at:
        return None
    slope_ref = (at[1.0] - at[0.5]) / (0.5 * reference)
    slope_top = (at[top] - at[top / 2]) / (top / 2 * reference)
    return None if abs(slope_ref) < 1e-12 else float(1 - slope_top / slope_ref)


def symmetry_and_contrast(read, frame: Stimulus, data: Tensor | None, seed: int = 0) -> dict:
    """Odd share var(odd) / (var(odd) + var(even)) of a(x) under x -> 2 m - x (m the stimuli's mean), on data where
    there are data, else on Gaussian noise at the reference contrast; and on data, each unit's correlation with the
    log of the inputs' pixel std (their contrast)."""
    if data is not None and len(data):
        x, on = data.float(), "data"
    else:
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(DATA_INPUTS, frame.channels, frame.height, frame.width, generator=g)
        x, on = frame.mean + noise * frame.amplitude / math.sqrt(2), "noise"
        if frame.max_amplitude < math.inf:
            x = x.clamp(frame.mean - frame.max_amplitude, frame.mean + frame.max_amplitude)
    a, a_flipped = read(x), read(2 * frame.mean - x)
    odd, even = (a - a_flipped) / 2, (a + a_flipped) / 2
    total = odd.var(0) + even.var(0)
    share = [None if t <= 1e-20 else float(v / t) for v, t in zip(odd.var(0), total)]
    contrast_r: list[float | None] = [None] * a.shape[1]
    if on == "data":
        log_contrast = np.log(x.double().flatten(1).std(1).numpy() + 1e-12)
        contrast_r = [None if a[:, u].std() <= 1e-12 else float(np.corrcoef(a[:, u], log_contrast)[0, 1])
                      for u in range(a.shape[1])]
    return {"odd_share": share, "odd_share_measured_on": on, "n_inputs": len(x), "contrast_correlation": contrast_r}


def unit_class(record: dict) -> str:
    """contrast (its activation follows the inputs' contrast on data), linear (mostly odd in its input), untuned (even,
    and no orientation makes it fall to half its peak), or phase-invariant (even, F1/F0 below 1); 'even,
    phase-modulated' otherwise; 'unresponsive' when neither gratings nor inputs move it."""
    if record["odd_share"] is None:
        return "unresponsive"
    r = record.get("contrast_correlation")
    if r is not None and abs(r) >= CONTRAST_UNIT_R:
        return "contrast"
    if record["odd_share"] >= LINEAR_ODD_SHARE:
        return "linear"
    if record["orientation_bandwidth_deg"] is None:
        return "untuned"
    return "phase-invariant" if record["phase_modulation"] < COMPLEX_F1_F0 else "even, phase-modulated"


def _rounded(v, digits: int = 6):
    return None if v is None else float(f"{v:.{digits}g}")


def characterise_units(model, layer: str, units: list[int], data: Tensor | None = None, natural: bool = True,
                       progress: Callable[[str], None] | None = None) -> list[dict]:
    """One record per unit (JSON-ready but for the `arrays` entry: the tuning curves and top natural inputs as numpy
    arrays, for figures). `data`: real inputs (default: the model's data_sample, if any)."""
    say = progress or (lambda _stage: None)
    if layer not in model.layers:
        raise ValueError(f"{model.name} has no layer {layer!r} (it has {', '.join(model.layers)})")
    bad = [u for u in units if not 0 <= u < model.layers[layer].units]
    if bad:
        raise ValueError(f"units {bad} lie outside {layer}'s 0..{model.layers[layer].units - 1}")
    data = model.data_sample(DATA_INPUTS) if data is None else data
    frame = stimulus_frame(model, data)
    read = responses(model, layer, units)
    blank = read(frame.blank())[0]
    say("gratings")
    tuning = grating_tuning(read, frame, len(units), blank)
    say("phase and contrast")
    series = phase_and_contrast(read, frame, blank, tuning["preferred_orientation_deg"], tuning["preferred_sf"])
    say("symmetry")
    symmetry = symmetry_and_contrast(read, frame, data)
    top = model.natural_top(layer) if natural and model.has_natural else None
    texture = texture_records(model, layer, units)
    reference = frame.amplitude / math.sqrt(2)
    at_reference = list(np.round(series["contrasts"] / reference, 6)).index(1.0)
    records = []
    for i, unit in enumerate(units):
        crf = peak_response(series["responses"][i], blank[i]) + blank[i]
        modulation, f0, f1 = phase_modulation(series["responses"][i, at_reference], blank[i])
        record = {
            "layer": layer, "unit": int(unit),
            "preferred_orientation_deg": _rounded(tuning["preferred_orientation_deg"][i] % 180),
            "preferred_sf_cycles_per_pixel": _rounded(tuning["preferred_sf"][i]),
            "orientation_bandwidth_deg": _rounded(tuning["orientation_bandwidth_deg"][i]),
            "sf_bandwidth_octaves": _rounded(tuning["sf_bandwidth_octaves"][i]),
            "phase_modulation": _rounded(modulation), "phase_f0": _rounded(f0), "phase_f1": _rounded(f1),
            "odd_share": _rounded(symmetry["odd_share"][i]), "odd_share_measured_on": symmetry["odd_share_measured_on"],
            "blank_response": _rounded(float(blank[i])),
            "contrast_response": {"contrasts": [_rounded(c) for c in series["contrasts"]],
                                  "responses": [_rounded(v) for v in crf], "contrast_unit": "pixel std"},
            "saturation_index": _rounded(saturation_index(series["contrasts"], crf, reference)),
            "contrast_correlation": _rounded(symmetry["contrast_correlation"][i]),
            "stimulus": {"mean": _rounded(frame.mean), "contrast": _rounded(reference),
                         "contrast_from": frame.contrast_from, "grating": "full-field sinusoid"},
            "arrays": {"orientations_deg": tuning["orientations_deg"], "orientation_curve": tuning["orientation_curves"][i],
                       "sfs": tuning["sfs"], "sf_curve": tuning["sf_curves"][i], "phases": series["phases"],
                       "phase_response": series["responses"][i, at_reference],
                       "coarse": tuning["coarse"][i], "coarse_orientations_deg": tuning["coarse_orientations_deg"],
                       "coarse_sfs": tuning["coarse_sfs"],
                       "preferred_grating": frame.gratings([tuning["preferred_orientation_deg"][i]],
                                                           [tuning["preferred_sf"][i]], [0.0], [frame.amplitude])[0].numpy()},
        }
        if top is not None:
            record["natural_top"] = {"index": top["index"][unit].tolist(),
                                     "activation": [_rounded(float(v)) for v in top["activation"][unit]]}
            record["arrays"]["natural_images"] = top["images"][unit]
        if texture is not None:
            record["texture_modulation"] = texture[i]
        record["unit_class"] = unit_class(record)
        records.append(record)
    return records


def texture_records(model, layer: str, units: list[int]) -> list[dict] | None:
    """For the TDVAE's z2 units: texture against spectrally matched noise, the modulation index (tex - noise) /
    (tex + noise) per held-out texture family (Freeman et al. 2013; analysis/texture_modulation.py); else None."""
    scale = getattr(model, "data_scale", None)
    if layer != "z2" or "z2" not in getattr(model, "latents", {}) or scale is None or not hasattr(model, "z2_dim"):
        return None
    from .texture_modulation import texture_modulation

    t = texture_modulation(model, units, scale=scale)
    return [{"families": list(t["families"]), "index": [_rounded(float(v)) for v in t["index"][:, i]],
             "mean_index": _rounded(float(t["mean_index"][i])),
             "ci95": [_rounded(float(t["ci_low"][i])), _rounded(float(t["ci_high"][i]))],
             "above_noise": bool(t["sensitive"][i])} for i in range(len(units))]


def characterise(model, layer: str, unit: int, **options) -> dict:
    """characterise_units for one unit."""
    return characterise_units(model, layer, [unit], **options)[0]


CLASS_RULE = (f"contrast: |corr(activation, log contrast)| >= {CONTRAST_UNIT_R} on data; linear: odd share >= "
              f"{LINEAR_ODD_SHARE}; untuned: even, no orientation halves the response; phase-invariant: even, F1/F0 < "
              f"{COMPLEX_F1_F0:g}; else even, phase-modulated")


def class_summary(records: list[dict]) -> dict:
    """The unit classes of characterised units: counts, the units of each class, the rule, and the range of odd shares
    (what says whether a linear class could exist at all)."""
    classes: dict[str, list[int]] = {}
    for r in records:
        classes.setdefault(r["unit_class"], []).append(r["unit"])
    odd = [r["odd_share"] for r in records if r["odd_share"] is not None]
    return {"rule": CLASS_RULE, "counts": {k: len(v) for k, v in classes.items()}, "units": classes,
            "odd_share_range": [min(odd), max(odd)] if odd else None,
            "per_unit": [{k: r[k] for k in ("unit", "unit_class", "preferred_orientation_deg",
                                            "preferred_sf_cycles_per_pixel", "phase_modulation", "odd_share",
                                            "contrast_correlation", "blank_response")} for r in records]}
