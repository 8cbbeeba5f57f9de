"""One default configuration: AMConfig(), `meiscope am`, `meiscope atlas`, the server's atlas and the unit analysis
run the same configuration, up to the unit and the layer (and how often they record a snapshot or the ELBO, which
changes nothing of the optimisation; the analysis takes three samples of it). The page's first run is checked in
the browser (test_browser_instrument.py). The named presets state every regulariser, so that they mean what
their names say whatever the defaults are."""

import json

from typer.testing import CliRunner

from meiscope import AMConfig
from meiscope.analysis.report import preferred_config
from meiscope.cli import app
from meiscope.engine.presets import PRESETS
from meiscope.server.atlas import atlas_config

RECORDING = ("unit", "layer", "snapshot_every", "elbo_every")
runner = CliRunner()


def optimisation(config: AMConfig | dict, *also: str) -> dict:
    data = config.model_dump(mode="json") if isinstance(config, AMConfig) else config
    return {k: v for k, v in data.items() if k not in RECORDING + also}


def test_every_entry_point_runs_the_default_configuration(shipped, tmp_path):
    default = optimisation(AMConfig())
    for command in ("am", "atlas"):
        out = tmp_path / command
        result = runner.invoke(app, [command, "--unit", "50", "--out", str(out), "--no-figures"])
        assert result.exit_code == 0, result.output
        assert optimisation(json.loads((out / "config.json").read_text())) == default, command
    assert optimisation(atlas_config(shipped)) == default
    analysis = preferred_config(50)
    assert analysis.samples == 3 and optimisation(analysis, "samples") == optimisation(AMConfig(), "samples")


def test_the_default_is_the_measured_one():
    config = AMConfig()
    assert (config.method, config.optimizer.name, config.optimizer.lr, config.steps) == ("pixel", "rmsprop", 0.03, 200)
    assert (config.pre.jitter, config.grad.gamma, config.grad.confine, config.post.blur_sigma) == ("auto", 1.5, True, 0.27)
    assert config.obj.elbo_weight == 0 and config.keep_in_range
    assert (config.pre.jitter_pixels(40, 40), config.pre.jitter_pixels(8, 8)) == (2, 0)


def test_named_presets_state_their_regularisers():
    assert PRESETS["default"] == {}
    plain = AMConfig.model_validate(PRESETS["pixel, unregularised"])
    assert (plain.pre.jitter, plain.grad.gamma, plain.post.blur_sigma, plain.optimizer.lr) == (0, 0.0, 0.0, 0.01)
    regularised = AMConfig.model_validate(PRESETS["pixel, jitter + gradient filter"])
    assert (regularised.pre.jitter, regularised.grad.gamma, regularised.post.blur_sigma) == (2, 1.0, 0.0)
