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

    page.click("#run")  # the stored config reruns live
    page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
    page.click("#sweeps-toggle")
    page.wait_for_selector(".sweep-cell canvas")
    names = download_zip(page, "#sweep-export", "sweep-export.zip")
    assert {"summary.csv", "sheets/grad_gamma.png", "sweep.json"} <= set(names)
    assert sum(n.endswith("/config.json") for n in names) == 4
