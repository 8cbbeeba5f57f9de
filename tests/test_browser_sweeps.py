"""The sweeps view in a real browser (as tests/test_browser.py): a stored sweep as a grid sheet, the other
axis fixed by a select, a cell opened in the unit view and rerun there, and the sweep's export."""

import pytest

# the page's fixtures (browser, page: a fresh page on `server` below); the import skips without chromium
from test_browser import ARTIFACTS, browser, download_zip, page, serving  # noqa: F401

from meiscope.server.app import create_app  # noqa: E402
from meiscope.sweep import SweepSpec, expand, run_sweep  # noqa: E402

STEPS = 6


@pytest.fixture(scope="module")
def server(shipped, tmp_path_factory):
    sweeps_dir = tmp_path_factory.mktemp("sweeps")
    spec = SweepSpec(name="gamma-seed", base={"steps": STEPS, "elbo_every": 2, "pre": {"jitter": 1}},
                     axes={"grad.gamma": [0, 1.5], "seed": [0, 1]}, units=[51, 3])
    run_sweep(expand(spec), root=sweeps_dir, model=shipped, formats=("png",), progress=False)
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, sweeps_dir=sweeps_dir)
    with serving(app) as url:
        yield url


def test_sweep_sheet_opens_a_cell_in_the_unit_view(page):
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
    run_id = cell.get_attribute("data-run-id")
    cell.click()

    page.wait_for_selector("#status[data-status='stored']")
    assert page.locator("#unit-view").is_visible() and not page.locator("#sweeps-view").is_visible()
    assert page.inner_text("#unit-title") == "z2 unit 3"
    assert page.input_value("input[name='grad.gamma']") == "1.5" and page.input_value("input[name='seed']") == "1"
    assert page.input_value("input[name='pre.jitter']") == "1" and page.input_value("input[name='steps']") == str(STEPS)
    assert len(page.evaluate("document.getElementById('plot-input').data[0].z")) == 40
    curve = page.evaluate("document.getElementById('plot-curves').data[0].y")
    assert len(curve) == STEPS and f"{curve[-1]:.3f}" == label.strip()
    assert "unit=3" in page.url and "elbo_every" in page.url  # fields without a control travel too

    names = download_zip(page, "#export", "sweep-cell-export.zip")  # the stored run itself
    assert any(n.endswith(f"gamma-seed-{run_id}/config.json") for n in names) and "README.txt" in names
    page.click("#pin")

    page.click("#run")  # the stored config reruns live
    page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
    page.click("#pin")  # a live run pinned beside the stored one: one export holds both
    assert page.locator("#pinned .card").count() == 2
    names = download_zip(page, "#export", "sweep-cell-and-live-export.zip")
    assert sum(n.endswith("/config.json") for n in names) == 2
    assert any(n.endswith(f"gamma-seed-{run_id}/config.json") for n in names)
    page.click("#sweeps-toggle")
    page.wait_for_selector(".sweep-cell canvas")
    names = download_zip(page, "#sweep-export", "sweep-export.zip")
    assert {"summary.csv", "sheets/grad_gamma.png", "sweep.json"} <= set(names)
    assert sum(n.endswith("/config.json") for n in names) == 4


@pytest.fixture(scope="module")
def empty_server(shipped, tmp_path_factory):
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, sweeps_dir=tmp_path_factory.mktemp("none"),
                     model=shipped)
    with serving(app) as url:
        yield url


def test_without_sweeps_there_is_nothing_to_export(browser, empty_server):  # noqa: F811
    """Export was a link to download.html when no sweep was stored: now it is a disabled button."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("download", lambda d: errors.append(f"a download: {d.suggested_filename}"))
    try:
        page.goto(empty_server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        page.click("#sweeps-toggle")
        page.wait_for_selector("#sweep-summary:has-text('no stored sweeps')")
        assert page.locator("#sweep-export").is_disabled()
        page.click("#sweep-export", force=True)  # a click on it does nothing
        page.wait_for_timeout(500)
        assert not errors, errors
    finally:
        page.close()
