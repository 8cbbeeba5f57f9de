"""The characterisation against closed-form units: a linear Gabor unit is simple (F1/F0 large, odd), a quadrature-pair
energy unit is complex (F1/F0 near 0, even), both at the orientation and spatial frequency built into them; a
contrast unit's contrast-response function is monotone and its blank response is what the formula gives."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from meiscope.analysis.characterise import (characterise, characterise_units, half_height_width, harmonics,
                                            phase_modulation, saturation_index, stimulus_frame)
from meiscope.analysis.gabor import GaborParams, gabor
from meiscope.model.hooked import HookedModel

SIZE = 40
THETA_DEG, FREQ = 30.0, 0.12


def gabor_pair(theta_deg=THETA_DEG, freq=FREQ, sigma=6.0) -> tuple[torch.Tensor, torch.Tensor]:
    def one(phase):
        p = GaborParams((SIZE - 1) / 2, (SIZE - 1) / 2, math.radians(theta_deg), freq, phase, sigma, sigma, 1.0, 0.0)
        return torch.as_tensor(gabor(p, SIZE), dtype=torch.float32).flatten()

    return one(0.0), one(-math.pi / 2)


class Units(nn.Module):
    """Four units: linear Gabor, quadrature energy, log contrast (+ 1 at a blank), half-wave rectified Gabor."""

    def __init__(self) -> None:
        super().__init__()
        even, odd = gabor_pair()
        self.register_buffer("even", even)
        self.register_buffer("odd", odd)
        self.out = nn.Identity()

    def forward(self, x):
        flat = x.flatten(1)
        linear = flat @ self.even
        energy = linear ** 2 + (flat @ self.odd) ** 2
        contrast = torch.log(flat.std(1) + 0.05) + 1.0
        rectified = torch.relu(linear)
        return self.out(torch.stack([linear, energy, contrast, rectified], 1))


def model(census: bool = False, input_range=None) -> HookedModel:
    data = None
    if census:  # Gaussian patches of varying contrast, as natural data
        g = torch.Generator().manual_seed(1)
        data = torch.randn(2048, 1, SIZE, SIZE, generator=g) * torch.rand(2048, 1, 1, 1, generator=g) * 2
    return HookedModel(Units(), {"units": "out"}, (1, SIZE, SIZE), input_range=input_range, census_data=data)


def angle_error(a, b):
    d = abs(a - b) % 180
    return min(d, 180 - d)


@pytest.fixture(scope="module")
def on_noise():
    return characterise_units(model(), "units", [0, 1, 2, 3])


def test_linear_gabor_is_simple_odd_and_tuned_where_built(on_noise):
    r = on_noise[0]
    assert r["phase_modulation"] > 1.5 and r["odd_share"] > 0.9
    assert angle_error(r["preferred_orientation_deg"], THETA_DEG) < 5
    assert abs(r["preferred_sf_cycles_per_pixel"] / FREQ - 1) < 0.1
    assert r["unit_class"] == "linear" and r["odd_share_measured_on"] == "noise"
    assert 0 <= r["preferred_orientation_deg"] < 180


def test_energy_unit_is_phase_invariant_even_and_tuned_where_built(on_noise):
    r = on_noise[1]
    assert r["phase_modulation"] < 0.2 and r["odd_share"] < 0.05
    assert angle_error(r["preferred_orientation_deg"], THETA_DEG) < 5
    assert abs(r["preferred_sf_cycles_per_pixel"] / FREQ - 1) < 0.1
    assert r["unit_class"] == "phase-invariant"
    # an energy unit grows with the square of contrast: it accelerates, it does not saturate
    assert r["saturation_index"] < -0.5
    assert r["orientation_bandwidth_deg"] is not None and r["sf_bandwidth_octaves"] is not None


def test_half_wave_rectified_unit_has_f1_over_f0_near_pi_over_2(on_noise):
    assert on_noise[3]["phase_modulation"] == pytest.approx(math.pi / 2, rel=0.05)


def test_contrast_unit_has_a_monotone_crf_and_its_blank_response():
    r = characterise(model(census=True), "units", 2)
    crf = r["contrast_response"]["responses"]
    assert all(b > a for a, b in zip(crf, crf[1:])), crf
    assert r["blank_response"] == pytest.approx(math.log(0.05) + 1, abs=1e-5)
    assert crf[0] == pytest.approx(r["blank_response"], abs=1e-6)  # contrast 0 is the blank
    assert r["contrast_correlation"] > 0.9 and r["unit_class"] == "contrast"
    assert r["odd_share_measured_on"] == "data" and r["odd_share"] < 0.01  # |x| does not change under x -> -x
    assert 0 < r["saturation_index"] < 1  # log contrast grows ever slower
    assert len(r["natural_top"]["index"]) == 8


def test_gratings_stay_in_a_bounded_input_range():
    m = model(input_range=(0.0, 1.0))
    frame = stimulus_frame(m, None)
    assert frame.mean == 0.5 and frame.amplitude == 0.5 and frame.contrast_from == "unit contrast"
    g = frame.gratings([0, 45], [0.1, 0.3], [0, 1], [frame.amplitude] * 2)
    assert g.min() >= 0 and g.max() <= 1
    r = characterise(m, "units", 1)
    assert max(r["contrast_response"]["contrasts"]) <= 0.5 / math.sqrt(2) + 1e-6  # no contrast beyond the range


def test_wave_vector_convention_vertical_stripes_are_zero_degrees():
    frame = stimulus_frame(model(), None)
    g = frame.gratings([0.0], [0.1], [0.0], [1.0])[0, 0].numpy()
    assert np.allclose(g[0], g[-1])  # constant down a column: the wave vector points along x (columns)
    assert not np.allclose(g[:, 0], g[:, 5])


def test_helpers_on_known_curves():
    p = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    f0, f1 = harmonics(3 + 2 * np.cos(p + 0.4))
    assert f0 == pytest.approx(3) and f1 == pytest.approx(2)
    assert phase_modulation(np.maximum(np.cos(p), 0), 0.0)[0] == pytest.approx(math.pi / 2, rel=0.02)
    assert phase_modulation(np.cos(p), 0.0)[0] == 1000.0  # linear: F0 = 0, capped
    grid = np.linspace(-5, 5, 101)
    assert half_height_width(np.exp(-grid ** 2 / 2), grid, circular=False) == pytest.approx(2.3548, rel=0.01)
    assert half_height_width(np.ones(10), np.arange(10.0), circular=False) is None  # untuned
    c = np.array([0.5, 1, 2, 4])
    assert saturation_index(c, 3 * c, 1.0) == pytest.approx(0.0)  # linear
    assert saturation_index(c, np.array([1, 2, 2, 2.0]), 1.0) == pytest.approx(1.0)  # flat at the top


def test_bad_layer_or_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="no layer"):
        characterise(model(), "nope", 0)
    with pytest.raises(ValueError, match="outside"):
        characterise(model(), "units", 9)


def test_characterise_command_on_the_shipped_model(tmp_path):
    """A shipped z2 energy unit: even and phase-invariant, tuned to fine gratings, measured on data."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from meiscope.cli import app

    result = CliRunner().invoke(app, ["characterise", "--unit", "94", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "characterisation.json").read_text())
    for key in ("preferred_orientation_deg", "preferred_sf_cycles_per_pixel", "phase_modulation", "odd_share",
                "contrast_response", "blank_response"):
        assert key in record
    assert record["odd_share_measured_on"] == "data" and record["odd_share"] < 0.05
    assert record["phase_modulation"] < 0.5 and 0.25 < record["preferred_sf_cycles_per_pixel"] < 0.45
    assert record["stimulus"]["contrast_from"] == "data" and len(record["natural_top"]["index"]) == 8
    texture = record["texture_modulation"]  # the TDVAE's z2: texture against spectrally matched noise
    assert texture["families"] and len(texture["index"]) == len(texture["families"])
    assert texture["ci95"][0] <= texture["mean_index"] <= texture["ci95"][1]
    assert Image.open(tmp_path / "characterisation.png").size[0] >= 2000  # print resolution
    assert CliRunner().invoke(app, ["characterise", "--unit", "300"]).exit_code == 2


def test_characterise_command_on_an_own_model(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from meiscope.cli import app

    monkeypatch.setenv("MEISCOPE_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["characterise", "--model", "meiscope.examples.digits:build", "--unit", "3",
                                      "--unit", "7", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for unit in (3, 7):
        record = json.loads((tmp_path / "out" / f"logits-{unit}" / "characterisation.json").read_text())
        assert record["layer"] == "logits" and record["unit_class"] and "texture_modulation" not in record
        assert 0 <= record["preferred_orientation_deg"] < 180
