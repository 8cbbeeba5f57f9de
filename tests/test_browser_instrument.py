"""The dashboard as a scientist's instrument, in a real browser (as tests/test_browser.py): it starts from a
regularised preset, flags results outside the data's range, labels every figure with its units, compares
pinned runs by what differs between them and takes every bound from the config schema."""

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

# the page's fixtures (browser, page: a fresh page on `server` below); the import skips without chromium
from test_browser import ARTIFACTS, browser, download_zip, overlaps, page, serving  # noqa: F401

from meiscope.server.app import create_app  # noqa: E402

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(runs_dir=tmp_path_factory.mktemp("runs"), cache_dir=None, sweeps_dir=tmp_path_factory.mktemp("sweeps"))
    with serving(app) as url:
        yield url


def api(page, path):
    return page.evaluate("path => fetch(path).then(r => r.json())", path)


def run(page, steps, unit=None):
    if unit is not None:
        page.click(f".tile[data-unit='{unit}']")
    page.fill("input[name='steps']", str(steps))
    page.click("#run")
    page.wait_for_selector("#status[data-status='completed']", timeout=180_000)


def set_value(page, name, value):
    """Type into a control as a user does (an input event), e.g. a slider's number box."""
    page.fill(f"[name='{name}']", str(value))
    page.dispatch_event(f"[name='{name}']", "input")


def badge(page, box, signal):
    loc = page.locator(f"{box} .badge[data-signal='{signal}']")
    return (loc.inner_text(), loc.get_attribute("data-level")) if loc.count() else (None, None)


def ratio_of(text):
    return float(re.search(r"activation = (-?[\d.e+-]+) ×", text).group(1))


def final_activation(page):
    """The newest run's final activation, as the run list (newest first) states it."""
    return float(page.locator("#history li").first.inner_text().rsplit("activation ", 1)[1])


# every message the page sends over its websockets, kept in window.__sent
RECORD_SENT = """
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) { (window.__sent = window.__sent || []).push(data); return send.call(this, data); };
"""
RECORDING = ("unit", "layer", "snapshot_every", "elbo_every")  # the page records a run at its own frame rate


def test_the_page_starts_from_the_default_configuration_and_says_so(page, server):
    defaults = api(page, "/api/config/schema")["defaults"]
    chosen = page.input_value("#preset")
    assert chosen == "default"
    labels = page.eval_on_selector_all("#preset option", "os => os.map(o => o.textContent)")
    assert labels[:2] == ["custom", "default"] and not [label for label in labels if label.endswith("(default)")]
    assert defaults["pre"]["jitter"] == "auto"
    assert page.input_value("input[name='pre.jitter']") == "" and \
        page.get_attribute("input[name='pre.jitter']", "placeholder") == "auto"
    assert float(page.input_value("input[name='grad.gamma']")) == defaults["grad"]["gamma"]
    assert float(page.input_value("input[name='obj.elbo_weight']")) == defaults["obj"]["elbo_weight"]

    page.add_init_script(RECORD_SENT)
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    run(page, 60, unit=50)
    sent = [json.loads(m) for m in page.evaluate("window.__sent")]
    first = next(m["config"] for m in sent if m["type"] == "start")
    strip = lambda c: {k: v for k, v in c.items() if k not in RECORDING}  # noqa: E731
    assert strip(first) == strip({**defaults, "steps": 60}), (first, defaults)  # the page's first run: the default
    text, level = badge(page, "#input-signals", "activation")
    default_ratio = ratio_of(text)
    assert level in ("ok", "warn"), text  # the default stays near the data's range
    page.wait_for_selector("#natural canvas")  # the data that drive the unit most, beside its preferred input
    assert page.locator("#natural canvas").count() == 8 and page.locator("#natural-panel").is_visible()
    tops = [float(t.replace("−", "-")) for t in page.locator("#natural figcaption").all_inner_texts()]
    p999 = next(u for u in api(page, "/api/units") if u["unit"] == 50)["act_p999"]
    assert tops == sorted(tops, reverse=True) and tops[0] >= p999
    page.screenshot(path=ARTIFACTS / "instrument-default-run.png")

    page.select_option("#preset", "pixel, unregularised")
    assert page.input_value("input[name='pre.jitter']") == "0" and page.input_value("input[name='obj.elbo_weight']") == "0"
    run(page, 60)
    text, level = badge(page, "#input-signals", "activation")
    assert ratio_of(text) > default_ratio and level in ("warn", "bad"), text
    page.screenshot(path=ARTIFACTS / "instrument-unregularised-run.png")

    page.reload()  # the URL restores the config, and the menu names its preset
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.input_value("#preset") == "pixel, unregularised" and page.input_value("input[name='steps']") == "60"
    set_value(page, "optimizer.lr", 0.02)  # a config that no preset has
    assert page.input_value("#preset") == ""
    page.goto(server + "/")  # no hash: the default again
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.input_value("#preset") == chosen and page.input_value("input[name='pre.jitter']") == ""


def test_every_result_carries_its_out_of_distribution_signals(page):
    p999 = next(u for u in api(page, "/api/units") if u["unit"] == 94)["act_p999"]
    heldout = api(page, "/api/model")["card"]["metrics"]["heldout"]["elbo"]
    page.select_option("#preset", "pixel, unregularised")
    run(page, 40, unit=94)
    line = page.evaluate("document.getElementById('plot-curves').layout.shapes[0]")
    assert line["y0"] == line["y1"] == p999 and line["line"]["dash"] == "dash" and "99.9th" in line["name"]
    elbo_line = page.evaluate("document.getElementById('plot-elbo').layout.shapes[0]")
    assert elbo_line["y0"] == heldout and "held-out" in elbo_line["name"]

    text, level = badge(page, "#input-signals", "activation")
    ratio = ratio_of(text)
    expected = final_activation(page) / p999
    assert abs(ratio - expected) <= 0.01 * abs(expected) + 0.06, (text, expected)
    assert level == ("bad" if ratio > 10 else "warn" if ratio > 1.5 or ratio < 1 else "ok")
    elbo_text, _ = badge(page, "#input-signals", "elbo")
    assert "nats" in elbo_text and f"held-out data {heldout:.0f}" in elbo_text.replace("−", "-")

    page.click("#pin")
    assert badge(page, "#pinned .card", "activation")[0] == text  # the same numbers on the pinned card
    assert badge(page, "#pinned .card", "elbo")[0] == elbo_text
    page.screenshot(path=ARTIFACTS / "instrument-signals.png")


def test_a_run_that_does_not_drive_its_unit_gets_no_green_badge(page):
    page.select_option("#preset", "pixel, unregularised")
    set_value(page, "obj.elbo_weight", 10)  # the ELBO term outweighs the unit: the input stays data-like
    run(page, 40, unit=94)
    text, level = badge(page, "#input-signals", "activation")
    assert ratio_of(text) < 1 and level != "ok", (text, level)
    driven, driven_level = badge(page, "#input-signals", "check-driven")
    assert driven_level == "bad" and "✗" in driven, (driven, driven_level)
    title = page.locator("#input-signals .badge[data-signal='check-driven']").get_attribute("title")
    assert "99.9th percentile" in title
    page.click("#pin")  # the pinned card says the same
    assert badge(page, "#pinned .card", "check-driven")[1] == "bad"
    page.screenshot(path=ARTIFACTS / "instrument-not-driven.png")


def test_figures_have_units_colour_bars_and_a_radial_profile(page):
    run(page, 20, unit=50)
    spectrum = page.evaluate("(() => { const p = document.getElementById('plot-spectrum');"
                             " return {x: p.data[0].x, y: p.data[0].y, z: p.data[0].z, layout: p._fullLayout.xaxis.range,"
                             " xt: p._fullLayout.xaxis.title.text, yt: p._fullLayout.yaxis.title.text}; })()")
    assert spectrum["x"][0] == -0.5 and spectrum["x"][20] == 0 and len(spectrum["x"]) == 40  # DC at the centre
    assert spectrum["layout"] == [-0.5, 0.5] and "cycles/pixel" in spectrum["xt"] and "cycles/pixel" in spectrum["yt"]

    # the radial profile is the mean amplitude in rings of |f| (1/40 cycles/pixel wide) of that spectrum
    z = 10.0 ** np.array(spectrum["z"])
    fx, fy = np.meshgrid(spectrum["x"], spectrum["y"])
    rings = np.round(np.hypot(fx, fy) * 40).astype(int)
    want = [z[rings == b].mean() for b in range(1, 21)]
    radial = page.evaluate("document.getElementById('plot-radial').data[0]")
    np.testing.assert_allclose(radial["x"], np.arange(1, 21) / 40)
    np.testing.assert_allclose(radial["y"], want, rtol=1e-4)

    image = page.evaluate("(() => { const d = document.getElementById('plot-input')._fullData[0];"
                          " return {zmin: d.zmin, zmax: d.zmax, scale: d.showscale, bar: d.colorbar.title.text,"
                          " lim: Math.max(...d.z.flat().map(Math.abs))}; })()")
    assert image["scale"] and image["bar"] == "pixel value"
    assert image["zmin"] == -image["zmax"] == pytest.approx(-image["lim"])  # centred on 0: whitened inputs

    titles = page.evaluate("""[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.offsetParent)
      .map(p => [p.id, Object.keys(p._fullLayout).filter(k => /^[xy]axis\\d*$/.test(k))
      .map(k => p._fullLayout[k].title.text)])""")
    assert {pid for pid, _ in titles} >= {"plot-input", "plot-spectrum", "plot-radial", "plot-curves", "plot-elbo", "plot-objective"}
    assert all(all(t for t in axes) for _, axes in titles), titles  # every axis has a title
    axes = dict(titles)
    assert axes["plot-curves"] == ["step", "activation"] and axes["plot-elbo"] == ["step", "ELBO (nats)"]
    assert "|f| (cycles/pixel)" in axes["plot-radial"]
    assert not overlaps(page)  # the legend, the step title and the ticks apart

    page.select_option("#preset", "transform, 9x9 kernel with ELBO")
    run(page, 20)
    kernel = page.evaluate("(() => { const d = document.getElementById('plot-kernel')._fullData[0];"
                           " return [d.zmin, d.zmax, d.colorbar.title.text]; })()")
    assert kernel[0] == -kernel[1] and kernel[2] == "weight"
    page.screenshot(path=ARTIFACTS / "instrument-figures.png")


def test_method_controls_show_only_for_their_method(page):
    def shown():
        return set(page.eval_on_selector_all("#controls [name]", "els => els.filter(e => e.offsetParent).map(e => e.name)"))

    methods = page.eval_on_selector_all("select[name='method'] option", "os => os.map(o => o.value)")
    assert len(methods) == 6
    groups = {"transform": ({"transform.kind", "transform.kernel_size"}, lambda m: m.startswith("transform")),
              "distribution": ({"distribution.sigma", "distribution.draws"}, lambda m: m.endswith("distribution")),
              "latent": ({"latent.init", "latent.one_hot_scale"}, lambda m: m.startswith("latent")),
              "z1 of z2": ({"latent.z1"}, lambda m: m == "latent_z2"),
              "CNN": ({"transform.layers"}, lambda m: False)}  # a CNN's layers only for the CNN transform
    for method in methods:
        page.select_option("select[name='method']", method)
        names = shown()
        for group, (fields, applies) in groups.items():
            assert names & fields == (fields if applies(method) else set()), (method, group)
    page.select_option("select[name='method']", "transform")
    page.select_option("select[name='transform.kind']", "cnn")
    assert "transform.layers" in shown()


def test_an_empty_grid_says_why(page):
    page.fill("#search", "999")
    assert page.locator(".tile").count() == 0
    assert page.inner_text("#grid-empty") == "no units match “999”"
    page.fill("#search", "")
    units = api(page, "/api/units")  # a census in which no unit is texture-sensitive
    page.route("**/api/units?*", lambda route: route.fulfill(json=[{**u, "texture_sensitive": False} for u in units]))
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.select_option("#filter", "texture")
    assert page.locator(".tile").count() == 0
    assert "meiscope texture-units" in page.inner_text("#grid-empty")
    page.screenshot(path=ARTIFACTS / "instrument-empty-grid.png")


def test_pinned_runs_are_compared_by_what_differs(page):
    page.click(".tile[data-unit='50']")
    set_value(page, "pre.jitter", 2)
    run(page, 20)
    page.click("#pin")
    assert page.locator("#pinned .card-title").all_inner_texts() == ["#1 unit 50 · pixel"]
    assert page.locator("#compare-table").is_hidden() and page.locator("#plot-compare").is_hidden()
    set_value(page, "pre.jitter", 0)
    run(page, 20)
    page.click("#pin")
    assert page.locator("#pinned .card-title").all_inner_texts() == ["#1 unit 50 · pixel · jitter 2", "#2 unit 50 · pixel · jitter 0"]
    assert page.locator("#pinned pre").count() == 0  # no JSON block per card
    rows = page.eval_on_selector_all("#compare-table tr", "trs => trs.map(tr => [...tr.cells].map(c => c.textContent))")
    assert rows[0] == ["field", "#1", "#2"] and ["pre.jitter", "2", "0"] in rows
    assert [r[0] for r in rows if r[0] in ("final activation", "ELBO − held-out (nats)")] == ["final activation", "ELBO − held-out (nats)"]
    curves = page.evaluate("document.getElementById('plot-compare').data.map(d => [d.name, d.x.length])")
    assert [name for name, _ in curves] == ["#1 unit 50 · pixel · jitter 2", "#2 unit 50 · pixel · jitter 0"]
    assert all(n > 3 for _, n in curves)
    page.locator("#compare").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "instrument-compare.png")
    assert not overlaps(page)
    names = download_zip(page, "#export", "instrument-compare.zip")
    assert sum(n.endswith("/config.json") for n in names) == 2
    page.click("#pinned .card[data-pin='2'] .unpin")
    assert page.locator("#pinned .card-title").all_inner_texts() == ["#1 unit 50 · pixel"]
    assert page.locator("#compare-table").is_hidden()


def _field(schema, path):
    node = schema
    for part in path.split("."):
        node = node["properties"][part]
        ref = node.get("$ref") or (node.get("allOf") or [{}])[0].get("$ref")
        if ref:
            node = {**schema["$defs"][ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k not in ("$ref", "allOf")}}
    return node


def _numeric(field):
    """A field that takes a number or a word ("auto"): its number's schema (a schedule field states its bounds at
    its top)."""
    if "maximum" in field:
        return field
    return next((t for t in field.get("anyOf", []) if t.get("type") in ("integer", "number")), field)


def test_every_bound_comes_from_the_config_schema(page):
    answer = api(page, "/api/config/schema")
    schema, defaults = answer["schema"], answer["defaults"]
    controls = page.eval_on_selector_all("#controls [name]", """els => els.map(e => ({name: e.name, tag: e.tagName,
        type: e.type, min: e.min, max: e.max, options: e.tagName === 'SELECT' ? [...e.options].map(o => o.value) : null}))""")
    assert len(controls) >= 20
    for c in controls:
        field = _field(schema, c["name"])
        if c["type"] == "number":
            field = _numeric(field)
            lo = field.get("minimum", field.get("exclusiveMinimum"))
            assert float(c["min"]) == lo and float(c["max"]) == field["maximum"], c
        if c["options"] is not None and "enum" in field:
            assert c["options"] == field["enum"] or (c["name"] == "method" and set(c["options"]) <= set(field["enum"])), c
    bound = {c["name"]: c for c in controls}
    assert (bound["obj.elbo_weight"]["max"], bound["pre.jitter"]["max"], bound["steps"]["max"]) == ("10", "20", "100000")

    sliders = page.eval_on_selector_all("#controls input[data-slider]", """els => els.map(e => ({name: e.dataset.slider,
        min: e.min, max: e.max, label: e.closest('label').textContent}))""")
    assert len(sliders) >= 5
    for s in sliders:
        field = _numeric(_field(schema, s["name"]))
        assert float(s["min"]) == field["minimum"] and float(s["max"]) <= field["maximum"]
        if float(s["max"]) < field["maximum"]:  # a narrower display range says so in its label
            assert f"slider ≤ {float(s['max']):g}" in s["label"], s

    page.select_option("#preset", "default")  # every control at the schema's default
    values = page.eval_on_selector_all("#controls [name]", "els => els.map(e => [e.name, e.value])")
    for name, value in values:
        want = defaults
        for part in name.split("."):
            want = want[part]
        if want == "auto":  # an empty box that reads "auto"
            assert value == "", (name, value)
            continue
        assert value == str(want) or float(value) == want, (name, value, want)

    html = (FRONTEND / "index.html").read_text()  # no bound of the page's own
    assert not re.search(r'name="[^"]+"[^>]*\b(min|max)=', html)

