"""The figures of docs/RELIABILITY.md, measured on a real `meiscope serve` process on loopback:

- health latency idle and under load (16 websocket clients running dashboard-sized runs + REST polling);
- outcome of every run (completed / busy), runs per second, frames per client;
- server memory before and after the load;
- how many steps a run takes after its client disconnects.

    python bench/bench_reliability.py [--clients 16] [--runs 3] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from live_server import LiveServer, poll, run_over_websocket  # noqa: E402


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")  # never beyond the largest value
    return f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {values[-1]:.1f} ms (n={len(values)})"


def dashboard_client(url: str, index: int, runs: int, steps: int, outcomes: list, frames: list) -> None:
    """What the page sends: a unit, a default config, a frame and an ELBO every steps/100 steps."""
    every = max(1, round(steps / 100))
    configs = [{"unit": (index * runs + k) % 250, "steps": steps, "snapshot_every": every, "elbo_every": every,
                "seed": k} for k in range(runs)]
    for outcome, n in run_over_websocket(url, configs):
        outcomes.append(outcome if outcome in ("completed", "busy") else "error")
        frames.append(n)


def disconnect_lag(url: str, trials: int) -> list[int]:
    lags = []
    for i in range(trials):
        with connect(f"ws://{url.removeprefix('http://')}/ws/runs") as ws:
            ws.send(json.dumps({"type": "start", "config": {"unit": 51 + i, "steps": 10_000, "snapshot_every": 1}}))
            run_id = json.loads(ws.recv(timeout=60))["run_id"]
            for _ in range(3 + i):
                ws.recv(timeout=60)
        while (body := httpx.get(f"{url}/api/runs/{run_id}").json())["status"] == "running":
            time.sleep(0.02)
        lags.append(body["step"] - body["stop_step"])
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp) / "runs")
        try:
            idle: list[float] = []
            statuses: list[int] = []
            stop = threading.Event()
            poller = threading.Thread(target=poll, args=(server.url, stop, idle, statuses))
            poller.start()
            time.sleep(4)
            stop.set()
            poller.join()
            dashboard_client(server.url, 0, 2, 20, [], [])  # warm both workers
            time.sleep(1)
            before = server.rss_mib()

            loaded: list[float] = []
            outcomes: list[str] = []
            frames: list[int] = []
            stop = threading.Event()
            poller = threading.Thread(target=poll, args=(server.url, stop, loaded, statuses))
            poller.start()
            t0 = time.perf_counter()
            clients = [threading.Thread(target=dashboard_client, args=(server.url, i, args.runs, args.steps, outcomes,
                                                                       frames)) for i in range(args.clients)]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
            wall = time.perf_counter() - t0
            stop.set()
            poller.join()
            time.sleep(2)
            after = server.rss_mib()
            lags = disconnect_lag(server.url, 10)
        finally:
            server.stop()

    assert set(statuses) == {200}, "every health and list request answers"
    print(f"health idle:        {percentiles(idle)}")
    print(f"health under load:  {percentiles(loaded)}; over 100 ms: {sum(v > 100 for v in loaded)}")
    print(f"load: {args.clients} websocket clients x {args.runs} runs of {args.steps} steps + REST polling every 20 ms")
    print(f"runs: {outcomes.count('completed')} completed, {outcomes.count('busy')} busy, "
          f"{len(outcomes) - outcomes.count('completed') - outcomes.count('busy')} other, in {wall:.1f} s "
          f"({len(outcomes) / wall:.2f} runs/s); frames per run median {statistics.median(frames):.0f}")
    print(f"server memory: {before:.0f} MiB before, {after:.0f} MiB after ({after / before:.3f}x)")
    print(f"steps run after the client disconnected (10 runs): {lags} (max {max(lags)})")


if __name__ == "__main__":
    main()
