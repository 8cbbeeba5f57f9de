"""Faults: processes killed in the middle of a run save, an export or a run; a full or unwritable cache or
runs folder. Nothing half-written is ever visible, the next start cleans up, and errors are clear."""

import errno
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from live_server import LiveServer
from meiscope.cli import app as cli
from meiscope.engine import AMConfig, Run
from meiscope.engine.result import METRICS
from meiscope.server.app import create_app

# A writer that stops in the middle of its write (after the first bytes are on disk) and waits to be killed.
WRITER = textwrap.dedent("""
    import sys, time, zipfile
    import numpy as np
    from meiscope.engine import AMConfig, Run
    from meiscope.engine.result import METRICS

    def stall(original):
        def wrapped(*args, **kwargs):
            original(*args, **kwargs)
            print("WRITING", flush=True)
            time.sleep(600)
        return wrapped

    run = Run(config=AMConfig(unit=3), images=np.ones((1, 40, 40), np.float32), best_images=np.ones((1, 40, 40), np.float32),
              best_step=np.zeros(1, np.int64), metrics={k: np.ones((2, 1), np.float32) for k in METRICS},
              rows=[{"unit": 3, "sample": 0}], info={"status": "completed"})
    if sys.argv[1] == "save":
        np.savez_compressed = stall(np.savez_compressed)
        run.save(sys.argv[2])
    else:
        from meiscope.presentation.export import write_export
        zipfile.ZipFile.write = stall(zipfile.ZipFile.write)
        write_export({"r": run}, sys.argv[2])
""")


def _kill_while_writing(kind: str, target) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "WRITING"
    finally:
        writer.kill()
        writer.wait(timeout=30)


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _small_run() -> Run:
    return Run(config=AMConfig(unit=4), images=np.zeros((1, 40, 40), np.float32),
               best_images=np.zeros((1, 40, 40), np.float32), best_step=np.zeros(1, np.int64),
               metrics={k: np.zeros((1, 1), np.float32) for k in METRICS}, rows=[{"unit": 4, "sample": 0}],
               info={"status": "completed"})


def test_a_save_killed_midway_leaves_nothing_visible(tmp_path):
    target = tmp_path / "runs" / "0123456789ab"
    _kill_while_writing("save", target)
    assert not target.exists()
    leftovers = [p.name for p in (tmp_path / "runs").iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".0123456789ab.partial-")  # hidden, never read
    _small_run().save(tmp_path / "runs" / "fedcba987654")  # the next writer cleans up after the dead one
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["fedcba987654"]


def test_an_export_killed_midway_leaves_no_zip(tmp_path):
    target = tmp_path / "figures.zip"
    _kill_while_writing("export", target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()][0].startswith(".figures.zip.partial-")
    _small_run().save(tmp_path / "r")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "r"), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.zip", "r"]


def test_a_server_killed_mid_run_restarts_cleanly(tmp_path):
    runs = tmp_path / "runs"
    server = LiveServer(runs)
    try:
        done = httpx.post(f"{server.url}/api/runs", json={"unit": 3, "steps": 3}).json()["run_id"]
        while not httpx.get(f"{server.url}/api/runs/{done}").json()["saved"]:
            time.sleep(0.05)
        going = httpx.post(f"{server.url}/api/runs", json={"unit": 5, "steps": 10_000}).json()["run_id"]
        while httpx.get(f"{server.url}/api/runs/{going}").json()["step"] < 5:
            time.sleep(0.05)
        pid = server.process.pid
        server.kill()
    finally:
        server.stop()
    # what a save, and an export being zipped for a download, cut off by the kill would have left
    (runs / f".{going}.partial-{pid}-x1y2z3").mkdir()
    (runs / f".{going}.partial-{pid}-x1y2z3" / "arrays.npz").write_bytes(b"PK\x03\x04 truncated")
    scratch = Path(tempfile.gettempdir()) / f"meiscope-scratch-{pid}-x1y2z3"
    scratch.mkdir()
    (scratch / ".meiscope-figures.zip.partial-1-abc").write_bytes(b"PK\x03\x04 truncated")
    server = LiveServer(runs)
    try:
        assert httpx.get(f"{server.url}/api/health").json()["status"] == "ok"
        assert not scratch.exists()
        assert sorted(p.name for p in runs.iterdir()) == [done]  # the partial is gone, the saved run stays
        assert httpx.get(f"{server.url}/api/runs/{done}").json()["status"] == "completed"
        assert httpx.get(f"{server.url}/api/runs/{going}").status_code == 404
    finally:
        server.stop()


def test_an_unwritable_or_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    unwritable = "/sys/meiscope-cache"  # sysfs refuses new entries, even to root
    result = CliRunner().invoke(cli, ["serve", "--cache-dir", unwritable])
    assert result.exit_code == 2 and "--cache-dir /sys/meiscope-cache is not writable" in result.output
    assert len(result.output.strip().splitlines()) == 1

    with TestClient(create_app(runs_dir=tmp_path / "runs", max_running=1, cache_dir=None)) as client:
        monkeypatch.setattr(np, "savez_compressed", full_disk)
        run_id = client.post("/api/runs", json={"unit": 3, "steps": 2}).json()["run_id"]
        deadline = time.monotonic() + 30
        while not (body := client.get(f"/api/runs/{run_id}").json())["error"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert body["status"] == "completed" and "No space left on device" in body["error"]
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and "No space left" in health["storage_error"]
        assert len(client.get(f"/api/runs/{run_id}").json()["images"]) == 1  # the result is still served
        monkeypatch.undo()
        second = client.post("/api/runs", json={"unit": 3, "steps": 2}).json()["run_id"]
        while not (tmp_path / "runs" / second / "run.json").exists():
            assert time.monotonic() < deadline + 30
            time.sleep(0.02)
        assert client.get("/api/health").json()["storage_error"] is None


@pytest.mark.parametrize("where", ["file", "full"])
def test_the_atlas_survives_a_bad_cache(tmp_path, monkeypatch, shipped, where):
    from meiscope.model.checkpoint import DEFAULT_MODEL_DIR
    from meiscope.server.atlas import Atlas

    cache = tmp_path / "cache"
    if where == "file":  # the cache path is taken by a file
        cache.write_text("not a folder")
    else:
        monkeypatch.setattr(np, "savez_compressed", full_disk)
    atlas = Atlas(shipped, cache)
    atlas.config = atlas.config.model_copy(update={"unit": [3, 4], "steps": 2})  # a small atlas
    atlas._build()
    assert atlas.status == "ready" and sorted(atlas.thumbnails) == [3, 4]
    assert "could not cache the atlas" in atlas.warning and atlas.summary()["warning"] == atlas.warning


def test_an_atlas_per_layer_one_build_at_a_time(tmp_path):
    """Every layer can have its atlas (built when asked), and a second build waits for the first (they would share
    the cores): a clear refusal, not two half-speed builds."""
    from torch import nn

    from meiscope.model.hooked import HookedModel
    from meiscope.server.atlas import Atlases

    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.Linear(3, 2))
    model = HookedModel(net, {"first": "1", "second": "2"}, (1, 4, 4))
    atlases = Atlases(model, tmp_path)
    assert atlases.get("second") is None
    second = atlases.build("second")
    second.thread.join(timeout=120)
    assert second.status == "ready" and sorted(second.thumbnails) == [0, 1] and second.summary()["layer"] == "second"
    assert atlases.build("second") is second  # built once
    second.status = "building"  # as if it still were
    with pytest.raises(ValueError, match="second atlas is still building"):
        atlases.build("first")
    second.status = "ready"
    first = atlases.build()  # the model's first layer by default
    first.thread.join(timeout=120)
    assert first.layer == "first" and sorted(first.thumbnails) == [0, 1, 2]
