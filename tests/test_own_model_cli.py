"""The digits CNN (meiscope.examples.digits:build) through the command line: every command that takes
--model runs it, a run exports, and what a classifier lacks is refused in one line naming the field."""

import json
import zipfile

import pytest
import yaml
from typer.testing import CliRunner

from meiscope.cli import app

DIGITS = "meiscope.examples.digits:build"
runner = CliRunner()


@pytest.fixture(autouse=True)
def digits_cache(tmp_path_factory, monkeypatch):
    # one cache for the module: the example trains once (seconds), later builds load its weights
    monkeypatch.setenv("MEISCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "digits-cache"))


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_info_says_what_the_model_offers():
    code, out = invoke("info", "--model", DIGITS)
    assert code == 0
    assert "input 1x8x8" in out and "logits (10 units)" in out and "ELBO: no" in out and "latent" not in out
    # what each layer reads: a conv channel at the centre of its map, which changes what its preferred input means
    assert "conv1: conv1: 8 channels before their ReLU, at the centre of the 8x8 map" in out


def test_am_runs_the_class_units_and_the_run_exports(tmp_path):
    code, out = invoke("am", "--model", DIGITS, "--unit", "all", "--gamma", "1", "--set", "obj.l2=1.0",
                       "--steps", "60", "--out", str(tmp_path / "am"))
    assert code == 0, out
    assert "10 row(s)" in out
    run = json.loads((tmp_path / "am" / "run.json").read_text())
    assert run["config"]["layer"] == "logits"  # the model's first layer, as no --layer was given
    assert run["info"]["model"]["spec"] == DIGITS and len(run["info"]["model"]["sha256"]) == 64
    code, out = invoke("export", str(tmp_path / "am"), "--out", str(tmp_path / "figures.zip"))
    assert code == 0, out
    with zipfile.ZipFile(tmp_path / "figures.zip") as zf:
        names = zf.namelist()
        readme = zf.read("README.txt").decode()
    assert "u0-9-pixel-am/figures/inputs.pdf" in names and "sheet.svg" in names
    assert "digits-cnn, meiscope.examples.digits:build, sha256 " in readme


def test_atlas_of_a_conv_layer(tmp_path):
    code, out = invoke("atlas", "--model", DIGITS, "--layer", "conv2", "--steps", "20", "--out", str(tmp_path / "a"))
    assert code == 0, out
    assert "16 row(s)" in out


def test_a_sweep_over_the_class_units(tmp_path):
    spec = tmp_path / "digits-l2.yaml"
    spec.write_text(yaml.safe_dump({"name": "digits-l2", "base": {"steps": 20, "grad": {"gamma": 1.0}},
                                    "axes": {"obj.l2": [0, 1.0]}, "units": "all"}))
    code, out = invoke("sweep", str(spec), "--model", DIGITS, "--out", str(tmp_path / "sweeps"), "--formats", "png")
    assert code == 0, out
    assert "2 config(s) x 10 unit(s)" in out
    assert (tmp_path / "sweeps" / "digits-l2" / "sheets" / "obj_l2.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--layer", "z2"], "error: layer: must be one of logits, fc1, conv2, conv1 for digits-cnn, got 'z2'"),
    (["--unit", "10"], "error: unit: must lie in 0..9 for layer logits, got [10]"),
    (["--set", "obj.elbo_weight=0.1"], "error: obj.elbo_weight: must be 0: digits-cnn has no ELBO"),
    (["--method", "latent_z2"], "error: method: must be one of pixel, distribution, transform, "
                                "transform_distribution for digits-cnn, got 'latent_z2'"),
    (["--set", "stat=std"], "error: stat: must be one of mean for layer logits, got 'std'"),
])
def test_what_a_classifier_lacks_is_refused_in_one_line(tmp_path, args, message):
    code, out = invoke("am", "--model", DIGITS, "--steps", "2", "--out", str(tmp_path / "x"), *args)
    assert code == 2 and out.strip() == message
    assert not (tmp_path / "x").exists()


def test_a_factory_that_cannot_load_is_one_line():
    code, out = invoke("info", "--model", "no_such_package.models:build")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert "cannot import 'no_such_package.models'" in out
    code, out = invoke("analyze", "--model", DIGITS, "--layer", "nope", "--unit", "3")  # what the model lacks
    assert code == 2 and "nope" in out and len(out.strip().splitlines()) == 1
