"""Every view of one unit of any layer of an image model in one call: its preferred inputs across seeds, the STA and
the gradient map, occlusion, shift and jitter probes, spectra, nearest and top natural data inputs where the model
has data, best Gabor and Gabor fit for one-channel inputs, one-hot synthesis where the layer is a latent code the
model decodes (the TDVAE), the odd share (whether an STA can say anything), and how well the views agree.
The sentences that read these numbers are presentation/readings.py's."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..engine import AMConfig, run
from .characterise import responses, stimulus_frame, symmetry_and_contrast
from .gabor import best_gabor, fit_gabor
from .nearest import nearest_patches
from .onehot import latent_one_hot, one_hot_applies
from .probes import jitter_stats, occlusion_map, occlusion_size, shift_map
from .spectra import radial_profile, spectral_entropy
from .sta import gradient_map, noise_frame, spike_triggered_average, unit_response

# the default configuration, three samples of it (the first is exactly the default run: each sample has its own
# random numbers, so a sample draws the same alone and among others); recorded sparsely
PREFERRED = {"samples": 3, "elbo_every": 0, "snapshot_every": 200}
NEAREST = 4  # nearest data inputs shown per space
DATA_INPUTS = 2048  # data inputs searched for the nearest ones
SYMMETRY_INPUTS = 1024  # inputs on which the odd share is measured
FLOOR_STIMULI = 1024  # noise stimuli on which the STA's noise floor is estimated


def preferred_config(unit: int, seed: int = 0, layer: str | None = None, steps: int | None = None) -> AMConfig:
    """The configuration of the analysis' preferred inputs: the default one, three samples (`steps`: fewer, for a
    quick look or a test)."""
    return AMConfig.model_validate({**PREFERRED, "unit": unit, "seed": seed, **({"layer": layer} if layer else {}),
                                    **({"steps": steps} if steps else {})})


def analysis_applies(model) -> bool:
    """Whether analyze_unit applies: an image model (one or three channels, at least 4 x 4 pixels)."""
    spec = model.input
    return spec.channels in (1, 3) and min(spec.height, spec.width) >= 4


def gabor_applies(model) -> bool:
    """Gabors are drawn and fitted on one-channel square inputs."""
    return model.input.channels == 1 and model.input.height == model.input.width


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel() - np.mean(a)
    b = np.asarray(b, dtype=np.float64).ravel() - np.mean(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _squeeze(images: np.ndarray) -> np.ndarray:
    """(N, 1, H, W) -> (N, H, W); other shapes unchanged."""
    images = np.asarray(images)
    return images[:, 0] if images.ndim == 4 and images.shape[1] == 1 else images


def check_unit(model, layer: str | None, unit: int) -> str:
    """The layer (default: the model's first), checked with the unit; ValueError naming the bad one."""
    layer = layer or model.default_layer
    if layer not in model.layers:
        raise ValueError(f"{model.name} has no layer {layer!r} (it has {', '.join(model.layers)})")
    if not 0 <= unit < model.layers[layer].units:
        raise ValueError(f"unit must lie in 0..{model.layers[layer].units - 1} for layer {layer}, got {unit}")
    return layer


def _linear_views(model, response: Callable, image: np.ndarray, n_sta: int, seed: int) -> dict:
    """The STA over white noise (with its noise floor) and the gradient map at the preferred input."""
    mean, std, clip = noise_frame(model)
    shape = tuple(model.input.shape) if model.input.channels > 1 else tuple(model.input.shape[1:])
    sta = spike_triggered_average(response, 1, n_stimuli=n_sta, noise_std=std, seed=seed, shape=shape,
                                  mean=mean, clip=clip)[0]
    g = torch.Generator().manual_seed(seed + 1)
    probe = (mean + std * torch.randn(FLOOR_STIMULI, *shape, generator=g))
    probe = probe.clamp(*clip) if clip else probe
    with torch.no_grad():
        rms = float(response(probe)[:, 0].double().pow(2).mean().sqrt())
    # the std of an STA pixel of a unit that ignores its input: rms(a) * noise std / sqrt(N); the largest of P such
    # pixels of pure noise lies near sqrt(2 ln 2P) of it
    floor = rms * std / np.sqrt(n_sta)
    return {"sta": {"image": sta, "n_stimuli": n_sta, "noise_mean": mean, "noise_std": std, "noise_floor": floor,
                    "peak_z": float(np.abs(sta).max()) / max(floor, 1e-30),
                    "noise_peak_z": float(np.sqrt(2 * np.log(2 * sta.size)))},
            "gradient": {"image": gradient_map(response, image)}}


def _gabor_views(model, response: Callable, preferred: np.ndarray) -> dict:
    """The best Gabor at the noise's contrast (on the noise's mean for a bounded input) and the Gabor fit of
    the preferred input."""
    mean, std, clip = noise_frame(model)
    size = model.input.height
    norm = std * size  # sqrt(H W) pixels at pixel std `std`: 40 at unit std on 40 x 40

    def shown(x):
        x = mean + x
        return x.clamp(*clip) if clip else x

    found = best_gabor(lambda x: response(shown(x)), size=size, norm=norm)
    for key in ("grid", "optimised"):
        found[key]["image"] = shown(torch.as_tensor(found[key]["image"])).numpy()
    found["norm"] = norm
    fit = fit_gabor(preferred)
    return {"gabor": found, "gabor_fit_of_preferred": {**fit.summary(), "image": fit.image}}


def _probes(model, response: Callable, image: np.ndarray) -> dict:
    mean, _, _ = noise_frame(model)
    side, stride = occlusion_size(model.input.height, model.input.width)
    return {"occlusion": occlusion_map(response, image, fill=mean), "occlusion_square_px": side,
            "occlusion_stride_px": stride, "occlusion_fill": mean,
            "shift": shift_map(response, image), "jitter": jitter_stats(response, image)}


def _data_views(model, layer: str, unit: int, image: np.ndarray, patches, n_data: int) -> dict:
    """Nearest data inputs (pixels and the layer's activations) and the unit's top natural inputs."""
    views: dict = {}
    if patches is None and n_data > 0:
        sample = model.data_sample(n_data)
        patches = None if sample is None else sample.numpy()
    if patches is not None and len(patches):
        patches = _squeeze(np.asarray(patches))
        views["nearest"] = nearest_patches(model, image, patches, k=NEAREST, layer=layer)
        views["nearest"]["searched"] = len(patches)
    top = model.natural_top(layer) if model.has_natural else None
    if top is not None:
        views["natural_top"] = {"index": np.asarray(top["index"][unit]).tolist(),
                                "activation": np.asarray(top["activation"][unit], dtype=float).tolist(),
                                "images": _squeeze(np.asarray(top["images"][unit]))}
    return views


def _symmetry(model, layer: str, unit: int) -> dict:
    """The odd share of the unit's response under x -> 2m - x (as the characterisation measures it, on fewer
    inputs): near 0 an even unit, whose white-noise STA cancels by symmetry."""
    data = model.data_sample(SYMMETRY_INPUTS)
    frame = stimulus_frame(model, data)
    measured = symmetry_and_contrast(responses(model, layer, [unit]), frame, data)
    return {"odd_share": measured["odd_share"][0], "measured_on": measured["odd_share_measured_on"],
            "n_inputs": min(measured["n_inputs"], SYMMETRY_INPUTS)}


def _spectra(image: np.ndarray) -> dict:
    grey = image if image.ndim == 2 else image.mean(0)
    freqs, profile = radial_profile(grey)
    return {"radial_freqs": freqs.tolist(), "radial_amplitude": np.nan_to_num(profile).tolist(),
            "peak_cycles_per_pixel": float(freqs[int(np.nanargmax(profile))]),
            "entropy_bits": float(spectral_entropy(grey)), "max_entropy_bits": float(np.log2(grey.size - 1))}


def _agreement(report: dict) -> dict:
    preferred = report["preferred"]["images"]
    first = preferred[0]
    pairs = [(i, j) for i in range(len(preferred)) for j in range(i + 1, len(preferred))]
    amplitude = [np.abs(np.fft.fft2(p)).ravel() for p in preferred]
    out = {"preferred_vs_sta": correlation(first, report["sta"]["image"]),
           "preferred_vs_gradient": correlation(first, report["gradient"]["image"]),
           "across_seeds_mean": float(np.mean([correlation(preferred[i], preferred[j]) for i, j in pairs])),
           "across_seeds_min": float(np.min([correlation(preferred[i], preferred[j]) for i, j in pairs])),
           "across_seeds_spectra_mean": float(np.mean([correlation(amplitude[i], amplitude[j]) for i, j in pairs]))}
    if "one_hot" in report:
        out["preferred_vs_one_hot"] = correlation(first, report["one_hot"]["pattern"])
        out["sta_vs_one_hot"] = correlation(report["sta"]["image"], report["one_hot"]["pattern"])
    if "gabor" in report:
        out["best_gabor_activation"] = report["gabor"]["optimised"]["activation"]
        out["preferred_activation_max"] = float(max(report["preferred"]["activation"]))
        out["gabor_minus_preferred"] = out["best_gabor_activation"] - out["preferred_activation_max"]
    if "natural_top" in report and report["natural_top"]["activation"]:
        out["best_natural_activation"] = float(max(report["natural_top"]["activation"]))
        out["preferred_activation_max"] = float(max(report["preferred"]["activation"]))
    return out


def analyze_unit(model, unit: int, layer: str | None = None, patches: np.ndarray | None = None,
                 n_sta: int = 20_000, one_hot_scale: float = 5.0, seed: int = 0, n_data: int = DATA_INPUTS,
                 steps: int | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """A dict of numbers and arrays (images (H, W) for one channel, else (C, H, W)) of one unit of `layer`
    (default: the model's first). `patches`: data inputs to search for the nearest ones (default: n_data of the
    model's data_sample, if it has data; n_data 0 skips them). `steps`: of the preferred-input runs (default: the
    default configuration's). `progress` is told each stage's name."""
    say = progress or (lambda _stage: None)
    layer = check_unit(model, layer, unit)
    response = unit_response(model, [unit], layer)
    say("preferred inputs over 3 seeds")
    preferred_run = run(model, preferred_config(unit, seed, layer, steps))
    preferred = _squeeze(preferred_run.images)
    centre = noise_frame(model)[0]
    report = {"model": model.name, "layer": layer, "unit": unit,
              "input_shape": list(model.input.shape), "input_range": model.input.range,
              "preferred": {"images": preferred, "activation": preferred_run.final_activation.tolist(),
                            "norm": [float(np.linalg.norm(p - centre)) for p in preferred],
                            "config": preferred_run.config.model_dump(mode="json", exclude={"unit"})}}
    say("STA and gradient map")
    report.update(_linear_views(model, response, preferred[0], n_sta, seed))
    say("symmetry (odd share)")
    report["symmetry"] = _symmetry(model, layer, unit)
    if one_hot_applies(model, layer):
        say("one-hot synthesis")
        report["one_hot"] = {**latent_one_hot(model, layer, unit, scale=one_hot_scale, seed=seed),
                             "scale": one_hot_scale, "latent": layer}
    if gabor_applies(model):
        say("best Gabor and Gabor fit")
        report.update(_gabor_views(model, response, preferred[0]))
    say("occlusion, shift and jitter probes")
    report["probes"] = _probes(model, response, preferred[0])
    report["spectra"] = _spectra(preferred[0])
    say("nearest and top natural inputs")
    report.update(_data_views(model, layer, unit, preferred[0], patches, n_data))
    report["agreement"] = _agreement(report)
    report["views"] = {"one_hot": "one_hot" in report, "gabor": "gabor" in report, "nearest": "nearest" in report,
                       "natural_top": "natural_top" in report}
    return report


def split_arrays(report: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """(numbers, arrays): the report with every numpy array taken out into a flat dict keyed by its dotted
    path ("sta.image", "gabor.optimised.image", ...). The numbers are JSON-ready (None stays None)."""
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
