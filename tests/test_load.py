"""Many clients at once against a real server process: 16 websocket clients each running several runs while
another client polls REST. Every run completes or gets a clear busy answer, the health endpoint answers
throughout, memory comes back, and a client that goes away mid-run stops its run within a step or two.
(Latencies are measured and reported by bench/bench_reliability.py, not asserted here.)"""

import json
import threading
import time

import httpx
import pytest
from websockets.sync.client import connect

from live_server import LiveServer, poll, run_over_websocket

CLIENTS, RUNS_EACH = 16, 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("load-runs"), "--max-running", "2")
    yield srv
    srv.stop()


def run_client(url: str, index: int, outcomes: list, runs: int = RUNS_EACH) -> None:
    """One websocket client: `runs` small runs one after another, each to its end."""
    configs = [{"unit": (index * runs + k) % 250, "steps": 25, "snapshot_every": 5, "seed": k} for k in range(runs)]
    outcomes.extend(outcome for outcome, _ in run_over_websocket(url, configs, timeout=120))


def test_sixteen_clients_with_several_runs_each(server):
    run_client(server.url, 0, [], runs=2)  # warm both workers before measuring memory
    before = server.rss_mib()
    outcomes: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll, args=(server.url, stop, [], statuses, 0.05))
    poller.start()
    clients = [threading.Thread(target=run_client, args=(server.url, i, outcomes)) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=600)
    stop.set()
    poller.join()
    assert len(outcomes) == CLIENTS * RUNS_EACH
    assert set(outcomes) <= {"completed", "busy"}, outcomes
    assert outcomes.count("completed") >= CLIENTS  # busy answers are allowed, but the server did serve
    assert statuses and set(statuses) == {200}
    after = server.rss_mib()
    print(f"server RSS {before:.0f} -> {after:.0f} MiB ({after / before:.3f}x)")
    assert after <= 1.10 * before, f"memory grew from {before:.0f} MiB to {after:.0f} MiB"


def test_a_client_that_goes_away_stops_its_run(server):
    with connect(f"ws://{server.url.removeprefix('http://')}/ws/runs") as ws:
        ws.send(json.dumps({"type": "start", "config": {"unit": 51, "steps": 10_000, "snapshot_every": 1}}))
        run_id = json.loads(ws.recv(timeout=60))["run_id"]
        for _ in range(3):
            assert json.loads(ws.recv(timeout=60))["type"] == "frame"
    # the socket is closed: the server notices and stops the run
    deadline = time.monotonic() + 60
    while (body := httpx.get(f"{server.url}/api/runs/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert body["status"] == "cancelled"
    assert body["step"] - body["stop_step"] <= 2, body
