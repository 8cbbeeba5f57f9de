"""The API docs (/docs: Swagger UI, /redoc: ReDoc) work offline: their pages name no other host and every
asset they load is served by meiscope itself (from the installed fastapi-offline package)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from meiscope.server.app import create_app

HOST = "http://127.0.0.1:8000"
# what a docs page loads: src/href attributes, Swagger UI's spec `url: '...'` and ReDoc's spec-url
REFERENCE = re.compile(r"""(?:\bsrc|\bhref|\bspec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client():
    # the lifespan (which loads the model) is not entered: the docs need no model
    return TestClient(create_app(cache_dir=None, sweeps_dir=None), base_url=HOST)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_reference_no_other_host_and_every_asset_is_served(client, page):
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    other_hosts = [u for u in re.findall(r"""https?://[^\s"'<>)]+""", html) if not u.startswith(HOST)]
    assert not other_hosts, other_hosts
    references = [a or b for a, b in REFERENCE.findall(html)]
    assert any(r.endswith(".js") for r in references) and any("openapi.json" in r for r in references), references
    for reference in references:
        assert not reference.startswith("//"), reference  # protocol-relative: another host
        asset = client.get(reference)
        assert asset.status_code == 200 and asset.content, (reference, asset.status_code)


def test_swagger_ui_has_its_style_and_no_validator_badge(client):
    html = client.get("/docs").text
    assert re.search(r"""href=["'][^"']+\.css["']""", html)
    assert '"validatorUrl": null' in html  # the badge would load an image from validator.swagger.io
