"""Analyses of a unit: each is checked on a synthetic unit whose answer is known, then run on the shipped model."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from meiscope.analysis.gabor import GaborParams, best_gabor, gabor
from meiscope.analysis.onehot import one_hot_synthesis
from meiscope.analysis.probes import jitter_stats, occlusion_map, shift_map
from meiscope.analysis.report import analyze_unit, split_arrays
from meiscope.analysis.spectra import spectral_entropy
from meiscope.analysis.sta import spike_triggered_average
from meiscope.cli import app

FILTER = GaborParams(x0=26.0, y0=12.0, theta=np.pi / 3, freq=0.12, phase=0.4, sigma_x=4.0, sigma_y=5.0,
                     amplitude=1.0, offset=0.0)


def linear_unit(weights: np.ndarray):
    w = torch.as_tensor(weights.reshape(-1, 1), dtype=torch.float32)
    return lambda x: x.reshape(len(x), -1) @ w


def test_sta_recovers_a_linear_filter():
    w = gabor(FILTER, 40)
    sta = spike_triggered_average(linear_unit(w), 1, n_stimuli=20_000, noise_std=0.5, chunk=3000)[0]
    assert np.corrcoef(sta.ravel(), w.ravel())[0, 1] > 0.95
    assert np.allclose(sta.std() / w.std(), 0.25, rtol=0.1)  # E[(w.s) s] = var(noise) w


def test_best_gabor_finds_the_filter_of_a_gabor_unit():
    w = gabor(FILTER, 40)
    found = best_gabor(linear_unit(w), steps=150)
    p = found["optimised"]["params"]
    assert found["optimised"]["activation"] >= found["grid"]["activation"]
    assert abs((found["optimised"]["orientation_deg"] - 60.0 + 90) % 180 - 90) < 8  # degrees, modulo 180
    assert p["freq"] == pytest.approx(0.12, rel=0.15)
    assert np.hypot(p["x0"] - 26, p["y0"] - 12) < 3


def test_occlusion_map_peaks_where_the_filter_is():
    w = np.zeros((40, 40))
    w[8:14, 28:34] = 1.0  # the unit looks at rows 8-13, columns 28-33 only
    image = w + 0.1
    drop = occlusion_map(linear_unit(w), image, patch=6, stride=2)
    y, x = np.unravel_index(np.argmax(drop), drop.shape)
    assert 6 <= y <= 15 and 26 <= x <= 35
    shifts = shift_map(linear_unit(w), image, radius=3)
    assert np.unravel_index(np.argmax(shifts), shifts.shape) == (3, 3)  # unshifted is best
    stats = jitter_stats(linear_unit(w), image, max_shift=2)
    assert stats["mean"] < stats["unjittered"]


def test_spectral_entropy_orders_a_grating_below_noise(rng):
    grating = np.cos(2 * np.pi * 0.125 * np.arange(40))[None, :].repeat(40, 0)
    assert spectral_entropy(grating) < 2 < spectral_entropy(rng.normal(size=(40, 40))) - 5


def test_one_hot_synthesis_on_the_shipped_model(shipped, top_units):
    u = top_units[0]["unit"]
    views = one_hot_synthesis(shipped, u, scale=5.0, samples=3)
    assert views["samples"].shape == (3, 40, 40)
    # z2 sets the means and the scales of p(z1 | z2): inputs drawn with the unit switched on drive it more than
    # inputs drawn from z2 = 0 (the mean image alone can miss a unit that acts through the scales)
    with torch.no_grad():
        base = shipped.generate(torch.zeros(3, 250), sample_z1=True, generator=torch.Generator().manual_seed(1))
        on = shipped.readout(torch.as_tensor(views["samples"])[:, None], units=[u])[:, 0]
        off = shipped.readout(base, units=[u])[:, 0]
    assert on.mean() > off.mean() + 1.0


def test_every_view_of_a_shipped_unit(shipped, top_units, rng):
    u = top_units[1]["unit"]
    patches = rng.normal(size=(256, 40, 40)).astype(np.float32)
    report = analyze_unit(shipped, u, patches=patches, n_sta=2000)
    numbers, arrays = split_arrays(report)
    assert {"preferred.images", "sta.image", "one_hot.pattern", "gabor.optimised.image", "probes.occlusion",
            "nearest.pixel.images"} <= set(arrays)
    assert all(np.isfinite(v) for v in numbers["agreement"].values())
    # seeds may land on other phases of the same pattern (energy-like units): their amplitude spectra agree
    amplitude = [np.abs(np.fft.fft2(image)) for image in arrays["preferred.images"]]
    assert min(np.corrcoef([a.ravel() for a in amplitude])[0, 1:]) > 0.5
    assert min(numbers["preferred"]["activation"]) > top_units[1]["act_p999"]
    assert len(numbers["nearest"]["pixel"]["index"]) == 4


def test_analyze_command_writes_its_files(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "--unit", "50", "--n-sta", "500", "--patches", "0",
                                      "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert {"analysis.json", "arrays.npz", "analysis.png"} <= {p.name for p in (tmp_path / "a").iterdir()}
    assert CliRunner().invoke(app, ["analyze", "--unit", "300"]).exit_code == 2


def test_occlusion_of_a_linear_unit_peaks_on_its_weights_on_a_non_square_input():
    """Closed form: occluding with 0 a linear unit's input drops its activation by the weights under the square
    times the input there; on a 2-channel 12 x 20 input the map peaks over the weights and nowhere else."""
    w = np.zeros((2, 12, 20))
    w[1, 2:5, 14:18] = 1.0  # the unit looks at rows 2-4, columns 14-17 of channel 1
    image = np.ones((2, 12, 20))
    drop = occlusion_map(linear_unit(w), image, patch=2, stride=1)
    assert drop.shape == (12, 20)
    y, x = np.unravel_index(np.argmax(drop), drop.shape)
    assert 2 <= y <= 5 and 14 <= x <= 18
    assert drop[8:, :10].max() == 0  # occluding where the weights are 0 changes nothing
    assert drop.max() == pytest.approx(4.0)  # a 2 x 2 square entirely on weights 1 over inputs 1
    assert shift_map(linear_unit(w), image, radius=2).shape == (5, 5)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from meiscope.examples.digits import build

    return build(cache=tmp_path_factory.mktemp("digits-cache"))


@pytest.mark.parametrize("layer,unit", [("conv1", 2), ("fc1", 7)])
def test_every_view_of_a_digits_unit(digits, layer, unit):
    """Any model, any layer: the views that apply to an 8 x 8 one-channel classifier without latents."""
    from meiscope.presentation.readings import image_panels, readings

    report = analyze_unit(digits, unit, layer=layer, n_sta=500, steps=40)
    numbers, arrays = split_arrays(report)
    assert numbers["layer"] == layer and numbers["unit"] == unit
    assert arrays["preferred.images"].shape == (3, 8, 8) and arrays["sta.image"].shape == (8, 8)
    assert "one_hot" not in report and {"gabor", "nearest", "natural_top"} <= set(report)
    assert arrays["probes.shift"].shape == (5, 5) and arrays["probes.occlusion"].shape == (8, 8)
    words = readings(report)
    assert any("no latent code" in x for x in words["left_out"]) and "characterisation" in words["see_also"]
    assert {row["measure"] for row in words["agreement"]} >= {"preferred vs STA", "best Gabor vs optimised input"}
    assert all(p["reading"] and p["values"] for p in image_panels(report))
    assert len([p for p in image_panels(report) if p["key"].startswith("nearest.")]) == 8


def test_a_z1_unit_of_the_shipped_model(shipped):
    """z1 is analysed as z1 (its one-hot synthesis is the z1 code decoded), not as z2."""
    report = analyze_unit(shipped, 7, layer="z1", n_sta=500, steps=30, n_data=256)
    assert report["layer"] == "z1" and report["one_hot"]["latent"] == "z1"
    with torch.no_grad():
        column = shipped.latent_decode("z1", torch.eye(1800)[7:8] * 5.0) - shipped.latent_decode("z1", torch.zeros(1, 1800))
    assert np.allclose(report["one_hot"]["pattern"], column[0, 0].numpy(), atol=1e-4)
    assert report["one_hot"]["samples"] is None  # decoding z1 draws nothing
    assert report["nearest"]["activation"]["layer"] == "z1"
    assert min(report["preferred"]["activation"]) > 0


def test_analyze_command_on_any_model_and_layer(tmp_path, monkeypatch):
    from meiscope.presentation.plotting import plt

    monkeypatch.setenv("MEISCOPE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "d"
    result = CliRunner().invoke(app, ["analyze", "--model", "meiscope.examples.digits:build", "--layer", "conv2",
                                      "--unit", "5", "--n-sta", "300", "--patches", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "conv2 unit 5 of digits-cnn" in result.output and "best Gabor vs optimised input" in result.output
    numbers = __import__("json").loads((out / "analysis.json").read_text())
    assert numbers["layer"] == "conv2" and numbers["readings"]["panels"]
    height, width = plt.imread(out / "analysis.png").shape[:2]
    assert width >= 13 * 300  # 13.5 inches at 300 dpi
    bad = CliRunner().invoke(app, ["analyze", "--model", "meiscope.examples.digits:build", "--layer", "nope",
                                   "--unit", "0"])
    assert bad.exit_code == 2 and "layer" in bad.output


def test_the_agreement_is_read_for_what_the_unit_is():
    """r near 0 between the preferred input and the STA is expected of an even unit, a warning for a linear one;
    a best Gabor that drives the unit more than the optimised input says the optimiser missed the maximum."""
    from meiscope.presentation.readings import read_agreement

    def report(odd_share, gabor, natural=None):
        agreement = {"preferred_vs_sta": 0.01, "preferred_vs_gradient": 0.9, "across_seeds_mean": 0.1,
                     "across_seeds_min": -0.1, "across_seeds_spectra_mean": 0.9, "best_gabor_activation": gabor,
                     "preferred_activation_max": 12.2}
        if natural is not None:
            agreement["best_natural_activation"] = natural
        return {"agreement": agreement, "symmetry": {"odd_share": odd_share, "measured_on": "data"},
                "gabor": {"norm": 40.0}, "preferred": {"norm": [40.0, 39.0, 41.0], "activation": [12.2, 12.0, 11.9]}}

    even = {r["measure"]: r["reading"] for r in read_agreement(report(0.02, 14.1, natural=6.1))}
    assert even["preferred vs STA"].startswith("near 0 is expected: the unit is even")
    assert "did not find the maximum" in even["best Gabor vs optimised input"]
    assert "phase or position" in even["across 3 seeds"]
    assert "exaggerates the best data input 2x" in even["best natural input vs optimised input"]
    linear = {r["measure"]: r["reading"] for r in read_agreement(report(0.97, 9.0))}
    assert "suspect the optimiser" in linear["preferred vs STA"]
    assert "not a simple Gabor" in linear["best Gabor vs optimised input"]
