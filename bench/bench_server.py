"""Dashboard benchmark, measured in one process (server in a thread, a websockets client like the page):

1. latency: time from sending a start message to the first frame;
2. frame rate: frames delivered per second during a pixel run at the engine's full speed;
3. engine speed with a client attached versus a bare run of the same config (meiscope.run in-process,
   which is what `meiscope am` calls), as a ratio of steps per second.

    python bench/bench_server.py
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
import websockets

from meiscope import AMConfig, load_model, run
from meiscope.server.app import create_app

CONFIG = {"unit": 51, "steps": 600, "snapshot_every": 5, "elbo_every": 0}
REPEATS = 5


def start_server() -> tuple[uvicorn.Server, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(runs_dir=Path(tempfile.mkdtemp()), cache_dir=None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


async def one_run(port: int) -> tuple[float, int, float, float]:
    """(seconds to first frame, frames, seconds from start to done, server-side wall seconds of the run)."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/runs", max_size=None) as ws:
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "start", "config": CONFIG}))
        first, frames = None, 0
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "frame":
                frames += 1
                first = first or time.perf_counter() - t0
            elif message["type"] == "done":
                return first, frames, time.perf_counter() - t0, message["final"]["wall_s"]


def main() -> None:
    server, port = start_server()
    model = load_model()
    config = AMConfig.model_validate(CONFIG)
    run(model, config)  # warm-up of the bare path
    firsts, rates, attached, bare, walls = [], [], [], [], []
    for _ in range(REPEATS):  # interleaved, so that machine load hits both alike
        first, frames, total, wall = asyncio.run(one_run(port))
        walls.append(CONFIG["steps"] / wall)
        firsts.append(first)
        rates.append(frames / total)
        attached.append(CONFIG["steps"] / total)
        t = time.perf_counter()
        run(model, config)
        bare.append(CONFIG["steps"] / (time.perf_counter() - t))
    server.should_exit = True
    print(f"pixel run of unit 51, {CONFIG['steps']} steps, a frame every {CONFIG['snapshot_every']} steps; "
          f"median of {REPEATS}")
    print(f"1. first frame after start:        {statistics.median(firsts) * 1e3:7.1f} ms   (aim < 150)")
    print(f"2. frames delivered per second:     {statistics.median(rates):7.1f}      (aim >= 20)")
    print(f"3. steps/s with the client attached {statistics.median(attached):7.1f}, bare run {statistics.median(bare):7.1f}: "
          f"ratio {statistics.median(attached) / statistics.median(bare):.3f}   (aim >= 0.9)")
    print(f"   (the engine's own wall time on the server: {statistics.median(walls):7.1f} steps/s, "
          f"ratio {statistics.median(walls) / statistics.median(bare):.3f})")


if __name__ == "__main__":
    main()
