"""Natural anchors: the data inputs that drive each unit most, beside its preferred input. They are the true top
inputs (checked against a brute-force pass and by re-reading the unit on them), they travel with every run into
its saved files, figures and exports, and the page shows them."""

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from meiscope import AMConfig, Run, run
from meiscope.examples.digits import build as digits
from meiscope.model.hooked import HookedModel
from meiscope.model.natural import TOP_K, top_inputs
from meiscope.presentation.figures import save_with_figures
from meiscope.server.app import create_app
from meiscope.server.encode import decode_array


def test_top_inputs_are_the_largest_activations_in_order():
    acts = np.array([[1.0, 5.0], [3.0, 4.0], [2.0, 6.0]])
    images = np.arange(3)[:, None, None] * np.ones((3, 2, 2))
    top = top_inputs(images, acts, k=2)
    assert top["index"].tolist() == [[1, 2], [2, 0]]
    assert top["activation"].tolist() == [[3.0, 2.0], [6.0, 5.0]]
    assert top["images"][:, :, 0, 0].tolist() == [[1.0, 2.0], [2.0, 0.0]]


def test_a_hooked_model_takes_them_from_its_census_data():
    model = digits()
    top = model.natural_top("logits")
    with torch.no_grad():
        acts = model.readouts(model.census_data, {("logits", "mean")})[("logits", "mean")].numpy()
    for unit in range(10):
        order = np.argsort(-acts[:, unit])[:TOP_K]
        np.testing.assert_allclose(top["activation"][unit], acts[order, unit], rtol=1e-5)
        np.testing.assert_array_equal(top["images"][unit], model.census_data[order].numpy())
    assert HookedModel(model.module, {"logits": "fc2"}, (1, 8, 8)).natural_top("logits") is None  # no data


def test_the_tdvae_takes_held_out_patches_that_drive_the_unit_past_its_percentile(shipped, top_units):
    top = shipped.natural_top("z2")
    for record in top_units:
        u = record["unit"]
        acts = top["activation"][u]
        assert (np.diff(acts) <= 0).all() and acts[0] >= record["act_p999"]  # the top of the data
        with torch.no_grad():
            again = shipped.readouts(torch.as_tensor(top["images"][u]).unsqueeze(1), {("z2", "mean")})[("z2", "mean")]
        np.testing.assert_allclose(again[:, u].numpy(), acts, rtol=1e-4, atol=1e-4)  # they are those inputs


def test_a_run_carries_them_into_its_files_and_figures(shipped, tmp_path):
    result = run(shipped, AMConfig(unit=[50, 94], samples=2, steps=5))
    assert result.natural["images"].shape == (4, TOP_K, 40, 40) and result.natural["activation"].shape == (4, TOP_K)
    top = shipped.natural_top("z2")
    np.testing.assert_array_equal(result.natural["activation"][2], top["activation"][94])  # row 2: unit 94, sample 0
    save_with_figures(result, tmp_path / "run")
    again = Run.load(tmp_path / "run")
    np.testing.assert_array_equal(again.natural["images"], result.natural["images"])
    assert (tmp_path / "run" / "figures" / "natural.png").is_file()
    directions = run(shipped, AMConfig(unit=50, steps=3, objective={"terms": [{"unit": 50}, {"unit": 94, "weight": -1}]}))
    assert directions.natural == {}  # a direction in the layer has no census of its own


def test_the_api_serves_them_and_refuses_what_it_cannot(shipped):
    with TestClient(create_app(cache_dir=None, sweeps_dir=None, model=shipped)) as client:
        assert client.get("/api/model").json()["natural"] is True
        answer = client.get("/api/units/94/natural").json()
        assert len(answer["activation"]) == TOP_K and decode_array(answer["images"]).shape == (TOP_K, 40, 40)
        assert client.get("/api/units/250/natural").status_code == 422
        assert client.get("/api/units/3/natural", params={"layer": "z9"}).status_code == 422
    bare = HookedModel(digits().module, {"logits": "fc2"}, (1, 8, 8), name="bare")
    with TestClient(create_app(cache_dir=None, sweeps_dir=None, model=bare)) as client:
        assert client.get("/api/model").json()["natural"] is False
        assert client.get("/api/units/0/natural").status_code == 404
