"""The whole dashboard at 800 and 1280 px wide, in a real browser (as tests/test_browser.py): no labelled element
overlaps another in any view, and the flow of a session (pick a unit, run on the defaults, change the method,
pin two runs, compare, analyse, export, open a stored sweep) goes through without a console error or a failed
request. Screenshots of every view: test-artifacts/flow-{width}-{view}.png."""

import pytest

# the page's fixtures (browser); the import skips without chromium
from test_browser import ARTIFACTS, Watch, browser, download_zip, overlaps, serving  # noqa: F401

from meiscope.server.app import create_app  # noqa: E402
from meiscope.sweep import SweepSpec, expand, run_sweep  # noqa: E402

WIDTHS = [800, 1280]


@pytest.fixture(scope="module")
def server(shipped, tmp_path_factory):
    sweeps_dir = tmp_path_factory.mktemp("sweeps")
    spec = SweepSpec(name="flow", base={"steps": 6, "elbo_every": 2, "pre": {"jitter": 1}},
                     axes={"grad.gamma": [0, 1.5]}, units=[50, 94])
    run_sweep(expand(spec), root=sweeps_dir, model=shipped, formats=("png",), progress=False)
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, sweeps_dir=sweeps_dir, model=shipped)
    with serving(app) as url:
        yield url


@pytest.fixture
def open_page(browser, server):  # noqa: F811
    pages = []

    def open_at(width):
        page = browser.new_page(viewport={"width": width, "height": 900})
        pages.append(page)
        watch = Watch(page)
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        return page, watch

    yield open_at
    for page in pages:
        page.close()


def run(page, steps):
    page.fill("input[name='steps']", str(steps))
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=180_000)


def test_the_overlap_check_sees_overlaps(open_page):
    """The check itself: a select moved over the unit's heading, and an axis title moved over its plot."""
    page, _ = open_page(800)
    assert overlaps(page) == []
    page.evaluate("""(() => { const r = document.getElementById('unit-title').getBoundingClientRect();
      Object.assign(document.getElementById('sort').style, {position: 'fixed', left: r.left + 'px', top: r.top + 'px'}); })()""")
    found = overlaps(page)
    assert any("sort units" in o and "unit-title" in o for o in found), found
    page.evaluate("document.getElementById('sort').style.position = ''")
    run(page, 20)
    # no room made for the ELBO's title and ticks: they collide (the researcher saw this at 800 px)
    page.evaluate("Plotly.relayout('plot-elbo', {'yaxis.automargin': false, 'margin.l': 40, 'yaxis.tickformat': ',.2f'})")
    page.locator("#plot-elbo").scroll_into_view_if_needed()
    found = overlaps(page)
    assert any("plot-elbo:text.ytitle" in o for o in found), found


@pytest.mark.parametrize("width", WIDTHS)
def test_no_label_overlaps_another(open_page, width):
    page, watch = open_page(width)
    assert overlaps(page) == [], "on load"
    for method in page.eval_on_selector_all("select[name='method'] option", "os => os.map(o => o.value)"):
        page.select_option("select[name='method']", method)  # each method's own controls
        assert overlaps(page) == [], method
    page.select_option("#preset", "pixel, unregularised")  # large activations and ELBOs: long tick labels
    page.click(".tile[data-unit='94']")
    run(page, 30)
    assert overlaps(page) == [], "after an unregularised run"
    page.screenshot(path=ARTIFACTS / f"layout-{width}-unregularised.png")
    page.click("#sweeps-toggle")
    page.wait_for_selector(".sweep-cell canvas")
    assert overlaps(page) == [], "sweeps"
    assert not watch.problems, watch.problems


@pytest.mark.parametrize("width", WIDTHS)
def test_the_whole_flow(open_page, width):
    page, watch = open_page(width)

    def view(name):
        found = overlaps(page)
        page.screenshot(path=ARTIFACTS / f"flow-{width}-{name}.png")
        assert found == [], (name, found)

    view("start")
    page.click(".tile[data-unit='50']")  # pick a unit
    assert page.inner_text("#unit-title") == "z2 unit 50"
    run(page, 40)  # on the defaults
    assert page.locator("#input-signals .badge[data-signal='activation']").count() == 1
    assert page.locator("#input-signals .badge[data-signal='elbo']").count() == 1
    assert page.locator("#input-signals .badge[data-signal^='check-']").count() >= 4  # the checks that apply
    view("run")
    page.click("#pin")

    page.select_option("select[name='method']", "transform")  # change the method
    assert page.locator("input[name='transform.kernel_size']").is_visible()
    run(page, 30)
    assert page.locator("#plot-kernel").is_visible()
    view("transform")
    page.click("#pin")

    titles = page.locator("#pinned .card-title").all_inner_texts()  # compare
    # the transform brought its own settings (the preset of its method), so more than the method differs
    assert titles[0].startswith("#1 unit 50 · pixel · steps 40 · lr 0.03") and len(titles) == 2
    assert titles[1].startswith("#2 unit 50 · transform · steps 30 · lr 0.01")
    rows = page.eval_on_selector_all("#compare-table tr", "trs => trs.map(tr => tr.cells[0].textContent)")
    assert "method" in rows
    assert len(page.evaluate("document.getElementById('plot-compare').data")) == 2
    page.locator("#compare").scroll_into_view_if_needed()
    view("compare")

    page.click("#analyse")  # analyse: Run stays in view while it works
    page.wait_for_selector("#analysis-panels .card", timeout=300_000)
    assert page.locator("#run").is_visible()
    page.locator("#analysis").scroll_into_view_if_needed()
    view("analyse")

    names = download_zip(page, "#export", f"flow-{width}.zip")  # export the pinned runs
    assert sum(n.endswith("/config.json") for n in names) == 2

    page.click("#sweeps-toggle")  # a stored sweep
    page.wait_for_selector(".sweep-cell canvas")
    assert page.locator(".sweep-cell").count() == 4
    view("sweeps")
    page.locator(".sweep-cell").first.click()
    page.wait_for_selector("#status[data-status='stored']")
    view("sweep-run")
    page.click("#pin")  # pinned beside the two live runs: one export holds all three
    names = download_zip(page, "#export", f"flow-{width}-with-sweep-run.zip")
    assert sum(n.endswith("/config.json") for n in names) == 3
    assert sum("flow-" in n and n.endswith("/config.json") for n in names) == 1
    assert not watch.problems, watch.problems
