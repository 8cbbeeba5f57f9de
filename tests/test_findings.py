"""meiscope reproduce: the statistics behind the verdicts on known inputs (bootstrap intervals, the verdict rule,
power above 0.45 c/px, amplitude-spectrum likeness), the verdicts that need unit classes, the record of changes,
and a short run on the shipped model that measures every finding."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from meiscope.cli import app
from meiscope.reference.findings import Experiments, Finding
from meiscope.reference.findings_report import PROTOCOL_CHANGE, changes_since
from meiscope.reference.findings_stats import (VERDICTS, beyond, bootstrap_ci, group_difference_ci, pixel_corr,
                                               power_above, radial_frequency, same_vs_other, spectrum_corr, within_unit)


def grating(sf: float, theta: float = 0.3, phase: float = 0.0, size: int = 40) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return np.cos(2 * np.pi * sf * (x * np.cos(theta) + y * np.sin(theta)) + phase)


def test_the_bootstrap_interval_covers_a_known_mean_at_its_known_width():
    rng = np.random.default_rng(1)
    values = rng.normal(0.5, 1.0, 400)
    m, lo, hi = bootstrap_ci(values)
    assert lo < 0.5 < hi and lo < m < hi
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.15)  # the standard error of a mean of 400


def test_the_bootstrap_resamples_units_not_seeds():
    # 10 units whose 5 seeds agree: 50 rows, but only 10 independent numbers; treating the seeds as units would
    # make the interval sqrt(5) times too narrow
    rng = np.random.default_rng(2)
    per_unit = rng.normal(0.0, 1.0, 10)
    rows = np.repeat(per_unit[:, None], 5, 1)
    assert bootstrap_ci(rows) == pytest.approx(bootstrap_ci(per_unit))
    flat = bootstrap_ci(rows.ravel())
    assert (flat[2] - flat[1]) < 0.6 * (bootstrap_ci(rows)[2] - bootstrap_ci(rows)[1])


def test_the_verdict_rule_needs_the_whole_interval_beyond_the_reference():
    assert beyond((0.3, 0.1, 0.5)) == "agrees"
    assert beyond((0.3, -0.1, 0.5)) == "disagrees"  # spans 0: no effect resolved
    assert beyond((-0.3, -0.5, -0.1)) == "disagrees"  # the other side
    assert beyond((-0.3, -0.5, -0.1), direction=-1) == "agrees"
    assert beyond((1.5, 1.1, 2.0), 1.0) == "agrees" and beyond((1.5, 0.9, 2.0), 1.0) == "disagrees"
    assert set(VERDICTS) == {"agrees", "disagrees", "not testable on this model"}


def test_two_groups_are_resampled_apart():
    a, b = np.full(6, 2.0) + np.linspace(-0.1, 0.1, 6), np.full(9, 1.0)
    d, lo, hi = group_difference_ci(a, b)
    assert d == pytest.approx(1.0) and 0.9 < lo < 1.0 < hi < 1.1


def test_power_above_cutoff_separates_the_units_gratings_from_noise():
    assert power_above(grating(0.375, theta=0.0)) < 1e-12  # the units' preferred gratings are not high-frequency noise
    assert power_above(grating(0.375)) < 0.05  # an oblique one leaks a little (not periodic in the patch)
    assert power_above(grating(0.475, theta=0.0)) > 1 - 1e-12  # 19 cycles per patch
    noise = np.random.default_rng(3).standard_normal((200, 40, 40))
    f = radial_frequency(40)
    expected = (f > 0.45).sum() / (f.size - 1)  # white noise spreads its power evenly over the frequencies
    assert power_above(noise).mean() == pytest.approx(expected, rel=0.05)
    assert power_above(grating(0.3)[None] + 0 * noise[:1]).shape == (1,)


def test_a_phase_shift_keeps_the_amplitude_spectrum_but_not_the_pixels():
    a, b = grating(0.25, phase=0.0), grating(0.25, phase=np.pi / 2)
    assert spectrum_corr(a, b) == pytest.approx(1.0, abs=1e-3)
    assert abs(pixel_corr(a, b)) < 0.1
    other = grating(0.25, theta=1.6)
    assert spectrum_corr(a, other) < 0.3
    # 2 units x 3 seeds, each unit's seeds at random phases: consistent in spectrum, not in pixels
    rng = np.random.default_rng(4)
    images = np.array([[grating(0.3, t, rng.uniform(0, 2 * np.pi)) for _ in range(3)] for t in (0.2, 1.7)])
    assert within_unit(images).min() > 0.99 and within_unit(images, pixel_corr).min() < 0.9
    same, other = same_vs_other(images, images[:, ::-1])
    assert same.min() > 0.99 and other.max() < 0.3


class Classes:
    """Just enough of Experiments to ask whether the texture-sensitive vs other contrast is testable."""

    untestable_contrast = Experiments.untestable_contrast
    members = Experiments.members

    def __init__(self, classes):
        self.units = list(range(len(classes)))
        self.classes = classes
        self.traits = [{"odd_share": 0.4 if c == "linear" else 0.002} for c in classes]


def test_a_class_contrast_needs_units_of_both_kinds():
    assert Classes(["linear"] * 3 + ["phase-invariant"] * 3).untestable_contrast() is None
    why = Classes(["phase-invariant"] * 19 + ["contrast"] * 2).untestable_contrast()
    assert "0 linear and 21 nonlinear" in why and "max 0.002" in why
    assert "not measured" in Classes.untestable_contrast(type("X", (), {"classes": None})())


def test_a_part_is_compared_with_the_previous_whole_and_the_protocol_change_is_said():
    now = [Finding("F1a", "claim", "agrees", "new numbers"), Finding("F2", "claim", "disagrees", "same")]
    lines = changes_since(now, [{"id": "F1", "verdict": "mixed", "observed": "old numbers"},
                                {"id": "F2", "verdict": "disagrees", "observed": "x"}], "old model")
    text = "\n".join(lines)
    assert "| F1a | mixed | agrees | old numbers | new numbers |" in text and "| F2 |" not in text
    assert PROTOCOL_CHANGE in text
    assert changes_since(now, [{"id": "F1", "verdict": "mixed", "observed": "o", "rule": "r"}], "m")[-1].startswith("| F1a")


def test_reproduce_measures_all_sixteen_findings(tmp_path):
    # a previous model's record (the format before the model was named in it): F1's verdict differs
    (tmp_path / "findings.json").write_text(json.dumps([{"id": "F1", "verdict": "unheard-of", "observed": "old numbers"}]))
    result = CliRunner().invoke(app, ["reproduce", "--steps", "6", "--seeds", "2", "--patches", "256",
                                      "--units", "12,50,140", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "findings.json").read_text())
    assert record["model"].startswith("released ")
    findings = record["findings"]
    assert {f["id"].rstrip("abcd") for f in findings} == {f"F{i}" for i in range(1, 17)}
    assert {f["verdict"] for f in findings} <= set(VERDICTS)
    assert all(f["rule"] and f["section"] for f in findings)
    assert record["units"] == [12, 50, 140] and len(record["unit_classes"]) == 3 and record["seeds"] == 2
    text = (tmp_path / "FINDINGS.md").read_text()
    assert "| F1a | unheard-of | " in text and "| old numbers |" in text
    assert "## The units" in text and "bootstrap 95% interval" in text
    for f in findings:
        if f["figure"]:
            assert (tmp_path / f["figure"]).is_file()
