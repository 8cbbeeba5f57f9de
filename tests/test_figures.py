"""The figures of runs, export sheets and sweep sheets are fit for a paper: every text lies inside the canvas
and touches no other text and no image; exports label their runs by what differs between them.

The figures are drawn from synthetic runs (no model, no optimisation): the layout is what is tested."""

from __future__ import annotations

import itertools
import re
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.text import Text

from meiscope.engine.config import AMConfig
from meiscope.presentation.figures import write_figures, write_sheet
from meiscope.engine.result import METRICS, Run
from meiscope.sweep.sheets import write_sheets
from meiscope.sweep.spec import SweepSpec, expand

TDVAE_INFO = {"model": {"name": "TDVAE-40", "spec": "models/tdvae40", "sha256": "0" * 64},
              "input": {"shape": [1, 40, 40], "range": None, "centred": True}, "meiscope": "0.1.0", "torch": "2"}
CHECK_DPI = 300  # the PNGs' resolution


def fake_run(method: str = "pixel", units=(141,), samples: int = 1, steps: int = 12, shape=(40, 40),
             info: dict | None = None, seed: int = 0, spread: float = 1.0, **config) -> Run:
    """A Run with random arrays of the shapes the engine writes; `spread` > 1 gives rows very different
    ranges (each tile then states its own)."""
    rng = np.random.default_rng(seed)
    rows = [{"unit": u, "sample": s} for u in units for s in range(samples)]
    n = len(rows)
    amplitude = spread ** np.linspace(0, 1, n).reshape(n, *([1] * len(shape)))
    images = (rng.normal(size=(n, *shape)) * amplitude).astype(np.float32)
    metrics = {name: rng.normal(size=(steps, n)).cumsum(0).astype(np.float32) for name in METRICS}
    metrics["elbo"] = -np.abs(metrics["elbo"]) * 1e3
    arrays = {}
    if method.startswith("transform"):
        arrays = {"kernels": rng.normal(size=(n, 1, 9, 9)).astype(np.float32), "inputs": images.copy()}
    if method.endswith("distribution") and config.get("distribution", {}).get("learn_sigma"):
        arrays["sigma"] = rng.uniform(0.05, 0.2, size=(n, *shape[-2:])).astype(np.float32)
    unit = list(units) if len(units) > 1 else units[0]
    return Run(config=AMConfig(method=method, unit=unit, samples=samples, steps=steps, **config), images=images,
               best_images=images[::-1].copy(), best_step=np.full(n, steps - 1), metrics=metrics, arrays=arrays,
               rows=rows, info=info or TDVAE_INFO)


# ---- the check ---------------------------------------------------------------------------------------
def _overlap(a, b, tolerance: float = 1.0) -> bool:
    """Whether two display-space boxes share more than `tolerance` pixels in both directions."""
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)


def layout_problems(fig: Figure) -> list[str]:
    """Every text the figure draws (recorded while it draws) must lie inside the canvas, overlap no other
    text and no image (or colour bar) of any axes."""
    drawn: list[Text] = []
    draw = Text.draw

    def recording(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return draw(self, renderer)

    fig.set_dpi(CHECK_DPI)
    with mock.patch.object(Text, "draw", recording):
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    texts = [(t.get_text(), t.get_window_extent(renderer)) for t in dict.fromkeys(drawn)]
    # images, and colour bars (a mesh in their own axes)
    images = [im.get_window_extent(renderer) for ax in fig.axes for im in [*ax.images, *ax.collections]
              if isinstance(im, (AxesImage, QuadMesh))]
    problems = []
    for text, box in texts:
        if box.x0 < canvas.x0 - 0.5 or box.y0 < canvas.y0 - 0.5 or box.x1 > canvas.x1 + 0.5 or box.y1 > canvas.y1 + 0.5:
            problems.append(f"{text!r} leaves the canvas ({box.x0:.0f}..{box.x1:.0f} x {box.y0:.0f}..{box.y1:.0f} "
                            f"of {canvas.x1:.0f} x {canvas.y1:.0f})")
        if any(_overlap(box, image) for image in images):
            problems.append(f"{text!r} lies on an image or a colour bar")
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        if _overlap(box_a, box_b):
            problems.append(f"{a!r} overlaps {b!r}")
    return problems


@pytest.fixture
def checked(monkeypatch):
    """Checks every figure as it is saved; yields {file name: its problems}."""
    found: dict[str, list[str]] = {}
    savefig = Figure.savefig

    def checking(self, fname, *args, **kwargs):
        name = Path(fname).name
        if name not in found:
            found[name] = layout_problems(self)
        return savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", checking)
    return found


def assert_clean(found: dict[str, list[str]], expected: set[str]) -> None:
    assert expected <= set(found), sorted(found)
    bad = {name: problems[:4] for name, problems in found.items() if problems}
    assert not bad, bad


# ---- run figures ------------------------------------------------------------------------------------------
RUNS = {
    "one unit": lambda: fake_run(),
    "transform": lambda: fake_run("transform", units=(3, 4, 5)),
    "distribution with sigma and samples": lambda: fake_run("distribution", units=(7, 8), samples=3,
                                                            distribution={"learn_sigma": True}),
    "atlas of 250 units": lambda: fake_run(units=tuple(range(250)), steps=5, spread=20.0),
    "digits-like 8x8 inputs in [0, 1]": lambda: fake_run(shape=(8, 8), units=tuple(range(10)), info={
        **TDVAE_INFO, "model": {"name": "digits-cnn"}, "input": {"shape": [1, 8, 8], "range": [0, 1], "centred": False}},
        layer="logits"),
    "colour inputs": lambda: fake_run(shape=(3, 12, 10), units=(0, 1), info={
        **TDVAE_INFO, "model": {"name": "colour-toy"}, "input": {"shape": [3, 12, 10], "range": [0, 1], "centred": False}},
        layer="conv2"),
}


@pytest.mark.parametrize("case", RUNS)
def test_run_figures_keep_their_text_inside_and_apart(case, tmp_path, checked):
    run = RUNS[case]()
    write_figures(run, tmp_path, ("png",))
    expected = {"inputs.png", "best_inputs.png", "spectra.png", "metrics.png"}
    if run.config.method.startswith("transform"):
        expected |= {"kernels.png", "kernel_spectra.png", "transform_inputs.png"}
    if "sigma" in run.arrays:
        expected.add("sigma.png")
    assert_clean(checked, expected)


def test_long_run_labels_wrap_inside_the_canvas(tmp_path, checked):
    label = ("units 7, 8 · distribution · steps 12 · samples 3 · learn sigma on · jitter 0 · gamma 0 · "
             "ELBO weight 0.01 · diversity 1 · optimizer mei · lr linear 0.1→0.001")
    run = fake_run("distribution", units=(7, 8), samples=3, distribution={"learn_sigma": True})
    write_figures(run, tmp_path, ("png",), label=label)
    assert_clean(checked, {"inputs.png", "best_inputs.png", "spectra.png", "sigma.png", "metrics.png"})


def test_sheets_of_several_runs_keep_their_text_inside_and_apart(tmp_path, checked):
    single = [(f"r{i}", fake_run(seed=i, pre={"jitter": i}, spread=1.0)) for i in range(5)]
    write_sheet(single, tmp_path / "single.png", ("png",),
                labels={name: f"unit 141 · pixel · jitter {i} · a long label that has to wrap" for i, (name, _)
                        in enumerate(single)})
    mixed = [("a", fake_run()), ("b", fake_run(units=tuple(range(40)), spread=10.0)), ("c", fake_run("transform")),
             *((f"d{i}", fake_run(seed=i)) for i in range(4))]
    write_sheet(mixed, tmp_path / "mixed.png", ("png",), labels={
        name: f"run {name} · pixel · " + " · ".join(f"a label long enough to run past the grid {k}" for k in range(4))
        for name, _ in mixed})
    assert_clean(checked, {"single.png", "mixed.png"})


def test_sweep_sheets_keep_their_text_inside_and_apart(tmp_path, checked):
    spec = SweepSpec(name="f4-gamma", base={"steps": 10},
                     axes={"grad.gamma": [0, 0.5, 1, 2, 3], "optimizer.lr": [0.001, 0.01, {"kind": "linear", "start": 0.1,
                                                                                        "end": 0.001}]},
                     units=[3, 5, 141, 17, 200, 201])
    expansion = expand(spec)
    rng = np.random.default_rng(0)
    shape = (len(expansion.points), len(expansion.units))
    grid = {"images": rng.normal(size=(*shape, 40, 40)).astype(np.float32) * rng.uniform(0.1, 10, size=(*shape, 1, 1)),
            "activation": (rng.normal(size=shape) * 100).astype(np.float32)}
    grid["activation"][1, 2] = np.nan  # a cell whose run is not stored
    write_sheets(expansion, grid, tmp_path, ("png",))
    assert_clean(checked, {"grad_gamma.png", "optimizer_lr.png"})


def test_the_check_finds_clipped_and_overlapping_text():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(1.5, 2))
    for ax in axes:
        ax.imshow(np.zeros((4, 4)))
        ax.set_title("a title far too long for this little figure")
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("leaves the canvas" in p for p in problems) and any("on an image" in p for p in problems)


# ---- files -----------------------------------------------------------------------------------------------
def test_figures_are_print_png_and_vector_svg_and_pdf(tmp_path):
    from PIL import Image

    names = write_figures(fake_run(), tmp_path, ("png", "svg", "pdf"))
    assert {"inputs.png", "inputs.svg", "inputs.pdf", "metrics.pdf"} <= set(names)
    with Image.open(tmp_path / "inputs.png") as png:
        assert round(png.info["dpi"][0]) == 300 and png.size[0] >= 900  # at least 3 inches wide
    assert (tmp_path / "inputs.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "inputs.pdf").read_bytes().startswith(b"%PDF")


# ---- labels ----------------------------------------------------------------------------------------------
def test_runs_are_labelled_by_what_differs_between_them():
    from meiscope.presentation.labels import differing_fields, folder_name, run_labels

    runs = {"a": fake_run(pre={"jitter": 2}), "b": fake_run(pre={"jitter": 0}),
            "c": fake_run(pre={"jitter": 0}, optimizer={"lr": {"kind": "linear", "start": 0.1, "end": 0.001}})}
    assert differing_fields(runs) == ["optimizer.lr", "pre.jitter"]
    assert run_labels(runs) == {"a": "unit 141 · pixel · lr 0.03 · jitter 2", "b": "unit 141 · pixel · lr 0.03 · jitter 0",
                                "c": "unit 141 · pixel · lr linear 0.1→0.001 · jitter 0"}
    assert run_labels({"a": runs["a"]}) == {"a": "unit 141 · pixel"}
    assert run_labels({"a": runs["a"], "a2": fake_run(pre={"jitter": 2})}) == {
        "a": "unit 141 · pixel · a", "a2": "unit 141 · pixel · a2"}  # equal configs: the id tells them apart
    mixed = run_labels({"p": fake_run(), "d": fake_run("distribution", distribution={"learn_sigma": True})})
    assert mixed == {"p": "unit 141 · pixel", "d": "unit 141 · distribution · learn sigma on"}  # only what applies
    assert folder_name("3f2a9c01b2d4", runs["a"]) == "u141-pixel-3f2a9c01b2d4"
    assert folder_name("x", fake_run("transform", units=tuple(range(250)))) == "u0-249-transform-x"
    assert folder_name("x", fake_run(units=(3, 5, 6))) == "u3_5_6-pixel-x"


def test_an_export_names_folders_and_titles_by_the_runs_labels(tmp_path, monkeypatch):
    texts: list[str] = []
    savefig = Figure.savefig

    def recording(self, fname, *args, **kwargs):
        texts.extend(t.get_text() for t in self.texts)
        texts.append(self._suptitle.get_text() if self._suptitle else "")
        return savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording)
    from meiscope.presentation.export import write_export

    runs = {"3f2a9c01b2d4": fake_run(pre={"jitter": 2}), "0123456789ab": fake_run(pre={"jitter": 0}),
            "5e5e5e5e5e5e": fake_run("transform", units=(3, 4), pre={"jitter": 0})}
    write_export(runs, tmp_path / "x.zip", formats=("png",))
    with zipfile.ZipFile(tmp_path / "x.zip") as zf:
        names = set(zf.namelist())
        readme = zf.read("README.txt").decode()
    assert {"u141-pixel-3f2a9c01b2d4/figures/inputs.png", "u141-pixel-0123456789ab/config.json",
            "u3_4-transform-5e5e5e5e5e5e/figures/kernels.png", "sheet.png"} <= names
    title = "\n".join(texts)
    assert "unit 141 · pixel · jitter 2" in title and "unit 141 · pixel · jitter 0" in title
    assert "units 3–4 · transform · jitter 0" in title
    # each run's folder and label, then the fields that differ, a column each ("-" where one does not apply)
    assert re.search(r"^  u141-pixel-3f2a9c01b2d4 +unit 141 · pixel · jitter 2$", readme, re.M)
    assert re.search(r"^  u3_4-transform-5e5e5e5e5e5e +units 3–4 · transform · jitter 0$", readme, re.M)
    assert re.search(r"^  folder +method +unit +pre.jitter$", readme, re.M)
    assert re.search(r"^  u141-pixel-3f2a9c01b2d4 +pixel +141 +2$", readme, re.M)
    assert re.search(r"^  u3_4-transform-5e5e5e5e5e5e +transform +\[3,4\] +0$", readme, re.M)
    assert "TDVAE-40, models/tdvae40, sha256 " in readme  # the models, as before


def test_a_fixed_sigma_is_one_colour_said_in_words(tmp_path):
    """A fixed sigma (0.1 up to float rounding) was drawn as a colour map stretched from 0.0999999942 to 0.099999995:
    a flat purple square. It is one mid-colour now, and the title says 'constant 0.1'."""
    from meiscope.presentation.tiles import Cell, Row, Scale, _limits, is_constant

    sigma = np.full((2, 40, 40), 0.1, np.float32)
    sigma[0, 0, 0] = np.nextafter(np.float32(0.1), np.float32(0))  # float rounding, as the engine leaves it
    assert is_constant(sigma) and not is_constant(np.array([0.1, 0.2]))
    limits, _ = _limits([Row([Cell(s) for s in sigma])], Scale("range", "σ", cmap="viridis"))
    lo, hi = next(iter(limits.values()))
    assert lo < 0.09 and hi > 0.11 and abs((lo + hi) / 2 - 0.1) < 1e-6  # 0.1 sits mid-scale
    run = fake_run("distribution", units=(7, 8))
    run.arrays["sigma"] = sigma
    from meiscope.presentation import figures

    with mock.patch.object(figures, "tile_figure", side_effect=figures.tile_figure) as drawn:
        write_figures(run, tmp_path, formats=("png",))
    said = [str(c.kwargs.get("caption", "")) for c in drawn.call_args_list]
    assert any("constant 0.1 at every pixel" in t for t in said), said


def test_exported_curves_carry_the_pages_reference_lines(tmp_path):
    """The metrics figure draws what the page draws: each unit's 99.9th percentile on data and the held-out ELBO."""
    from meiscope.presentation.figures import metrics_figure

    run = fake_run(units=(7, 8))
    run.info = {**run.info, "references": {"act_p999": [2.5, 4.0], "heldout_elbo_median": -1300.0}}
    fig = metrics_figure(run, "units 7, 8")
    activation, elbo = fig.axes[0], fig.axes[2]
    dashed = lambda ax: sorted(float(l.get_ydata()[0]) for l in ax.lines if l.get_linestyle() == "--")  # noqa: E731
    assert dashed(activation) == [2.5, 4.0] and dashed(elbo) == [-1300.0]
    assert "99.9th pct on data" in activation.get_legend().get_texts()[0].get_text()
    bare = metrics_figure(fake_run(units=(7, 8)), "no references")  # a run saved before references: no lines
    assert dashed(bare.axes[0]) == []
