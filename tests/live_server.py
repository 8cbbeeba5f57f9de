"""A real `meiscope serve` in its own process on a free loopback port, for the tests (and benchmarks) that
need one: load, kills, restarts, memory; and the clients that load it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, runs_dir: Path, *args: str, timeout: float = 120.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "meiscope.cli", "serve", "--port", str(self.port),
                   "--runs-dir", str(runs_dir), "--no-atlas", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.process.stdout.read()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.2)

    def rss_mib(self) -> float:
        """Resident memory of the server process."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine loses power or the OOM killer strikes."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout:
            self.process.stdout.close()


def run_over_websocket(url: str, configs: list[dict], timeout: float = 600) -> list[tuple[str, int]]:
    """Start each config in turn over one websocket, as the page does, and wait for its end. Returns
    (outcome, frames received) per run: outcome is the run's final status, "busy" or "error: ...". """
    results = []
    with connect(f"ws://{url.removeprefix('http://')}/ws/runs", open_timeout=60) as ws:
        for config in configs:
            ws.send(json.dumps({"type": "start", "config": config}))
            frames = 0
            while True:
                message = json.loads(ws.recv(timeout=timeout))
                if message["type"] == "frame":
                    frames += 1
                elif message["type"] == "done":
                    results.append((message["status"], frames))
                    break
                elif message["type"] == "error":
                    outcome = "busy" if message.get("code") == "busy" else f"error: {message['message']}"
                    results.append((outcome, frames))
                    break
    return results


def poll(url: str, stop: threading.Event, health_ms: list[float], statuses: list[int], period: float = 0.02) -> None:
    """Until `stop`: GET /api/health (its latency in ms and status kept) and /api/runs (status kept)."""
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            statuses.append(client.get(f"{url}/api/health").status_code)
            health_ms.append((time.perf_counter() - started) * 1000)
            statuses.append(client.get(f"{url}/api/runs").status_code)
            time.sleep(period)
