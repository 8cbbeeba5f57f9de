"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live uvicorn server.
Screenshots go to test-artifacts/. (.ci/run installs chromium; without it these tests are skipped.)"""

import contextlib
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

import uvicorn  # noqa: E402

from meiscope.server.app import create_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """The app on a free loopback port, served by uvicorn in a thread; yields its URL."""
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=tmp_path_factory.mktemp("cache"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    assert not errors, errors
    page.close()


def download_zip(page, selector: str, name: str) -> list[str]:
    """Click what downloads a zip, keep it in test-artifacts/ as `name`, and list its files."""
    with page.expect_download(timeout=120_000) as download:
        page.click(selector)
    path = ARTIFACTS / name
    download.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


def _set_range(page, name, value):
    page.eval_on_selector(f"input[name='{name}']",
                          "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))


def _wait_status(page, status, timeout=60_000):
    page.wait_for_selector(f"#status[data-status='{status}']", timeout=timeout)


def test_browse_pick_a_unit_run_and_see_it_live(page, server):
    assert page.locator(".tile").count() == 250
    page.fill("#search", "94")
    assert page.locator(".tile").count() == 1 and page.locator(".tile").get_attribute("data-unit") == "94"
    page.fill("#search", "")
    page.select_option("#filter", "collapsed")
    collapsed = page.evaluate("fetch('/api/units').then(r => r.json()).then(us => us.filter(u => u.status === 'collapsed').length)")
    assert page.locator(".tile").count() == collapsed < 250
    sensitive = page.evaluate("fetch('/api/units').then(r => r.json()).then(us => us.filter(u => u.texture_sensitive).length)")
    page.select_option("#filter", "texture")
    assert page.locator(".tile").count() == sensitive
    page.select_option("#filter", "all")
    page.focus("#grid")  # keyboard: move right once and pick that unit
    second = page.locator(".tile").nth(1).get_attribute("data-unit")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.inner_text("#unit-title") == f"z2 unit {second}"

    page.click(".tile[data-unit='50']")
    _set_range(page, "pre.jitter", 2)
    page.fill("input[name='steps']", "150")
    page.click("#run")
    _wait_status(page, "completed")
    image = page.evaluate("document.getElementById('plot-input').data[0].z")
    assert len(image) == 40 and len(image[0]) == 40
    points = page.evaluate("document.getElementById('plot-curves').data[0].x.length")
    assert points >= 10
    assert "150" in page.inner_text("#rate")
    assert "unit=50" in page.url and "jitter" in page.url
    page.screenshot(path=ARTIFACTS / "run-completed.png")

    page.reload()  # the URL restores the unit and the config
    page.wait_for_selector("body[data-ready=true]")
    assert page.inner_text("#unit-title") == "z2 unit 50"
    assert page.input_value("input[name='pre.jitter']") == "2"
    assert page.input_value("input[name='steps']") == "150"


def test_stop_rerun_pin_two_runs_and_errors(page):
    page.click(".tile[data-unit='94']")
    page.fill("input[name='steps']", "10000")
    page.click("#run")
    _wait_status(page, "running")
    page.wait_for_function("document.getElementById('plot-input').data !== undefined")
    page.click("#stop")
    _wait_status(page, "cancelled")
    page.click("#pin")
    page.select_option("#preset", "transform, 9x9 kernel with ELBO")
    page.fill("input[name='steps']", "40")
    page.click("#run")  # rerun with another method: the kernel panel appears
    _wait_status(page, "completed")
    assert page.locator("#plot-kernel").is_visible()
    kernel = page.evaluate("document.getElementById('plot-kernel').data[0].z")
    assert len(kernel) == 9
    page.click("#pin")
    assert page.locator("#pinned .card").count() == 2
    assert page.locator("#history li").count() == 2
    page.screenshot(path=ARTIFACTS / "pinned.png")
    names = download_zip(page, "#export", "export.zip")
    assert "README.txt" in names and "sheet.pdf" in names
    assert sum(n.endswith("/config.json") for n in names) == 2
    assert sum(n.endswith("figures/kernels.svg") for n in names) == 1  # only the transform run has kernels

    page.select_option("select[name='method']", "distribution")  # samples and sigma panels
    page.fill("input[name='samples']", "3")
    page.fill("input[name='optimizer.lr']", "0.01")
    page.fill("input[name='steps']", "20")
    page.click("#run")
    _wait_status(page, "completed")
    assert page.locator("#samples canvas").count() == 3 and page.locator("#plot-sigma").is_visible()
    assert len(page.evaluate("document.getElementById('plot-sigma').data[0].z")) == 40

    page.fill("input[name='optimizer.lr']", "500")
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    assert "optimizer.lr" in page.inner_text("#error")


def test_atlas_thumbnails_fill_the_grid(page):
    page.wait_for_selector(".tile img", timeout=240_000)
    assert page.locator(".tile img").count() == 250
    assert "atlas ready" in page.inner_text("#atlas-status")
    page.select_option("#sort", "activation")
    first = page.locator(".tile").first.inner_text()
    assert first.startswith("u")
    page.screenshot(path=ARTIFACTS / "atlas.png")


def test_analyse_a_unit_shows_every_view(page):
    page.click(".tile[data-unit='101']")
    page.click("#analyse")
    page.wait_for_selector("#analysis-panels .card", timeout=120_000)
    titles = page.locator("#analysis-panels .card div").all_inner_texts()
    assert {"STA", "one-hot, prior mean", "best Gabor (optimised)", "occlusion map"} <= set(titles)
    assert "vs STA r =" in page.inner_text("#analysis-summary")
    page.screenshot(path=ARTIFACTS / "analysis.png")


def test_the_page_works_behind_a_token(browser, tmp_path):
    """A server reached through `meiscope serve --token`: the printed link opens the page, whose own fetch and
    websocket calls then carry the token (an HttpOnly cookie); without it nothing is served."""
    token = "browser-test-token-0123456789"
    app = create_app(runs_dir=tmp_path / "runs", cache_dir=None, token=token, allowed_hosts=["127.0.0.1"])
    with serving(app) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            refused = page.goto(url + "/")
            assert refused.status == 401 and "token" in page.inner_text("body")
            page.goto(f"{url}/?token={token}")
            page.wait_for_selector("body[data-ready=true]", timeout=30_000)
            page.click(".tile[data-unit='50']")
            page.fill("input[name='steps']", "20")
            page.click("#run")
            _wait_status(page, "completed")
            page.screenshot(path=str(ARTIFACTS / "token.png"))
        finally:
            page.close()
