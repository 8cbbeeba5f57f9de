"""The sweep routes: list, grid, one cell's run, export; names and run ids validated."""

import io
import json
import zipfile

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from meiscope.server.encode import decode_array
from meiscope.server.routes.sweeps import sweep_router
from meiscope.sweep import SweepSpec, SweepStore, expand, run_sweep


@pytest.fixture(scope="module")
def sweeps_dir(shipped, tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    spec = SweepSpec(name="grid-1", base={"steps": 3, "elbo_every": 0, "method": "transform"},
                     axes={"transform.kernel_size": [5, 9], "seed": [0, 1]}, units=[51, 3])
    run_sweep(expand(spec), root=root, model=shipped, formats=("png",), progress=False)
    (root / "not-a-sweep").mkdir()
    return root


@pytest.fixture(scope="module")
def client(sweeps_dir):
    app = FastAPI()
    app.include_router(sweep_router(sweeps_dir))
    return TestClient(app)


def test_list_and_grid(client, sweeps_dir):
    listing = client.get("/api/sweeps").json()
    assert listing == [{"name": "grid-1", "axes": {"transform.kernel_size": [5, 9], "seed": [0, 1]}, "units": 2,
                        "points": 4, "runs": 8, "stored": 8}]
    grid = client.get("/api/sweeps/grid-1").json()
    assert grid["units"] == [51, 3] and grid["points"][1] == {"transform.kernel_size": 5, "seed": 1}
    images = decode_array(grid["images"])
    assert images.shape == (4, 2, 40, 40)
    store = SweepStore(sweeps_dir, "grid-1")
    run = store.load(grid["run_ids"][3][1])  # kernel 9, seed 1, unit 3
    assert (run.config.unit, run.config.seed, run.config.transform.kernel_size) == (3, 1, 9)
    np.testing.assert_allclose(images[3, 1], run.images[0])
    assert grid["activation"][3][1] == pytest.approx(float(run.final_activation[0]), rel=1e-6)


def test_one_cell_opens_as_a_frame_with_curves(client):
    grid = client.get("/api/sweeps/grid-1").json()
    rid = grid["run_ids"][2][0]
    body = client.get(f"/api/sweeps/grid-1/runs/{rid}").json()
    assert body["unit"] == 51 and body["config"]["transform"]["kernel_size"] == 9 and body["config"]["unit"] == 51
    assert body["frame"]["type"] == "frame" and body["frame"]["step"] == 3
    assert decode_array(body["frame"]["arrays"]["kernels"]).shape == (1, 9, 9)
    assert len(body["curves"]["activation"]) == 3 and body["curves"]["elbo"] == [None] * 3
    assert body["curves"]["activation"][-1] == pytest.approx(grid["activation"][2][0], rel=1e-6)


@pytest.mark.parametrize("path, status, message", [
    ("/api/sweeps/nope", 404, "no sweep 'nope'"),
    ("/api/sweeps/not-a-sweep", 404, "no sweep"),
    ("/api/sweeps/..%2Fetc", 404, "Not Found"),  # a slash never reaches the route
    ("/api/sweeps/bad%20name", 422, "name"),
    ("/api/sweeps/.hidden/export", 422, "name"),
    ("/api/sweeps/grid-1/runs/xyz", 422, "run_id"),
    ("/api/sweeps/grid-1/runs/0123456789abcdef", 404, "no stored run"),
])
def test_bad_names_and_ids(client, path, status, message):
    response = client.get(path)
    assert response.status_code == status and message in json.dumps(response.json()["detail"])


def test_export_holds_a_run_per_grid_point_and_the_sweep_files(client):
    response = client.get("/api/sweeps/grid-1/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        names = zf.namelist()
        config = json.loads(zf.read("p03_transform.kernel_size=9_seed=1/config.json"))
        assert "sweep grid-1" in zf.read("README.txt").decode()
    assert config["unit"] == [51, 3] and config["seed"] == 1
    assert sum(n.endswith("/config.json") for n in names) == 4
    assert {"summary.csv", "summary.json", "sweep.json", "sheets/seed.png", "sheet.pdf"} <= set(names)
