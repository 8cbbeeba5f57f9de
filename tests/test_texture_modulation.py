"""Texture modulation against spectrally matched noise, the phase randomisation it rests on, and the card's
per-patch reconstruction R² and live-atom count."""

import numpy as np
import pytest

from meiscope.analysis.spectra import binned_log_power
from meiscope.analysis.texture_modulation import modulation_from_responses, modulation_index, texture_modulation
from meiscope.data import texture_controls as tc
from meiscope.reference.evaluate import live_atom_record, live_atoms, per_patch_r2, r2_percentiles


def test_phase_randomisation_keeps_the_amplitude_spectrum_and_changes_the_phases(rng):
    image = tc.whitened_texture("fur")
    twin = tc.phase_randomise(image, rng)
    assert twin.dtype == np.float64 and twin.shape == image.shape
    a, b = np.fft.fft2(image), np.fft.fft2(twin)
    np.testing.assert_allclose(np.abs(b), np.abs(a), rtol=1e-9, atol=1e-9 * np.abs(a).max())
    big = np.abs(a) > 1e-6 * np.abs(a).max()
    moved = np.abs(np.angle(b[big] / a[big]))
    assert np.median(moved) > 0.5  # random phases: typically far from the original
    assert not np.allclose(twin, image, atol=0.1)
    again = tc.phase_randomise(image, np.random.default_rng(0))
    np.testing.assert_array_equal(again, tc.phase_randomise(image, np.random.default_rng(0)))  # seeded


def test_texture_sources_are_held_out_photographs():
    assert {s.split for s, _, _ in tc.HELDOUT_TEXTURES.values()} == {"heldout"}
    data = tc.texture_and_noise_patches(scale=2.0, n=20, seed=1)
    assert data["texture"].shape == data["noise"].shape == (len(tc.HELDOUT_TEXTURES), 20, 40, 40)
    for f in range(len(data["families"])):  # same spectrum in the mean: the twin has the texture's power
        ratio = data["noise"][f].var() / data["texture"][f].var()
        assert 0.5 < ratio < 2.0


def test_modulation_index_is_zero_when_texture_is_noise(shipped):
    tex = np.abs(np.random.default_rng(0).standard_normal((2, 50, 6)))
    out = modulation_from_responses(tex, tex.copy(), n_boot=200)
    np.testing.assert_allclose(out["index"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["ci_low"], 0.0, atol=1e-12)
    assert not out["sensitive"].any()
    assert modulation_index(np.array([3.0, 0.0]), np.array([1.0, 0.0])).tolist() == [0.5, 0.0]


def test_modulation_index_is_zero_on_the_model_when_noise_is_the_texture(shipped, monkeypatch):
    real = tc.texture_and_noise_patches

    def same(*args, **kwargs):
        d = real(*args, **kwargs)
        return {**d, "noise": d["texture"].copy()}

    monkeypatch.setattr("meiscope.analysis.texture_modulation.texture_and_noise_patches", same)
    out = texture_modulation(shipped, units=[0, 5, 17], n_patches=40, n_boot=100)
    np.testing.assert_allclose(out["index"], 0.0, atol=1e-6)  # float32 forward: the same patch in another row
    assert (np.abs(out["ci_low"]) < 1e-6).all() and out["index"].shape == (3, 3)


def test_modulation_finds_a_unit_that_texture_drives_more_than_noise(rng):
    tex = np.abs(rng.normal(2.0, 0.3, (3, 100, 2)))
    noise = np.abs(rng.normal(1.0, 0.3, (3, 100, 2)))
    noise[..., 1] = tex[..., 1] * 1.5  # the second unit prefers noise
    out = modulation_from_responses(tex, noise, n_boot=300)
    assert out["sensitive"].tolist() == [True, False]
    assert out["ci_low"][0] < out["mean_index"][0] < out["ci_high"][0]
    assert out["mean_index"][0] == pytest.approx(1 / 3, abs=0.05) and out["mean_index"][1] == pytest.approx(-0.2)


def test_per_patch_r2_percentiles_on_a_known_case():
    sst = np.full(100, 10.0)
    sse = np.arange(100, dtype=float) / 10  # R² = 1 - k/100: 1.00, 0.99, ..., 0.01
    r2 = per_patch_r2(sse, sst)
    assert r2[0] == 1.0 and r2[-1] == pytest.approx(0.01)
    pct = r2_percentiles(r2)
    assert set(pct) == {"1", "5", "50"}
    assert pct["50"] == pytest.approx(np.median(r2)) == pytest.approx(0.505)
    assert pct["1"] == pytest.approx(0.0199) and pct["5"] == pytest.approx(0.0595)
    assert per_patch_r2(np.array([0.0, 1.0]), np.array([0.0, 0.0])).tolist() == [1.0, -np.inf]


def test_live_atoms_counts_columns_above_a_share_of_the_largest_norm():
    W = np.zeros((16, 5))
    W[0] = [4.0, 1.01, 0.99, 3.0, 0.0]
    assert live_atoms(W, 0.25) == 3
    record = live_atom_record(W, 0.25)
    assert record["n_live_atoms"] == 3 and record["n_atoms"] == 5
    assert record["largest_dead_norm_share"] == pytest.approx(0.99 / 4) and record["smallest_live_norm_share"] == pytest.approx(1.01 / 4)


def test_binned_log_power_places_a_grating_in_its_orientation_and_frequency_bin():
    yy, xx = np.mgrid[:40, :40]
    power = binned_log_power(np.cos(2 * np.pi * 0.2 * xx)[None]).reshape(8, 8)
    assert np.unravel_index(power.argmax(), power.shape) == (3, 0)  # 0.2 c/px of 0.5 in 8 bins; horizontal f
    assert binned_log_power(np.random.default_rng(0).standard_normal((4, 40, 40))).shape == (4, 64)
