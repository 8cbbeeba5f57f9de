"""A run's notebook face: a one-line repr, HTML with the inputs, the checks and the curves, show(), and the
example notebook executed in a real Jupyter kernel (nbclient) running this checkout's meiscope."""

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import meiscope
from meiscope import AMConfig, run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
PNG = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"')


@pytest.fixture(scope="module")
def batch(shipped):
    """20 units, a few steps: more rows than the HTML draws (16)."""
    return run(shipped, AMConfig(unit=list(range(20)), steps=6, elbo_every=2))


def test_repr_is_one_short_line_with_what_a_run_is(batch):
    text = repr(batch)
    assert len(text) < 300 and "\n" not in text, text
    assert "TDVAE-40" in text and "z2" in text and "pixel" in text and "20 rows" in text and "6/6 steps" in text
    low, high = batch.final_activation.min(), batch.final_activation.max()
    assert f"{low:.3g}..{high:.3g}" in text
    passed = sum(all(c["ok"] is not False for c in row.values()) for row in batch.checks)
    assert f"{passed}/20 rows pass their checks" in text


def test_html_shows_the_inputs_the_checks_and_the_curves(batch):
    page = batch._repr_html_()
    assert len(PNG.findall(page)) == 2  # the inputs' grid and the curves
    for name in batch.checks[0]:
        assert name.replace("_", " ") in page
    rows = re.findall(r"<tr><th[^>]*>(u\d+)</th>", page)
    assert rows == [f"u{u}" for u in range(16)]  # the first 16 rows only, and the text says so
    assert "the first 16 of 20" in page
    first = batch.checks[0]["driven"]
    assert f"{first['value']:.2f}x p99.9" in page and first["detail"].split(" = ")[0] in page
    assert ("FAIL" in page) == any(c["ok"] is False for row in batch.checks[:16] for c in row.values())


def test_show_outside_jupyter_writes_the_html_and_says_where(batch, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = batch.show()
    assert path.parent == tmp_path and PNG.search(path.read_text())
    assert str(path) in capsys.readouterr().out


def test_the_top_level_package_gives_runs_their_face():
    # `meiscope.run` imported the drawing side, which registered itself with the engine
    from meiscope.engine.result import NOTEBOOK

    assert meiscope.Run is not None and set(NOTEBOOK) == {"html", "show"}


def kernel_here(folder: Path) -> str:
    """A kernelspec running this interpreter with this checkout's package first on the path."""
    spec = folder / "kernels" / "meiscope-test"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "meiscope test", "language": "python",
        "env": {"PYTHONPATH": str(ROOT / "backend")}}))
    return spec.name


def test_the_example_notebook_runs_and_shows_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "committed with outputs"
    client = NotebookClient(notebook, kernel_name=kernel_here(tmp_path), timeout=300,
                            resources={"metadata": {"path": str(ROOT)}})  # caches go to ./data, ignored
    started = time.perf_counter()
    client.execute()
    print(f"the example notebook ran in {time.perf_counter() - started:.1f} s")
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    pages = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(pages) == 2  # the run as the cell's value, and show() (the kernel imports this checkout's meiscope)
    assert all(PNG.search(p) and "driven" in p for p in pages)
    shown = next(o for o in outputs if o.get("output_type") == "execute_result" and "text/html" in o["data"])
    assert shown["data"]["text/plain"].startswith("<Run TDVAE-40") and len(shown["data"]["text/plain"]) < 300
    printed = "".join(o["text"] for o in outputs if o.get("name") == "stdout")
    assert "<Run TDVAE-40 z2 units 50, 101, pixel, 2 rows, 60/60 steps completed" in printed
    # the progress bar is tqdm's notebook widget, and metrics_figure shows inline (the notebook's backend kept)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in notebook.cells[-1].outputs)
