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


# Things a reader reads (controls, their labels' text, headings, Plotly's titles, ticks and legends) and
# plot areas, inside REGIONS: every pair of visible ones whose boxes intersect by more than 2 px, except an
# element and what it contains. A plot's labels are also checked against its data areas (an axis title over a
# neighbouring subplot's curves).
OVERLAP_JS = """(regions) => {
  const atoms = [];
  const shown = (r) => r.width > 0.5 && r.height > 0.5;
  const hidden = (el) => { for (let e = el; e; e = e.parentElement) { const s = getComputedStyle(e);
    if (s.display === "none" || s.visibility === "hidden") return true; } return false; };
  const describe = (node) => {
    const el = node.nodeType === 3 ? node.parentElement : node, plot = el.closest(".js-plotly-plot");
    const text = (node.nodeType === 3 ? node.textContent : (el.getAttribute("aria-label") || el.name || el.id ||
      el.textContent || "")).trim().slice(0, 40);
    const cls = el.getAttribute("class") ? "." + String(el.getAttribute("class")).split(" ")[0] : "";
    return `${plot ? plot.id + ":" : ""}${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${cls} "${text}"`;
  };
  // the part of a box that shows: cut by every scrolling (or clipping) ancestor; what scrolled away is not seen
  const clip = (el, r) => {
    let [left, top, right, bottom] = [r.left, r.top, r.right, r.bottom];
    for (let e = el.parentElement; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.overflowX === "visible" && s.overflowY === "visible") continue;
      const c = e.getBoundingClientRect();
      [left, top, right, bottom] = [Math.max(left, c.left), Math.max(top, c.top), Math.min(right, c.right), Math.min(bottom, c.bottom)];
    }
    return { left, top, right, bottom, width: right - left, height: bottom - top };
  };
  const push = (node, r, area = false) => {
    const c = clip(node.nodeType === 3 ? node.parentElement : node, r);
    if (shown(c)) atoms.push({ node, r: c, area });
  };
  const seen = new Set();
  for (const root of document.querySelectorAll(regions)) {
    if (hidden(root)) continue;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let node = walker.currentNode; node; node = walker.nextNode()) {
      if (node.nodeType === 3) {
        const parent = node.parentElement;
        if (!node.textContent.trim() || parent.closest("button, select, option, style, script") || hidden(parent)) continue;
        const svgText = parent.closest("text");
        if (svgText) {  // an SVG label: its whole box, once
          const r = svgText.getBoundingClientRect();
          if (!seen.has(svgText) && shown(r)) push(svgText, r);
          seen.add(svgText);
          continue;
        }
        const range = document.createRange();
        range.selectNodeContents(node);
        for (const r of range.getClientRects()) if (shown(r)) push(node, r);
      } else if (node.matches("input, select, button, progress") && !seen.has(node)) {
        seen.add(node);
        const r = node.getBoundingClientRect();
        if (shown(r) && !hidden(node)) push(node, r);
      }
    }
  }
  for (const area of document.querySelectorAll(".js-plotly-plot rect.nsewdrag")) {
    const r = area.getBoundingClientRect();
    if (shown(r) && !hidden(area)) push(area, r, true);
  }
  const found = new Set();
  for (let i = 0; i < atoms.length; i++) {
    for (let j = i + 1; j < atoms.length; j++) {
      const a = atoms[i], b = atoms[j];
      if (a.node.contains(b.node) || b.node.contains(a.node)) continue;
      if (a.area || b.area) {  // a data area against the SVG labels of its own plot only
        const area = a.area ? a : b, other = a.area ? b : a;
        if (other.area || !(other.node instanceof SVGElement) || !area.node.closest(".js-plotly-plot").contains(other.node)) continue;
      }
      const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (w > 2 && h > 2) found.add(`${describe(a.node)} x ${describe(b.node)} (${w.toFixed(0)}x${h.toFixed(0)} px)`);
    }
  }
  return {atoms: atoms.length, overlaps: [...found]};
}"""
LABELLED = ("header, .browser-controls, #grid-legend, #grid-empty, .unit-head, #controls, .actions, .panel h3, .signals, "
            ".scalebar, .js-plotly-plot, #analysis, #compare, .sweep-controls, #sweep-grid tr:first-child")


def overlaps(page, regions: str = LABELLED) -> list[str]:
    """Overlapping labelled things on the page as it is laid out (the sticky action bar taken in its place:
    floating over what scrolls beneath it is its job)."""
    style = page.add_style_tag(content=".actions { position: static !important; }")
    try:
        result = page.evaluate(OVERLAP_JS, regions)
    finally:
        style.evaluate("s => s.remove()")
    assert result["atoms"] > 10, "the overlap check found almost nothing to check"
    return result["overlaps"]


class Watch:
    """Console errors and warnings, page errors, failed requests and responses >= 400 of a page, except responses
    whose URL contains one of `expected` (what a test provokes on purpose) and the console's reports of those."""

    def __init__(self, page, expected: tuple[str, ...] = ()) -> None:
        self.problems: list[str] = []
        self.expected = list(expected)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: r.status >= 400 and self._request(r.url, f"response {r.status}: {r.url}"))

    def _failed(self, request) -> None:
        # a reload or navigation aborts the page's own polling fetches (the atlas progress): not a failure
        if "ERR_ABORTED" not in (request.failure or ""):
            self._request(request.url, f"request failed: {request.url} {request.failure}")

    def _allowed(self, url: str) -> bool:
        return any(e in url for e in self.expected)

    def _request(self, url: str, problem: str) -> None:
        if not self._allowed(url):
            self.problems.append(problem)

    def _console(self, message) -> None:
        # a warning counts too: Plotly's "Too many auto-margin redraws" is a layout that does not settle
        if message.type in ("error", "warning") and not self._allowed(message.location.get("url", "") + " " + message.text):
            self.problems.append(f"console {message.type}: {message.text} ({message.location.get('url', '')})")


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
    watch = Watch(page)  # no page error, console error or failed request in any test of the page
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    page.close()
    assert not watch.problems, watch.problems


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
    _set_range(page, "pre.jitter", 3)  # the default preset has jitter 2
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
    assert page.input_value("input[name='pre.jitter']") == "3"
    assert page.input_value("input[name='steps']") == "150"
    assert page.input_value("#preset") == ""  # no preset has jitter 3: the menu says "custom"


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
    # the list holds every run of the server (earlier tests' too), newest first, each finished one reopens
    assert page.locator("#history li").count() == len(page.evaluate("fetch('/api/runs').then(r => r.json())"))
    assert page.locator("#history li button").count() >= 2
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

    # a number beyond the schema's bound is set to the bound, and the page says so (it used to be sent and refused)
    page.fill("input[name='optimizer.lr']", "500")
    page.press("input[name='optimizer.lr']", "Tab")
    page.wait_for_selector("#notice:not([hidden])")
    assert "optimizer.lr: at most" in page.inner_text("#notice")
    assert float(page.input_value("input[name='optimizer.lr']")) < 500


def test_atlas_thumbnails_fill_the_grid(page):
    page.wait_for_selector(".tile img", timeout=240_000)
    assert page.locator(".tile img").count() == 250
    assert "atlas ready" in page.inner_text("#atlas-status")
    page.select_option("#sort", "activation")
    first = page.locator(".tile").first.inner_text()
    assert first.startswith("u")
    # the number under each tile is explained: a line above the grid, and each tile's tooltip
    assert page.inner_text("#grid-legend").startswith("number: final atlas activation (200 steps")
    number = first.split()[-1]
    assert f"{number}: final atlas activation" in page.locator(".tile").first.get_attribute("title")
    page.screenshot(path=ARTIFACTS / "atlas.png")


def _run_button_in_view(page) -> bool:
    return page.evaluate("(() => { const r = document.getElementById('run').getBoundingClientRect();"
                         " return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; })()")


def test_analyse_a_unit_shows_every_view(page, monkeypatch):
    """z2 unit 101, then z1 unit 3: every panel with its colour bar, what its values are and a reading, the
    agreement with its interpretations, a zip; the z1 analysis is z1's, said so in the heading and the summary.
    (The preferred inputs take 15 steps here: the views, not the optimiser, are under test.)"""
    import functools

    from meiscope.analysis.report import analyze_unit
    from meiscope.server.routes import analysis as routes

    monkeypatch.setattr(routes, "analyze_unit", functools.partial(analyze_unit, n_sta=500, steps=15, n_data=256))
    page.click(".tile[data-unit='101']")
    page.click("#analyse")
    # while it works: progress beside the button and above the panels, the Run button where it was
    assert page.locator("#analysis-progress").is_visible()
    assert page.inner_text("#analyse-status").startswith("analysing z2 unit 101")
    assert page.locator("#analyse").is_disabled() and _run_button_in_view(page)
    page.wait_for_selector("#analysis-panels .card", timeout=300_000)
    titles = page.locator("#analysis-panels .panel-title").all_inner_texts()
    assert {"STA (white noise)", "gradient at the preferred input", "best Gabor", "activation under circular shifts",
            "amplitude spectrum of the preferred input"} <= set(titles)
    assert sum(t.startswith("nearest data input") for t in titles) == 8  # all of them, in pixels and in z2
    assert any(t.startswith("Gabor fit of the preferred input (R²") for t in titles)
    assert page.inner_text("#analysis-summary").startswith("z2 unit 101 of ")
    agreement = page.inner_text("#analysis-agreement")
    assert "preferred vs STA" in agreement and "best Gabor vs optimised input" in agreement
    assert "Characterise" in agreement  # the characterisation is pointed to, not repeated
    assert _run_button_in_view(page) and page.locator("#analysis-progress").is_hidden()
    # every panel says what its grey levels mean: a colour bar from its minimum to its maximum, the values' name
    bars = page.eval_on_selector_all("#analysis-panels .card", "cs => cs.map(c => [...c.querySelectorAll('.scalebar span')]"
                                     ".map(s => Number(s.textContent)))")
    assert len(bars) == len(titles) and all(len(b) == 2 and b[0] <= b[1] for b in bars)
    units = page.locator("#analysis-panels .panel-units").all_inner_texts()
    readings = page.locator("#analysis-panels .panel-reading").all_inner_texts()
    assert len(units) == len(readings) == len(titles) and all(units) and all(readings)
    assert any(u.startswith("drop in activation") for u in units) and any("dx (px) -" in u for u in units)
    assert page.get_attribute("#analysis-download", "href") == "/api/units/101/analysis.zip?layer=z2"
    page.evaluate("document.getElementById('analysis-heading').scrollIntoView()")
    page.screenshot(path=ARTIFACTS / "analysis.png")

    page.select_option("#layer", "z1")  # another layer: the z2 analysis goes, z1's is z1's
    page.wait_for_function("document.querySelector('#grid').getAttribute('aria-label') === 'z1 units'")
    assert page.locator("#analysis").is_hidden()
    page.click(".tile[data-unit='3']")
    page.click("#analyse")
    assert page.inner_text("#analyse-status").startswith("analysing z1 unit 3")
    page.wait_for_selector("#analysis-panels .card", timeout=300_000)
    assert page.inner_text("#analysis-heading") == "unit analysis: z1 unit 3"
    assert page.inner_text("#analysis-summary").startswith("z1 unit 3 of ")
    assert "one-hot synthesis (z1 = 5 e_i)" in page.locator("#analysis-panels .panel-title").all_inner_texts()
    assert page.get_attribute("#analysis-download", "href") == "/api/units/3/analysis.zip?layer=z1"


def test_characterise_a_unit_of_each_layer(page):
    """z2 unit 94 characterised: the table's readings, the figure, a zip of its files; switching to z1 clears it
    (nothing of z2 stays under the z1 heading), and a z1 unit is characterised with its own layer."""
    # the header counts clearly active units as `meiscope info` does, and each layer says what it reads
    assert "21 clearly active z2 units (mean KL above 0.1 nats" in page.inner_text("#model-summary")
    assert page.inner_text("#layer-description").startswith("z2: higher latent: posterior q(z2 | x)")
    page.click(".tile[data-unit='94']")
    page.click("#characterise")
    assert page.locator("#characterisation-progress").is_visible()
    page.wait_for_selector("#characterisation-body:not([hidden])", timeout=300_000)
    assert page.inner_text("#characterisation-summary").startswith("z2 unit 94: a phase-invariant")
    measures = page.locator("#characterisation th").all_inner_texts()
    assert {"preferred orientation", "F1/F0 over phase", "odd share", "blank response", "class"} <= set(measures)
    page.wait_for_function("document.querySelector('#characterisation-figure').naturalWidth > 800", timeout=60_000)
    page.locator("#characterisation").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "characterisation.png")
    files = download_zip(page, "#characterisation-download", "characterisation.zip")
    assert sorted(f.split("/")[-1] for f in files) == ["arrays.npz", "characterisation.json", "characterisation.png"]
    page.select_option("#layer", "z1")
    page.wait_for_function("document.querySelector('#grid').getAttribute('aria-label') === 'z1 units'")
    assert page.locator("#characterisation").is_hidden() and page.locator("#characterisation-body").is_hidden()
    assert "at the z2 posterior mean" in page.inner_text("#layer-description")
    page.click(".tile[data-unit='3']")
    page.click("#characterise")
    page.wait_for_selector("#characterisation-body:not([hidden])", timeout=300_000)
    assert page.inner_text("#characterisation-summary").startswith("z1 unit 3:")
    assert page.get_attribute("#characterisation", "data-layer") == "z1"


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
