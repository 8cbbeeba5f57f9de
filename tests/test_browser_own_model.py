"""A model of the user's own in the real browser (as tests/test_browser.py): the digits CNN served with
--model meiscope.examples.digits:build. The page offers only what a classifier has (no ELBO weight, no latent
methods, the unit analysis), lists its class units by label, runs on its 8x8 inputs, pins and exports."""

from pathlib import Path

import pytest

# the page's fixtures (browser, page: a fresh page on `server` below); the import skips without chromium
from test_browser import ARTIFACTS, browser, download_zip, page, serving  # noqa: F401

from meiscope.server.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEISCOPE_CACHE", str(cache))  # the example trains into this test's own cache
        app = create_app("meiscope.examples.digits:build", runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=cache)
        with serving(app) as url:
            yield url


def test_the_digits_cnn_in_the_page(page):
    assert page.locator(".tile").count() == 10
    assert page.locator(".tile").first.inner_text().startswith("u0 “0”")
    assert "digits" in page.inner_text("#model-summary") and "1×8×8" in page.inner_text("#model-summary")
    assert not page.locator("input[name='obj.elbo_weight']").is_visible()
    methods = page.eval_on_selector_all("select[name='method'] option", "os => os.map(o => o.value)")
    assert methods == ["pixel", "distribution", "transform", "transform_distribution"]
    assert page.locator("#analyse").is_visible()  # the unit analysis applies to any image model
    page.wait_for_selector(".tile img", timeout=120_000)  # the atlas of the 10 class units
    assert page.locator(".tile img").count() == 10

    page.click(".tile[data-unit='3']")
    assert page.inner_text("#unit-title") == "logits unit 3 “3”"
    page.fill("input[name='steps']", "60")
    assert page.eval_on_selector_all("select[name='precision'] option", "os => os.map(o => o.value)") == \
        ["float32", "bfloat16"]  # from the config schema
    page.select_option("select[name='precision']", "bfloat16")  # any model: its readouts through a bfloat16 copy
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
    assert "bfloat16" in page.url  # the config the run used, kept in the URL
    image = page.evaluate("document.getElementById('plot-input').data[0].z")
    assert len(image) == 8 and len(image[0]) == 8
    assert len(page.evaluate("document.getElementById('plot-curves').data")) == 2  # activation and runner-up
    assert not page.locator("#plot-elbo").is_visible()  # no ELBO curve, no ELBO badge, no held-out line
    assert page.locator("#input-signals .badge[data-signal='elbo']").count() == 0
    p999 = page.evaluate("fetch('/api/units').then(r => r.json()).then(us => us[3].act_p999)")  # its census
    assert page.evaluate("document.getElementById('plot-curves').layout.shapes[0].y0") == p999
    assert "× the data's 99.9th pct" in page.inner_text("#input-signals .badge[data-signal='activation']")
    page.click("#pin")
    page.select_option("#layer", "conv2")  # another readout layer: its 16 channels
    page.wait_for_selector("#grid[aria-label='conv2 units']")
    assert page.locator(".tile").count() == 16
    # no grey boxes without a word: conv2 has no atlas yet, the page says so and offers to build it, and does not
    # offer to sort by an atlas it does not have; built, its 16 channels show their preferred inputs
    page.wait_for_selector("#atlas-offer:not([hidden])")
    assert "No atlas of conv2 yet" in page.inner_text("#atlas-offer") and page.locator(".tile img").count() == 0
    assert page.eval_on_selector("#sort option[value=activation]", "o => o.disabled")
    page.click("#atlas-build")
    page.wait_for_function("document.querySelectorAll('.tile img').length === 16", timeout=120_000)
    assert "conv2 atlas ready" in page.inner_text("#atlas-status") and page.locator("#atlas-offer").is_hidden()
    assert not page.eval_on_selector("#sort option[value=activation]", "o => o.disabled")
    page.select_option("#layer", "logits")  # back: the logits' own thumbnails, not conv2's
    page.wait_for_function("document.querySelectorAll('.tile img').length === 10", timeout=60_000)
    page.select_option("#layer", "conv2")
    page.wait_for_selector("#grid[aria-label='conv2 units']")
    page.click(".tile[data-unit='5']")
    page.select_option("select[name='method']", "transform")
    page.fill("input[name='transform.kernel_size']", "3")
    page.fill("input[name='steps']", "30")
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
    page.click("#pin")
    page.click("#analyse")  # the unit analysis of an own model's unit, of the layer browsed
    page.wait_for_selector("#analysis-panels .card", timeout=300_000)
    assert page.inner_text("#analysis-heading") == "unit analysis: conv2 unit 5"
    page.screenshot(path=ARTIFACTS / "own-model-digits.png")
    names = download_zip(page, "#export", "own-model-export.zip")
    assert sum(n.endswith("/config.json") for n in names) == 2 and "sheet.png" in names


@pytest.fixture(scope="module")
def colour_server(tmp_path_factory):
    factory = str(Path(__file__).parent / "fixtures" / "colour_model.py") + ":build"
    app = create_app(factory, runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None)
    with serving(app) as url:
        yield url


def test_colour_inputs_of_another_size(browser, colour_server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(colour_server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.locator(".tile").count() == 4 and "3×24×32" in page.inner_text("#model-summary")
    page.click(".tile[data-unit='2']")
    page.fill("input[name='steps']", "20")
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=60_000)
    trace = page.evaluate("(() => { const d = document.getElementById('plot-input').data[0];"
                          " return {type: d.type, h: d.z.length, w: d.z[0].length, c: d.z[0][0].length}; })()")
    assert trace == {"type": "image", "h": 24, "w": 32, "c": 3}
    spectrum = page.evaluate("document.getElementById('plot-spectrum').data[0].z")
    assert len(spectrum) == 24 and len(spectrum[0]) == 32
    # no census, no ELBO: no activation or ELBO badge, but the checks that apply (driven against the start)
    assert page.locator("#input-signals .badge[data-signal='activation'], #input-signals .badge[data-signal='elbo']").count() == 0
    assert page.locator("#input-signals .badge[data-signal='check-driven']").count() == 1
    assert page.locator("#input-signals .badge[data-signal='check-in_distribution']").count() == 0
    assert page.evaluate("document.getElementById('plot-curves').layout.shapes") == []
    page.click("#pin")
    assert page.locator("#pinned canvas").evaluate("c => [c.width, c.height]") == [32, 24]
    page.screenshot(path=ARTIFACTS / "own-model-colour.png")
    assert not errors, errors
    page.close()
