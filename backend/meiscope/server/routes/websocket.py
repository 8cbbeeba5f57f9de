"""The websocket that streams runs, /ws/runs. Control messages arrive in order; a slow client gets the newest
frame of a run instead of a backlog, at most MIN_FRAME_INTERVAL apart. Frames are encoded off the event loop,
and a client's runs stop when it goes away."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from typing import Annotated, Literal, Union

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ...engine import AMConfig, Frame
from ...engine.options import describe_error
from ..encode import encode_frame
from ..jobs import Job, new_run_id
from ..limits import Busy, LimitError, ServerLimits, check_work
from ..state import jobs_of

# at most 30 frames a second per client: smooth to the eye, and encoding more would slow the run itself
MIN_FRAME_INTERVAL = 1 / 30


# ---- messages from the client ---------------------------------------------------------------------
class StartMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["start"]
    config: AMConfig = Field(default_factory=AMConfig)


class StopMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stop"]


ClientMessage = TypeAdapter(Annotated[Union[StartMessage, StopMessage], Field(discriminator="type")])


class Outbox:
    """Messages for one websocket, in order; a frame still waiting is replaced by a newer frame of the
    same run, so a slow client never builds a backlog."""

    def __init__(self) -> None:
        self.items: deque[tuple[object, str | None]] = deque()  # (message, run id when it is a frame)
        self.ready = asyncio.Event()

    def put(self, message: object, frame_of: str | None = None) -> None:
        if frame_of is not None and self.items and self.items[-1][1] == frame_of:
            self.items[-1] = (message, frame_of)
        else:
            self.items.append((message, frame_of))
        self.ready.set()

    async def get(self, frame_not_before: float = 0.0) -> tuple[object, str | None]:
        """The next message. A frame waits until the loop time `frame_not_before` (the frame-rate cap);
        newer frames of its run replace it meanwhile, so the newest one goes out."""
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        if self.items[0][1] is not None:
            delay = frame_not_before - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
        return self.items.popleft()


def done_message(job: Job) -> dict:
    summary = job.summary()
    message = {"type": "done", "run_id": job.id, "status": job.status, "step": job.step, "final": summary.get("final"),
               "checks": summary.get("checks", [])}
    if job.status == "failed":
        message = {"type": "error", "run_id": job.id, "message": f"run failed: {job.error}"}
    return message


class RateLimit:
    """A token bucket: `rate` messages a second on average, bursts of up to twice that."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, 2 * rate
        self.tokens, self.last = self.capacity, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def next_message(ws: WebSocket, outbox: Outbox, rate: RateLimit, limits: ServerLimits,
                       model) -> StartMessage | StopMessage | None:
    """The client's next valid message (a start within the server's limits, or a stop). A message that is not
    one gets an `error` and the next is read; None when the client left, or was closed for sending too much
    (1009) or too often (1008)."""
    while True:
        event = await ws.receive()
        if event["type"] == "websocket.disconnect":
            return None
        raw = event.get("text")
        if raw is None:
            outbox.put({"type": "error", "message": "binary frames are not accepted: send JSON text"})
            continue
        if len(raw) > limits.max_message_bytes:
            await ws.close(1009, f"message larger than {limits.max_message_bytes} bytes")
            return None
        if not rate.allow():
            await ws.close(1008, f"more than {limits.messages_per_second:g} messages a second")
            return None
        try:
            message = ClientMessage.validate_json(raw)
            if isinstance(message, StartMessage):
                check_work(message.config, limits, model)
        except ValidationError as exc:
            # the config's fields are named as the REST API and LimitError name them: config.steps, not start.config.steps
            outbox.put({"type": "error", "message": re.sub(r"(^|; )start\.config", r"\1config", describe_error(exc))})
            continue
        except LimitError as exc:
            outbox.put({"type": "error", "field": f"config.{exc.field}", "message": f"config.{exc}"})
            continue
        return message


async def send_forever(ws: WebSocket, outbox: Outbox) -> None:
    """Send the outbox's messages as they come; frames are encoded off the event loop, and only those sent."""
    loop = asyncio.get_running_loop()
    next_frame = 0.0
    while True:
        message, frame_of = await outbox.get(frame_not_before=next_frame)
        if isinstance(message, Frame):
            next_frame = loop.time() + MIN_FRAME_INTERVAL
            message = await asyncio.to_thread(encode_frame, message, frame_of)
        await ws.send_json(message)


def websocket_router(limits: ServerLimits) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/runs")
    async def ws_runs(ws: WebSocket) -> None:
        await ws.accept()
        loop = asyncio.get_running_loop()
        jobs = jobs_of(ws)
        outbox = Outbox()
        current: list[Job] = []  # the client's latest runs
        send_task = asyncio.create_task(send_forever(ws, outbox))
        rate = RateLimit(limits.messages_per_second)
        client = f"ws-{id(ws):x}"
        try:
            while (message := await next_message(ws, outbox, rate, limits, jobs.model)) is not None:
                if isinstance(message, StopMessage):
                    if current and not current[-1].finished:
                        current[-1].stop()  # its `done` (status cancelled) follows when the worker has stopped
                        outbox.put({"type": "stopping", "run_id": current[-1].id})
                    else:
                        outbox.put({"type": "error", "message": "stop: no run is going"})
                    continue
                if current and not current[-1].finished:  # a new start replaces the running run
                    current[-1].stop()
                run_id = new_run_id()
                try:
                    job = jobs.submit(
                        message.config, run_id=run_id, client=client,
                        on_frame=lambda frame, rid=run_id: loop.call_soon_threadsafe(outbox.put, frame, rid),
                        on_done=lambda done: loop.call_soon_threadsafe(outbox.put, done_message(done)),
                    )
                except Busy as exc:
                    outbox.put({"type": "error", "code": "busy", "message": f"busy: {exc}"})
                    continue
                current.append(job)
                del current[:-limits.max_runs_per_client]  # older ones are stopped and need no tracking
                outbox.put({"type": "started", "run_id": run_id, "status": job.status,
                            "queue_position": jobs.queue_position(job)})
        except WebSocketDisconnect:
            pass
        finally:
            for job in current:  # the client went away (or was closed): its runs stop
                job.stop()
            send_task.cancel()

    return router
