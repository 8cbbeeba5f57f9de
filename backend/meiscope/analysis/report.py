"""Every view of one unit in one call: its preferred inputs across seeds, STA,
one-hot synthesis, best Gabor, nearest data patches, probes and spectra, and how well the views agree."""

from __future__ import annotations

import numpy as np

from ..data.whitening import radial_amplitude
from ..engine import AMConfig, run
from ..model.tdvae import TDVAE
from .gabor import best_gabor, fit_gabor
from .nearest import nearest_patches
from .onehot import one_hot_synthesis
from .probes import jitter_stats, occlusion_map, shift_map
from .spectra import spectral_entropy
from .sta import spike_triggered_average, unit_response

# the default configuration, three samples of it (the first is exactly the default run: each sample has its own
# random numbers, so a sample draws the same alone and among others); recorded sparsely
PREFERRED = {"samples": 3, "elbo_every": 0, "snapshot_every": 200}


def preferred_config(unit: int, seed: int = 0) -> AMConfig:
    """The configuration of the analysis' preferred inputs: the default one, three samples."""
    return AMConfig.model_validate({**PREFERRED, "unit": unit, "seed": seed})


def analysis_applies(model) -> bool:
    """Whether analyze_unit's views apply: they read z2 units, synthesise from a z2 latent and fit Gabors to
    one-channel images (the TDVAE)."""
    return "z2" in model.layers and "z2" in model.latents and model.input.channels == 1


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel() - np.mean(a)
    b = np.asarray(b, dtype=np.float64).ravel() - np.mean(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def analyze_unit(model: TDVAE, unit: int, patches: np.ndarray | None = None, n_sta: int = 20_000,
                 one_hot_scale: float = 5.0, seed: int = 0) -> dict:
    """A dict of numbers and (40 x 40) arrays; `patches` (held-out data) enables the nearest-patch view."""
    response = unit_response(model, [unit])
    preferred_run = run(model, preferred_config(unit, seed))
    preferred = preferred_run.images  # (3, 40, 40): one per seed of the configuration
    sta = spike_triggered_average(response, 1, n_stimuli=n_sta, seed=seed)[0]
    onehot = one_hot_synthesis(model, unit, scale=one_hot_scale, seed=seed)
    onehot_pattern = onehot["mean"] - onehot["baseline"]
    gabor = best_gabor(response)
    pairs = [correlation(preferred[i], preferred[j]) for i in range(3) for j in range(i + 1, 3)]
    freqs, profile = radial_amplitude(preferred[:1])
    report = {
        "unit": unit,
        "preferred": {"images": preferred, "activation": preferred_run.final_activation.tolist(),
                      "config": preferred_run.config.model_dump(mode="json", exclude={"unit"})},
        "sta": {"image": sta, "n_stimuli": n_sta},
        "one_hot": {"mean": onehot["mean"], "pattern": onehot_pattern, "samples": onehot["samples"],
                    "scale": one_hot_scale},
        "gabor": {k: v for k, v in gabor.items()},
        "gabor_fit_of_preferred": fit_gabor(preferred[0]).summary(),
        "probes": {"occlusion": occlusion_map(response, preferred[0]),
                   "shift": shift_map(response, preferred[0]),
                   "jitter": jitter_stats(response, preferred[0])},
        "spectra": {"radial_freqs": freqs.tolist(), "radial_amplitude": profile.tolist(),
                    "entropy_bits": float(spectral_entropy(preferred[0]))},
        "agreement": {"preferred_vs_sta": correlation(preferred[0], sta),
                      "preferred_vs_one_hot": correlation(preferred[0], onehot_pattern),
                      "sta_vs_one_hot": correlation(sta, onehot_pattern),
                      "across_seeds_mean": float(np.mean(pairs)), "across_seeds_min": float(np.min(pairs))},
    }
    if patches is not None:
        report["nearest"] = nearest_patches(model, preferred[0], patches, k=4)
    return report


def report_panels(report: dict) -> list[tuple[str, np.ndarray]]:
    """(title, 40x40 image) of each view, in the order the figure and the page show them."""
    panels = [(f"preferred (seed {i})", img) for i, img in enumerate(report["preferred"]["images"])]
    panels += [("STA", report["sta"]["image"]), ("one-hot, prior mean", report["one_hot"]["pattern"]),
               ("one-hot, a sample", report["one_hot"]["samples"][0]),
               ("best Gabor (grid)", report["gabor"]["grid"]["image"]),
               ("best Gabor (optimised)", report["gabor"]["optimised"]["image"]),
               ("occlusion map", report["probes"]["occlusion"])]
    if "nearest" in report:
        panels += [(f"nearest patch {i + 1} (pixels)", img) for i, img in enumerate(report["nearest"]["pixel"]["images"][:2])]
    return panels


def split_arrays(report: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """(numbers, arrays): the report with every numpy array taken out into a flat dict keyed by its dotted
    path ("sta.image", "gabor.optimised.image", ...). The numbers are JSON-ready."""
    arrays: dict[str, np.ndarray] = {}

    def walk(node, path: str):
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if isinstance(value, np.ndarray):
                arrays[path + key] = value
            else:
                out[key] = walk(value, f"{path}{key}.")
        return out

    return walk(report, ""), arrays
