"""The server with FastAPI's TestClient: REST routes, websocket runs (stream, stop, replace, bad messages,
disconnect), runs saved to disk."""

import time

import pytest
from fastapi.testclient import TestClient

from meiscope import Run
from meiscope.server.app import create_app
from meiscope.server.routes.websocket import Outbox
from meiscope.server.encode import decode_array


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    runs = tmp_path_factory.mktemp("server-runs")
    with TestClient(create_app(runs_dir=runs, max_running=1, cache_dir=None)) as c:
        c.runs_dir = runs
        yield c


def _wait_finished(client, run_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/runs/{run_id}").json()
        if body["status"] in ("completed", "cancelled", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


def test_health_model_units_and_openapi(client):
    assert client.get("/api/health").json()["status"] == "ok"
    model = client.get("/api/model").json()
    assert model["n_parameters"] == 34_438_300 and model["card"]["model"] == "TDVAE-40"
    units = client.get("/api/units").json()
    assert len(units) == 250 and {"unit", "status", "mean_kl", "act_p999"} <= set(units[0])
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/model", "/api/units", "/api/runs", "/api/runs/{run_id}"} <= set(paths)
    assert client.get("/api/config/schema").json()["defaults"]["method"] == "pixel"


def test_post_run_then_get_it(client):
    created = client.post("/api/runs", json={"unit": [51, 94], "steps": 12, "elbo_every": 4})
    assert created.status_code == 202
    body = _wait_finished(client, created.json()["run_id"])
    assert body["status"] == "completed" and body["step"] == 12
    assert len(body["images"]) == 2 and len(body["images"][0]) == 40
    assert len(body["metrics"]["activation"]) == 12 and body["metrics"]["elbo"][1] == [None, None]
    assert len(body["final"]["activation"]) == 2
    while not client.get(f"/api/runs/{body['run_id']}").json()["saved"]:  # saved just after it completes
        time.sleep(0.02)
    saved = Run.load(client.runs_dir / body["run_id"])
    assert saved.config.units == [51, 94]
    assert any(r["run_id"] == body["run_id"] for r in client.get("/api/runs").json())


def test_bad_run_config_is_422_naming_the_field(client):
    response = client.post("/api/runs", json={"unit": 3, "grad": {"gamma": 9}})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"][:3] == ["body", "grad", "gamma"] and "[0, 4]" in detail["msg"]
    assert client.get("/api/runs/0123456789ab").status_code == 404
    assert client.get("/api/runs/nope").status_code == 422  # not a run id at all


def _receive_until(ws, kind):
    messages = []
    while True:
        message = ws.receive_json()
        messages.append(message)
        if message["type"] == kind:
            return messages


def test_websocket_streams_frames_then_done(client):
    with client.websocket_connect("/ws/runs") as ws:
        ws.send_json({"type": "start", "config": {"method": "transform", "unit": 51, "steps": 20, "snapshot_every": 5}})
        messages = _receive_until(ws, "done")
    assert messages[0]["type"] == "started"
    frames = [m for m in messages if m["type"] == "frame"]
    assert frames and frames[-1]["step"] == 20
    assert [f["step"] for f in frames] == sorted(f["step"] for f in frames)
    frame = frames[-1]
    assert decode_array(frame["images"]).shape == (1, 40, 40) and decode_array(frame["spectra"]).shape == (1, 40, 40)
    assert decode_array(frame["arrays"]["kernels"]).shape == (1, 9, 9) and "inputs" in frame["arrays"]
    assert set(frame["metrics"]) == {"activation", "runner_up", "runner_up_unit", "elbo", "objective"}
    assert messages[-1]["status"] == "completed" and messages[-1]["run_id"] == messages[0]["run_id"]


def test_websocket_stop_cancels_and_the_connection_stays_usable(client):
    with client.websocket_connect("/ws/runs") as ws:
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "start", "config": {"unit": 3, "steps": 10, "optimizer": {"lr": 500}}})
        error = ws.receive_json()
        assert error["type"] == "error" and "optimizer.lr" in error["message"]
        ws.send_json({"type": "pause"})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "start", "config": {"unit": 3, "steps": 10000, "snapshot_every": 1}})
        started = ws.receive_json()
        assert started["type"] == "started"
        ws.receive_json()  # a first frame: the run is going
        ws.send_json({"type": "stop"})
        done = _receive_until(ws, "done")[-1]
        assert done["status"] == "cancelled" and done["step"] < 10000
        ws.send_json({"type": "start", "config": {"unit": 4, "steps": 3}})
        assert _receive_until(ws, "done")[-1]["status"] == "completed"


def test_disconnect_cancels_the_run(client):
    with client.websocket_connect("/ws/runs") as ws:
        ws.send_json({"type": "start", "config": {"unit": 7, "steps": 10000, "snapshot_every": 1}})
        run_id = ws.receive_json()["run_id"]
        ws.receive_json()
    assert _wait_finished(client, run_id)["status"] == "cancelled"


def test_outbox_keeps_order_and_only_the_newest_frame():
    import asyncio

    async def scenario():
        box = Outbox()
        box.put({"type": "started"})
        for i in range(5):
            box.put({"type": "frame", "step": i}, frame_of="r1")
        box.put({"type": "done"})
        return [(await box.get())[0] for _ in range(3)]

    assert asyncio.run(scenario()) == [{"type": "started"}, {"type": "frame", "step": 4}, {"type": "done"}]


def test_export_zip_holds_figures_configs_arrays_and_metrics(client):
    import csv
    import io
    import zipfile

    ids = []
    for config in ({"unit": 51, "steps": 6}, {"method": "transform", "unit": [3, 4], "steps": 5}):
        ids.append(client.post("/api/runs", json=config).json()["run_id"])
        _wait_finished(client, ids[-1])
    response = client.get(f"/api/export?ids={','.join(ids)}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    folders = [f"u51-pixel-{ids[0]}", f"u3_4-transform-{ids[1]}"]  # named by unit, method and id
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        names = set(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{folders[1]}/metrics.csv").decode())))
        readme = zf.read("README.txt").decode()
    for folder in folders:
        assert {f"{folder}/config.json", f"{folder}/arrays.npz", f"{folder}/metrics.csv"} <= names
        for fmt in ("png", "svg", "pdf"):
            assert f"{folder}/figures/inputs.{fmt}" in names and f"{folder}/figures/metrics.{fmt}" in names
    assert f"{folders[1]}/figures/kernels.pdf" in names and f"{folders[0]}/figures/kernels.pdf" not in names
    assert {"sheet.png", "sheet.svg", "sheet.pdf"} <= names and folders[0] in readme
    assert "unit 51 · pixel" in readme and "units 3–4 · transform" in readme
    assert len(rows) == 5 * 2 and {r["unit"] for r in rows} == {"3", "4"}
    assert client.get("/api/runs/0123456789ab/export").status_code == 404
    assert client.get("/api/runs/nope/export").status_code == 422
    assert client.get("/api/export?ids=").status_code == 422


def test_unit_analysis_of_a_layer_with_its_zip(client, monkeypatch):
    """/api/units/{unit}/analysis?layer=z1 analyses the z1 unit (not z2's), says so, and its zip holds the JSON with
    the readings, the arrays and a 300-dpi figure; an unknown layer is a 422 naming `layer`."""
    import functools
    import io
    import json
    import zipfile

    import numpy as np

    from meiscope.analysis.report import analyze_unit
    from meiscope.server.routes import analysis as routes

    monkeypatch.setattr(routes, "analyze_unit", functools.partial(analyze_unit, n_sta=300, steps=15, n_data=128))
    bad = client.get("/api/units/3/analysis", params={"layer": "z3"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "layer"]
    assert client.get("/api/units/1800/analysis", params={"layer": "z1"}).status_code == 422
    assert client.get("/api/model").json()["analysis"] is True
    body = client.get("/api/units/12/analysis", params={"layer": "z1"}).json()
    assert body["numbers"]["layer"] == "z1" and body["numbers"]["unit"] == 12
    assert body["readings"]["summary"].startswith("z1 unit 12")
    keys = {p["key"] for p in body["panels"]}
    assert {"sta", "gradient", "one_hot", "gabor.fit", "occlusion", "shift", "spectrum", "nearest.pixel.3",
            "nearest.activation.3"} <= keys
    assert all(p["reading"] and p["values"] for p in body["panels"])
    assert next(p for p in body["panels"] if p["key"] == "shift")["axes"]["x"] == "dx (px)"
    assert client.get("/api/units/12/analysis/progress", params={"layer": "z1"}).json()["stage"] == "done"
    shipped = client.get("/api/units/12/analysis.zip", params={"layer": "z1"})
    assert shipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(shipped.content)) as archive:
        names = set(archive.namelist())
        assert names == {f"analysis-z1-12/{n}" for n in ("analysis.json", "arrays.npz", "analysis.png")}
        numbers = json.loads(archive.read("analysis-z1-12/analysis.json"))
        arrays = np.load(io.BytesIO(archive.read("analysis-z1-12/arrays.npz")))
        png = archive.read("analysis-z1-12/analysis.png")
    assert numbers["layer"] == "z1" and numbers["readings"]["agreement"]
    assert arrays["one_hot.pattern"].shape == (40, 40)
    phys = png[png.index(b"pHYs") + 4:][:8]  # pixels per metre: 300 dpi is 11811
    assert int.from_bytes(phys[:4], "big") == 11811
