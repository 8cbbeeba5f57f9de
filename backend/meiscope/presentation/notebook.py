"""A run's face in a notebook: `Run._repr_html_` (what Jupyter shows for a run) and `Run.show()`.

The HTML holds the final inputs (the first MAX_ROWS rows, on the run figures' scale: whitened inputs on a grey
scale centred on 0 with its range stated), each row's checks (engine/checks.py: ok, FAIL or n/a with its value,
the check's own sentence on hover) and the curves (activation per step, the ELBO where it was measured), the
figures as inline PNGs. Importing this module registers both with the engine (engine/result.py, NOTEBOOK);
matplotlib is imported only when a run is drawn, so importing `meiscope.run` stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

import numpy as np

from ..engine.checks import MARKS, trustworthy, value_text
from ..engine.result import NOTEBOOK, Run

MAX_ROWS = 16  # rows drawn and tabled; the text says how many more there are
DPI = 200  # pixels per inch of the PNGs, shown at about half that (sharp on high-density screens)
INPUTS_PPI, CURVES_PPI = 110, 100  # pixels per inch as shown: a 1.1-inch tile is 121 pixels wide
COLOURS = {True: "#1a7f37", False: "#c62828", None: "#777"}
PAD = "padding:2px 10px 2px 0"


def _png(fig, ppi: float) -> str:
    """The figure as an <img> of an inline PNG shown at `ppi` pixels per inch; closes the figure."""
    from .plotting import plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    width = int(round(fig.get_figwidth() * ppi))
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{width}" style="max-width:100%">'


def inputs_figure(run: Run, n: int):
    """The first `n` final inputs in a grid of at most 8 columns, each labelled by unit and final activation."""
    from .figures import _row_names, _tiles, grid_rows, input_scale, run_title
    from .plotting import number
    from .tiles import tile_figure

    act = run.final_activation if len(run.metrics["activation"]) else np.full(len(run.rows), np.nan)
    labels = [f"{name}: {number(a)}" for name, a in zip(_row_names(run, n), act)]
    more = f" (the first {n} of {len(run.rows)} rows)" if n < len(run.rows) else ""
    return tile_figure(grid_rows(_tiles(run.images[:n]), labels, max_cols=8), run_title(run),
                       input_scale(run, run.images), caption="Final inputs; above each: unit and its final "
                                                             "activation" + more)


def curves_figure(run: Run, n: int):
    """Activation per step (and the ELBO of the input where it was measured), a line per row."""
    from .figures import _row_names, _spans_decades
    from .plotting import plt

    names = _row_names(run, n)
    elbo = run.metrics.get("elbo", np.zeros((0, 0)))[:, :n]
    panels = [("activation", "activation of the target unit")]
    if elbo.size and np.isfinite(elbo).any():
        panels.append(("elbo", "ELBO of the input (nats)"))
    fig = plt.figure(figsize=(3.3 * len(panels) + (1.0 if n > 1 else 0.3), 2.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharex=True))
    for ax, (name, ylabel) in zip(axes, panels):
        values = run.metrics[name][:, :n]
        steps = np.arange(len(values))
        for i in range(values.shape[1]):
            ok = np.isfinite(values[:, i])
            ax.plot(steps[ok], values[ok, i], lw=1.0, marker="." if ok.sum() < len(ok) / 2 else None, ms=3,
                    label=names[i])
        if name == "elbo" and _spans_decades(values):
            ax.set_yscale("symlog")
            ylabel = "ELBO of the input (nats, symlog)"
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    if n > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=7, title="unit",
                   title_fontsize=7, ncols=1 if n <= 8 else 2)
    return fig


def checks_table(run: Run, n: int) -> str:
    """A row per result, a column per check: ok / FAIL / n/a and the value, the check's sentence on hover."""
    from .figures import _row_names

    if not run.checks:
        return "<p>No checks recorded for this run.</p>"
    names = list(dict.fromkeys(name for row in run.checks for name in row))
    head = "".join(f"<th style='{PAD}'>{html.escape(name.replace('_', ' '))}</th>" for name in names)
    body = []
    for row_name, checks in zip(_row_names(run, n), run.checks[:n]):
        cells = []
        for name in names:
            c = checks.get(name)
            if c is None:
                cells.append("<td></td>")
                continue
            text = value_text(name, c, checks)
            cells.append(f'<td title="{html.escape(c["detail"])}" style="color:{COLOURS[c["ok"]]};{PAD}">'
                         f'<b>{MARKS[c["ok"]]}</b>{" " + html.escape(text) if text else ""}</td>')
        body.append(f"<tr><th style='{PAD}'>{row_name}</th>{''.join(cells)}</tr>")
    style = "border-collapse:collapse;font-size:12px;text-align:left;white-space:nowrap"
    return (f'<table style="{style}"><thead><tr><th>row</th>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            "</table><p style='font-size:11px;color:#555'>Hover a cell for what the check measured "
            "(docs/METHODS.md). n/a: the check does not apply to this model or run.</p>")


def run_html(run: Run) -> str:
    """The run as HTML: a heading, the inputs, the checks and the curves."""
    from .figures import run_title
    from .plotting import FIGURE_LOCK

    n = min(len(run.rows), MAX_ROWS)
    passed = sum(map(trustworthy, run.checks))
    info = run.info
    heading = (f"{html.escape(run_title(run))} · {html.escape(str(info.get('model', {}).get('name', '')))} "
               f"layer {html.escape(run.config.layer)} · {info.get('steps_done', '?')} of {run.config.steps} steps, "
               f"{html.escape(str(info.get('status', '')))} · {len(run.rows)} rows, {passed} of {len(run.checks)} "
               "pass every check that applies")
    with FIGURE_LOCK:
        inputs = _png(inputs_figure(run, n), INPUTS_PPI)
        curves = _png(curves_figure(run, n), CURVES_PPI) if len(run.metrics["activation"]) else "<p>No steps were run.</p>"
    more = f" (the first {n} of {len(run.rows)})" if n < len(run.rows) else ""
    return (f'<div class="meiscope-run" style="font-family:sans-serif"><p><b>{heading}</b></p>{inputs}'
            f"<h4 style='margin:8px 0 4px'>Checks{more}</h4>{checks_table(run, n)}"
            f"<h4 style='margin:8px 0 4px'>Curves{more}</h4>{curves}</div>")


def show(run: Run) -> Path | None:
    """In Jupyter, display the run's HTML; elsewhere write it to a file and print where (returned)."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and getattr(get_ipython(), "kernel", None) is not None:
        display(HTML(run_html(run)))
        return None
    handle, name = tempfile.mkstemp(prefix="meiscope-run-", suffix=".html")
    path = Path(name)
    with open(handle, "w", encoding="utf-8") as out:
        out.write(f"<!doctype html><meta charset='utf-8'><title>{html.escape(repr(run))}</title>{run_html(run)}\n")
    print(f"{repr(run)}\nwritten to {path}: open it in a browser")
    return path


NOTEBOOK.update(html=run_html, show=show)
