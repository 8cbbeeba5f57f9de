"""The page as a workspace, in a real browser at 800 and 1280 px: nothing of a previous layer, unit, method or refused
request survives a change; a method's controls take that method's settings; a number box takes only what the
schema allows; runs and pins survive a reload (and a shared URL); any finished run reopens; an export shows its
progress. No console warning or error, no failed request on the way."""

import pytest

# the page's fixtures (browser); the import skips without chromium
from test_browser import ARTIFACTS, Watch, browser, serving  # noqa: F401

from meiscope.server.app import create_app  # noqa: E402

WIDTHS = [800, 1280]


@pytest.fixture(scope="module")
def server(shipped, tmp_path_factory):
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, model=shipped)
    with serving(app) as url:
        yield url


def has_image(page, plot: str) -> bool:
    return page.evaluate(f"(document.getElementById('{plot}').data ?? []).length > 0")


CLIPPED = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const out = [];
  for (const el of document.querySelectorAll('select, #layer-description')) {
    const box = el.getBoundingClientRect();
    if (!box.width || el.closest('[hidden]')) continue;
    const aside = el.closest('aside, main, body').getBoundingClientRect();
    if (box.left < aside.left) out.push(`${el.id || el.name} starts left of its column`);
    if (el.tagName !== 'SELECT' || el.selectedIndex < 0) continue;
    const style = getComputedStyle(el);
    ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const text = ctx.measureText(el.options[el.selectedIndex].text).width;
    if (text > el.clientWidth - 20) out.push(`${el.id || el.name}: "${el.options[el.selectedIndex].text}" in ${el.clientWidth}px`);
  }
  return out;
}"""


def clipped(page) -> list[str]:
    """Selects whose chosen option does not fit (the arrow takes about 20 px), and text left of its column."""
    return page.evaluate(CLIPPED)


def run(page, steps: int) -> None:
    page.fill("input[name='steps']", str(steps))
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=180_000)


@pytest.mark.parametrize("width", WIDTHS)
def test_switches_reload_reopen_and_export(browser, server, width):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 900})
    watch = Watch(page, expected=())
    warnings: list[str] = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    # every select shows its whole choice, at 800 px too; one tile is marked after a click, not two
    page.select_option("#sort", "texture")  # the longest choice (no atlas here: no "by atlas activation")
    page.select_option("select[name='method']", "transform_distribution")
    assert clipped(page) == []
    page.select_option("#sort", "kl")
    page.select_option("select[name='method']", "pixel")
    page.click(".tile[data-unit='101']")
    assert page.evaluate("[...document.querySelectorAll('.tile')].filter(t => getComputedStyle(t).outlineStyle !== 'none'"
                         " && getComputedStyle(t).outlineWidth !== '0px').length") == 0
    assert page.locator(".tile.selected").count() == 1

    # a run of z2 unit 94, then the z1 layer: its unit 0 shows no z2 result, no badge, no "step 30 / 30"
    page.click(".tile[data-unit='94']")
    run(page, 30)
    assert has_image(page, "plot-input") and page.locator("#input-signals .badge").count() > 0
    page.select_option("#layer", "z1")
    page.wait_for_function("document.getElementById('unit-title').textContent.startsWith('z1 unit')")
    assert not has_image(page, "plot-input") and not has_image(page, "plot-spectrum")
    assert page.locator("#input-signals .badge").count() == 0
    assert page.inner_text("#rate") == "" and page.get_attribute("#status", "data-status") == "idle"
    page.select_option("#layer", "z2")

    # a method brings its own settings; back to pixel, the default configuration's, not the other method's
    page.select_option("select[name='method']", "transform_distribution")
    assert page.input_value("select[name='optimizer.name']") == "mei"
    assert page.input_value("input[name='grad.gamma']") == "0"
    page.select_option("select[name='method']", "pixel")
    assert page.input_value("select[name='optimizer.name']") == "rmsprop"
    assert page.input_value("input[name='grad.gamma']") == "1.5" and page.input_value("#preset") == "default"

    # a refused request leaves no earlier image behind
    page.click(".tile[data-unit='94']")
    run(page, 20)
    page.click("#pin")
    page.eval_on_selector("input[name='steps']", "el => { el.value = 999999; }")  # past the box's own check
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    assert "config.steps" in page.inner_text("#error") and "start." not in page.inner_text("#error")
    assert not has_image(page, "plot-input")

    # reload: the pin and the server's runs come back; a run in the list reopens with its image and curves
    page.fill("input[name='steps']", "20")
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.locator("#pinned .card").count() == 1
    runs = page.evaluate("fetch('/api/runs').then(r => r.json())")
    assert page.locator("#history li").count() == len(runs) >= 2
    page.locator("#history li button").first.click()
    page.wait_for_selector("#status[data-status='reopened']")
    assert has_image(page, "plot-input") and page.inner_text("#unit-title") == "z2 unit 94"
    assert page.evaluate("document.getElementById('plot-curves').data[0].x.length") > 5

    # the export says what it is doing, then hands over the zip
    page.click("#pin")
    with page.expect_download(timeout=120_000) as download:
        page.click("#export")
        page.wait_for_function("document.getElementById('export-status').textContent.startsWith('preparing')")
    assert download.value.suggested_filename.endswith(".zip")
    page.wait_for_function("document.getElementById('export-status').textContent.includes('ready in')")
    page.screenshot(path=ARTIFACTS / f"workspace-{width}.png", full_page=True)

    # another method: the shown result was the pixel method's, so it goes (the pins stay); latent_z1's one-hot
    # scale says what it means and shows only for a one-hot start
    page.select_option("select[name='method']", "latent_z1")
    assert not has_image(page, "plot-input") and page.locator("#pinned .card").count() == 2
    page.select_option("select[name='latent.init']", "prior_mean")
    assert page.locator("input[name='latent.one_hot_scale']").is_hidden()
    page.select_option("select[name='latent.init']", "one_hot")
    assert "latent_z1" in page.get_attribute("label:has(select[name='latent.init'])", "title")
    page.close()
    assert not watch.problems, watch.problems
    assert not warnings, warnings
