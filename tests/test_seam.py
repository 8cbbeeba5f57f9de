"""The engine through the model seam on a model unlike the TDVAE: 3 channels, a non-square input, no ELBO,
no latents. Every image method and regulariser runs, results keep the input's shape, figures, exports and
the page's frames handle colour, and a run records the model it came from."""

import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from meiscope import AMConfig, Run, run
from meiscope.engine.model_check import ConfigMismatch
from meiscope.presentation.export import write_export
from meiscope.presentation.figures import save_with_figures
from meiscope.model.hooked import HookedModel
from meiscope.server.encode import decode_array, encode_frame


@pytest.fixture(scope="module")
def colour_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    model = HookedModel(net, {"out": "5", "conv2": "2"}, (3, 12, 10), input_range=(0, 1), centred=False,
                        name="colour-toy").eval()
    model.source = {"name": model.name, "spec": "tests:colour_model", "sha256": "0" * 64}
    return model


@pytest.mark.parametrize("method, extra", [
    ("pixel", {"pre": {"jitter": 2, "scale": 0.1}, "grad": {"gamma": 1.0}, "obj": {"tv": 0.01},
               "post": {"blur_sigma": 0.5, "bilateral_sigma": 1.0, "tv_denoise": 0.05, "clip": 2.0}}),
    ("distribution", {"distribution": {"learn_sigma": True, "draws": 3}, "samples": 2, "diversity": {"weight": 0.5}}),
    ("transform", {"transform": {"kind": "cnn", "layers": 3, "channels": 4, "kernel_size": 3}}),
    ("transform_distribution", {"transform": {"kernel_size": 5}, "distribution": {"draws": 2}}),
])
def test_every_image_method_keeps_the_models_input_shape(colour_model, method, extra, tmp_path):
    config = AMConfig.model_validate({"method": method, "unit": [0, 2], "layer": "out", "steps": 6,
                                      "snapshot_every": 2, **extra})
    frames = []
    result = run(colour_model, config, on_step=frames.append)
    rows = 2 * config.samples
    assert result.images.shape == result.best_images.shape == (rows, 3, 12, 10)
    assert result.snapshots.shape[1:] == (rows, 3, 12, 10)
    assert np.isnan(result.metrics["elbo"]).all()  # no ELBO: nothing measured, nothing broken
    assert np.isfinite(result.metrics["activation"]).all()
    message = encode_frame(frames[-1], "r")
    assert decode_array(message["images"]).shape == (rows, 3, 12, 10)
    assert decode_array(message["spectra"]).shape == (rows, 12, 10)
    save_with_figures(result, tmp_path / "run")
    again = Run.load(tmp_path / "run")
    np.testing.assert_array_equal(again.images, result.images)
    assert (tmp_path / "run" / "figures" / "inputs.png").is_file()


def test_runs_record_their_model_and_export_lists_it(colour_model, tmp_path):
    result = run(colour_model, AMConfig(unit=1, layer="conv2", steps=3))
    assert result.info["model"] == colour_model.source
    assert result.info["input"] == {"shape": [3, 12, 10], "range": (0.0, 1.0), "centred": False}
    assert result.info["meiscope"]
    write_export({"a": result}, tmp_path / "x.zip", formats=("png",))
    with zipfile.ZipFile(tmp_path / "x.zip") as zf:
        assert "colour-toy, tests:colour_model, sha256 " + "0" * 64 in zf.read("README.txt").decode()


def test_a_config_is_checked_against_the_model(colour_model):
    with pytest.raises(ConfigMismatch, match="^unit: must lie in 0..3 for layer conv2, got \\[4\\]$"):
        run(colour_model, AMConfig(unit=4, layer="conv2", steps=1))
    with pytest.raises(ConfigMismatch, match="^obj.elbo_weight: must be 0: colour-toy has no ELBO$"):
        run(colour_model, AMConfig(unit=0, layer="out", obj={"elbo_weight": 0.1}))
    with pytest.raises(ConfigMismatch, match="^method: must be one of pixel, distribution, transform"):
        run(colour_model, AMConfig(unit=0, layer="out", method="latent_z1", latent={"init": "prior_mean"}))


def test_the_tdvae_offers_everything(shipped):
    info = shipped.info()
    assert info.methods == ["pixel", "distribution", "transform", "transform_distribution", "latent_z2", "latent_z1"]
    assert info.has_elbo and info.default_layer == "z2" and info.input["shape"] == [1, 40, 40]
    assert [(layer["name"], layer["units"], layer["stats"]) for layer in info.layers] == \
        [("z2", 250, ["mean", "std"]), ("z1", 1800, ["mean", "std"])]
    assert len(shipped.census("z2")) == 250 and shipped.census("z1") is None
