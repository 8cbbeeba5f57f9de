"""Who gets in: loopback by default, a token for anything else, no cross-origin runs, no CORS, no path in
a run id, and limits on runs per client and on the history kept."""

import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from meiscope.cli import app as cli
from meiscope.server.app import create_app
from meiscope.server.limits import ServerLimits

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    app = create_app(runs_dir=tmp_path_factory.mktemp("guarded"), cache_dir=None, token=TOKEN,
                     allowed_hosts=["testserver", "127.0.0.1"])
    with TestClient(app) as c:
        yield c


def test_without_the_token_nothing_answers(guarded):
    for path in ("/api/health", "/api/units", "/openapi.json", "/", "/api/runs/0123456789ab/export"):
        response = guarded.get(path)
        assert response.status_code == 401, path
        assert "token" in response.json()["detail"]
    assert guarded.post("/api/runs", json={"unit": 3, "steps": 2}).status_code == 401
    assert guarded.get("/api/health", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    with pytest.raises(WebSocketDisconnect) as refused:
        with guarded.websocket_connect("/ws/runs") as ws:
            ws.receive_json()
    assert refused.value.code == 1008


def test_with_the_token_everything_answers(guarded):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/api/health", headers=bearer).json()["status"] == "ok"
    # the link that `meiscope serve` prints sets a cookie, which the page's own requests then carry
    page = guarded.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "meiscope_token" in page.headers["set-cookie"]
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
    assert guarded.get("/api/units").status_code == 200  # the cookie jar now holds the token
    with guarded.websocket_connect("/ws/runs") as ws:
        ws.send_json({"type": "start", "config": {"unit": 3, "steps": 2}})
        assert ws.receive_json()["type"] == "started"
    guarded.cookies.clear()


def test_other_hosts_and_other_origins_are_refused(guarded):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    rebound = guarded.get("/api/health", headers={**bearer, "Host": "evil.example:8000"})
    assert rebound.status_code == 400 and "not served here" in rebound.json()["detail"]
    cross = guarded.post("/api/runs", json={"unit": 3, "steps": 2}, headers={**bearer, "Origin": "http://evil.example"})
    assert cross.status_code == 403 and "another origin" in cross.json()["detail"]
    with pytest.raises(WebSocketDisconnect) as refused:
        with guarded.websocket_connect("/ws/runs", headers={**bearer, "Origin": "http://evil.example"}) as ws:
            ws.receive_json()
    assert refused.value.code == 1008
    same = guarded.get("/api/health", headers={**bearer, "Origin": "http://testserver"})
    assert same.status_code == 200


def test_no_cors_by_default(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path, cache_dir=None)) as client:
        response = client.get("/api/health", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in response.headers
        preflight = client.options("/api/runs", headers={"Origin": "http://elsewhere.example",
                                                         "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


def test_request_bodies_are_bounded(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path, cache_dir=None, limits=ServerLimits(max_message_bytes=2048))) as client:
        big = client.post("/api/runs", content=b'{"unit": 3, "pad": "' + b"x" * 5000 + b'"}',
                          headers={"Content-Type": "application/json"})
        assert big.status_code == 413 and "2048 bytes" in big.json()["detail"]

        def chunks():
            yield b'{"unit": 3}'

        chunked = client.post("/api/runs", content=chunks(), headers={"Content-Type": "application/json"})
        assert chunked.status_code == 411


def test_serve_refuses_other_addresses_without_a_token(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--cache-dir", str(tmp_path)], env={"MEISCOPE_TOKEN": ""})
    assert result.exit_code == 2 and "without a token" in result.output
    assert len(result.output.strip().splitlines()) == 1
    weak = runner.invoke(cli, ["serve", "--token", "short", "--cache-dir", str(tmp_path)])
    assert weak.exit_code == 2 and "--token" in weak.output


def test_run_ids_never_reach_the_file_system(tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "run.json").write_text("{}")
    with TestClient(create_app(runs_dir=tmp_path / "runs", cache_dir=None)) as client:
        for bad in ("..%2Fsecret", "../secret", "%2e%2e%2fsecret", "0123456789ab%2F..", "secret"):
            assert client.get(f"/api/runs/{bad}").status_code in (404, 422), bad
            assert client.get(f"/api/runs/{bad}/export").status_code in (404, 422), bad
        response = client.get("/api/export?ids=0123456789ab,../../secret")
        assert response.status_code == 422 and "12 hex digits" in response.json()["detail"]
        too_many = ",".join(f"{i:012x}" for i in range(40))
        assert client.get(f"/api/export?ids={too_many}").status_code == 422


def test_runs_per_client_and_history_are_bounded(tmp_path):
    limits = ServerLimits(max_runs_per_client=2, history=3, stored_runs=4)
    with TestClient(create_app(runs_dir=tmp_path, max_running=1, cache_dir=None, limits=limits)) as client:
        long = {"unit": 3, "steps": 10_000}
        first, second = (client.post("/api/runs", json=long) for _ in range(2))
        assert first.status_code == second.status_code == 202
        third = client.post("/api/runs", json=long)
        assert third.status_code == 429 and "per client" in third.json()["detail"]
        assert third.headers["retry-after"]
        too_big = client.post("/api/runs", json={"unit": list(range(250)), "samples": 4})
        assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["body", "unit"]
        for job in client.app.state.jobs.list():
            job.stop()
        ids = [first.json()["run_id"], second.json()["run_id"]]
        for run_id in ids:  # stopped runs count until their worker has noticed
            while client.get(f"/api/runs/{run_id}").json()["status"] in ("queued", "running"):
                time.sleep(0.02)
        for _ in range(5):  # more short runs than the history and the disk keep
            ids.append(client.post("/api/runs", json={"unit": 3, "steps": 2}).json()["run_id"])
            while client.get(f"/api/runs/{ids[-1]}").json()["status"] in ("queued", "running"):
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while not (tmp_path / ids[-1] / "run.json").exists():  # saved just after it is reported finished
            assert time.monotonic() < deadline
            time.sleep(0.02)
        while len(client.app.state.jobs.list()) > 3:  # the worker forgets old runs just after saving
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stored = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
        assert len(stored) == 4 and stored == sorted(ids[-4:])
        # a run that left memory is read back from disk; one that left the disk is gone
        assert client.get(f"/api/runs/{ids[-4]}").json()["status"] == "completed"
        assert client.get(f"/api/runs/{ids[0]}").status_code == 404


def test_nothing_is_ever_unpickled(tmp_path):
    """Only safetensors, JSON and pickle-free npz/npy are read from disk: no loader that runs code."""
    import re
    from pathlib import Path

    import numpy as np

    from meiscope.engine import Run

    source = Path(__file__).resolve().parents[1] / "backend" / "meiscope"
    loaders = re.compile(r"torch\.load\(|import pickle|pickle\.load|allow_pickle\s*=\s*True|joblib|dill|shelve|marshal")
    offenders = [f"{p.name}:{i + 1}" for p in source.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines()) if loaders.search(line)]
    assert offenders == []
    # a saved run whose arrays were swapped for pickled objects is refused, not executed
    folder = tmp_path / "run"
    (folder).mkdir()
    (folder / "run.json").write_text('{"format_version": 1, "config": {}, "rows": [], "info": {}}')
    np.savez(folder / "arrays.npz", images=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        Run.load(folder)


def test_snapshots_and_memory_of_kept_runs_are_bounded(tmp_path):
    limits = ServerLimits(max_snapshot_images=1000, history_mib=1)
    with TestClient(create_app(runs_dir=tmp_path, max_running=1, cache_dir=None, limits=limits)) as client:
        hoarder = client.post("/api/runs", json={"unit": list(range(20)), "steps": 100, "snapshot_every": 1})
        assert hoarder.status_code == 422 and hoarder.json()["detail"][0]["loc"] == ["body", "snapshot_every"]
        ids = []
        for _ in range(2):  # each run keeps 8 x 27 snapshots, about 1.4 MB: more than the 1 MiB kept in memory
            ids.append(client.post("/api/runs", json={"unit": list(range(8)), "steps": 50, "snapshot_every": 2}).json()["run_id"])
            while not client.get(f"/api/runs/{ids[-1]}").json()["saved"]:
                time.sleep(0.02)
        deadline = time.monotonic() + 30
        while any(j.finished for j in client.app.state.jobs.list()):  # forgotten just after saving
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for run_id in ids:  # still served, from disk
            assert len(client.get(f"/api/runs/{run_id}").json()["images"]) == 8
