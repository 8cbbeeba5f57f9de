"""Bad input from anywhere: property-based testing of the whole OpenAPI schema (schemathesis, valid and
invalid data), and a websocket fuzzer (malformed JSON, wrong types, unknown message types, oversized and
binary frames, floods). Never a server error; a websocket stays usable or closes with a clear code; the
server keeps serving."""

import json
import re

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from starlette.websockets import WebSocketDisconnect

from meiscope.server.app import create_app
from meiscope.server.limits import ServerLimits

# the analysis routes (its JSON and its zip) cost ~10 s of both cores per unit: it is fuzzed by its own test below instead
EXPENSIVE = r"/analysis(\.zip)?$"
EXAMPLES = 25


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    limits = ServerLimits(messages_per_second=1000)  # the fuzzer sends fast; the flood test has its own app
    app = create_app(runs_dir=tmp_path_factory.mktemp("fuzz-runs"), max_running=1, cache_dir=None, limits=limits)
    with TestClient(app) as c:
        yield c


def _stop_all(client) -> None:
    """Fuzzed runs may be big: stop them so that the next case does not wait behind them."""
    for job in client.app.state.jobs.list():
        job.stop()


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) for every route in the OpenAPI schema (built without loading the model): valid
    data for each, invalid data for each that takes any input."""
    paths = create_app(cache_dir=None).openapi()["paths"]
    cases = []
    for path, item in paths.items():
        for method, operation in item.items():
            if re.search(EXPENSIVE, path):
                continue
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def api(client):
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


def _call(client, case):
    """Send a generated case through the running app's client (schemathesis' own ASGI transport would
    start and stop the app's lifespan on every call)."""
    request = case.as_transport_kwargs(base_url=str(client.base_url))
    cookies = request.pop("cookies", None)
    if "data" in request:
        request["content"] = request.pop("data")
    if cookies:
        request["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return client.request(**request)


@pytest.mark.parametrize("method,path,mode", _cases(), ids=lambda v: getattr(v, "value", v))
def test_no_request_is_a_server_error(api, client, method, path, mode):
    operation = api[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        try:
            try:
                response = _call(client, case)
            except httpx.InvalidURL:  # longer than any HTTP client sends (two 4096-character query values,
                return                # percent-encoded): the server never sees it
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500
            if response.status_code == 422:
                assert response.json()["detail"], "a 422 names what is wrong"
        finally:
            _stop_all(client)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"{method} {path} accepts every value its parameters can carry: no invalid input exists")


def test_analysis_route_rejects_units_out_of_range(client):
    for bad in ("-1", "250", "1e3", "x", "3.5", "99999999999999999999"):
        response = client.get(f"/api/units/{bad}/analysis")
        assert response.status_code == 422, bad
        assert "unit" in json.dumps(response.json()["detail"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
messages = st.one_of(
    st.text(max_size=200),  # mostly not JSON at all
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["start", "stop", "pause", "", "START"])},
                          optional={"config": json_values}).map(json.dumps),
    st.fixed_dictionaries({"type": st.just("start"), "config": st.fixed_dictionaries(
        {}, optional={"unit": json_values, "steps": json_values, "method": json_values,
                      "optimizer": st.fixed_dictionaries({}, optional={"lr": json_values})})}).map(json.dumps),
)


def _reply(ws) -> dict:
    """The server's direct answer to the last message (started, stopping, or an error that names no run),
    skipping the frames and ends of runs that stream meanwhile."""
    while True:
        message = ws.receive_json()
        if message["type"] in ("started", "stopping") or (message["type"] == "error" and "run_id" not in message):
            return message
        assert message["type"] in ("frame", "done", "error"), message


@given(batch=st.lists(messages, min_size=1, max_size=8))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_websocket_fuzz_gets_answers_and_stays_usable(client, batch):
    with client.websocket_connect("/ws/runs") as ws:
        for raw in batch:
            ws.send_text(raw)
            answer = _reply(ws)  # every message gets exactly one
            if answer["type"] == "error":
                assert answer["message"]
            _stop_all(client)
        ws.send_json({"type": "start", "config": {"unit": 3, "steps": 2}})  # still usable after the batch
        assert _reply(ws)["type"] in ("started", "error")  # error: busy, while fuzzed runs still wind down
    assert client.get("/api/health").json()["status"] == "ok"


def test_binary_oversized_and_flooding_clients(tmp_path):
    app = create_app(runs_dir=tmp_path, max_running=1, cache_dir=None,
                     limits=ServerLimits(max_message_bytes=4096, messages_per_second=10))
    with TestClient(app) as client:
        with client.websocket_connect("/ws/runs") as ws:
            ws.send_bytes(b"\x00\xff" * 100)
            assert "binary" in ws.receive_json()["message"]
            ws.send_json({"type": "start", "config": {"unit": 5, "steps": 3}})  # still usable
            assert ws.receive_json()["type"] == "started"
        with client.websocket_connect("/ws/runs") as ws:
            ws.send_text(json.dumps({"type": "start", "config": {"unit": 5}, "pad": "x" * 5000}))
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1009 and "4096" in closed.value.reason
        with client.websocket_connect("/ws/runs") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(200):  # far beyond 10 a second (bursts of 20)
                    ws.send_text("{}")
                while True:
                    ws.receive_json()
            assert closed.value.code == 1008 and "messages a second" in closed.value.reason
        assert client.get("/api/health").json()["status"] == "ok"
        with client.websocket_connect("/ws/runs") as ws:  # and new clients are served
            ws.send_json({"type": "start", "config": {"unit": 5, "steps": 3}})
            while (m := ws.receive_json())["type"] != "done":
                pass
            assert m["status"] == "completed"
