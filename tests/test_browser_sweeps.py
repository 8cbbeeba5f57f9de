"""The sweeps view in a real browser (as tests/test_browser.py): a stored sweep as a grid sheet, the other
axis fixed by a select, a cell opened in the unit view and rerun there, and the sweep's export."""

import threading
import time
import zipfile

import pytest

from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _free_port, playwright  # skips without chromium

import uvicorn  # noqa: E402

from meiscope.server.app import create_app  # noqa: E402
from meiscope.sweep import SweepSpec, expand, run_sweep  # noqa: E402

STEPS = 6


@pytest.fixture(scope="module")
def server(shipped, tmp_path_factory):
    sweeps_dir = tmp_path_factory.mktemp("sweeps")
    spec = SweepSpec(name="gamma-seed", base={"steps": STEPS, "elbo_every": 2, "pre": {"jitter": 1}},
                     axes={"grad.gamma": [0, 1.5], "seed": [0, 1]}, units=[51, 3])
    run_sweep(expand(spec), root=sweeps_dir, model=shipped, formats=("png",), progress=False)
    port = _free_port()
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, sweeps_dir=sweeps_dir)
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


def test_sweep_sheet_opens_a_cell_in_the_unit_view(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        page.click("#sweeps-toggle")
        page.wait_for_selector(".sweep-cell canvas")
        assert page.locator(".sweep-cell").count() == 4  # 2 units x 2 gamma values, seed fixed at 0
        assert page.locator("#sweep-grid th").all_inner_texts()[1:3] == ["grad.gamma = 0", "grad.gamma = 1.5"]
        page.select_option("#sweep-columns", "seed")
        page.select_option("#sweep-fixed select[data-axis='grad.gamma']", "1")  # gamma 1.5
        assert page.locator("#sweep-grid th").all_inner_texts()[1:3] == ["seed = 0", "seed = 1"]
        page.screenshot(path=ARTIFACTS / "sweep-sheet.png")
        cell = page.locator(".sweep-cell[data-unit='3']").nth(1)  # unit 3, seed 1, gamma 1.5
        label = cell.inner_text()
        cell.click()

        page.wait_for_selector("#status[data-status='stored']")
        assert page.locator("#unit-view").is_visible() and not page.locator("#sweeps-view").is_visible()
        assert page.inner_text("#unit-title") == "unit 3"
        assert page.input_value("input[name='grad.gamma']") == "1.5" and page.input_value("input[name='seed']") == "1"
        assert page.input_value("input[name='pre.jitter']") == "1" and page.input_value("input[name='steps']") == str(STEPS)
        assert len(page.evaluate("document.getElementById('plot-input').data[0].z")) == 40
        curve = page.evaluate("document.getElementById('plot-curves').data[0].y")
        assert len(curve) == STEPS and f"{curve[-1]:.3f}" == label.strip()
        assert "unit=3" in page.url and "elbo_every" in page.url  # fields without a control travel too

        page.click("#run")  # the stored config reruns live
        page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
        page.click("#sweeps-toggle")
        page.wait_for_selector(".sweep-cell canvas")
        with page.expect_download(timeout=120_000) as download:
            page.click("#sweep-export")
        path = ARTIFACTS / "sweep-export.zip"
        download.value.save_as(path)
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        assert {"summary.csv", "sheets/grad_gamma.png", "sweep.json"} <= set(names)
        assert sum(n.endswith("/config.json") for n in names) == 4
        browser.close()
    assert not errors, errors
