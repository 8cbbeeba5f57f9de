"""The figure and files of a unit analysis (meiscope analyze, the page's download): every view of the unit with its
colour bar (what its values are, from its minimum to its maximum), labelled axes where it has axes, its one-line
reading under it, the radial spectrum, and the agreement between the views with their interpretation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..analysis.report import split_arrays
from ..model.checkpoint import atomic_write_text
from .plotting import DPI, FIGURE_LOCK, number, plt, wrap
from .readings import image_panels, readings

COLS = 5
PANEL_W, PANEL_H = 2.7, 3.1  # inches per panel (image, colour bar, title, reading)
READING_PT = 6.0


def _show(image: np.ndarray) -> tuple[np.ndarray, dict]:
    """(what imshow gets, its keywords): grey for one channel, RGB scaled together for three."""
    if image.ndim == 3:
        rgb = np.moveaxis(image, 0, -1)
        return (rgb - rgb.min()) / (np.ptp(rgb) + 1e-12), {}
    return image, {"cmap": "gray"}


def _edges(centres: list[float], shape: tuple[int, ...]) -> list[float]:
    """imshow's extent (the outer edges) from the coordinates of the corner pixels' centres."""
    left, right, bottom, top = centres
    dx = (right - left) / max(shape[1] - 1, 1) / 2
    dy = (bottom - top) / max(shape[0] - 1, 1) / 2
    return [left - dx, right + dx, bottom + dy, top - dy]


def _panel(fig, ax, p: dict) -> None:
    image, kw = _show(np.asarray(p["image"], dtype=np.float64))
    lo, hi = float(np.min(p["image"])), float(np.max(p["image"]))
    if p["centred"] and image.ndim == 2:
        lim = max(abs(lo), abs(hi)) or 1.0
        kw.update(vmin=-lim, vmax=lim)
    elif hi == lo:
        kw.update(vmin=lo - 1, vmax=hi + 1)
    axes = p["axes"]
    shown = ax.imshow(image, interpolation="nearest", extent=_edges(axes["extent"], image.shape) if axes else None, **kw)
    if axes:
        ax.set_xlabel(axes["x"], fontsize=6, labelpad=1)
        ax.set_ylabel(axes["y"], fontsize=6, labelpad=1)
        ax.tick_params(labelsize=5, length=2, pad=1)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(wrap(p["title"], PANEL_W * 0.85, 7), fontsize=7, pad=3)
    if image.ndim == 2:
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=5, length=2, pad=1)
        bar.set_label(f"{p['values']}\n[{number(lo)}, {number(hi)}]", fontsize=5, labelpad=2)
    else:
        ax.set_xlabel(f"RGB scaled together: {number(lo)}..{number(hi)}", fontsize=5)
    ax.text(0.5, -0.08 - (0.14 if axes else 0), wrap(p["reading"], PANEL_W * 0.85, READING_PT),
            transform=ax.transAxes, ha="center", va="top", fontsize=READING_PT, color="0.2")


def _radial(ax, report: dict) -> None:
    s = report["spectra"]
    ax.plot(s["radial_freqs"], s["radial_amplitude"], "o-", ms=2.5, lw=1.2, color="C0")
    ax.axvline(s["peak_cycles_per_pixel"], color="C3", lw=0.8, label="peak")
    ax.set_xlabel("spatial frequency (cycles/px)", fontsize=6)
    ax.set_ylabel("mean Fourier amplitude", fontsize=6)
    ax.set_title("radial amplitude spectrum", fontsize=7)
    ax.tick_params(labelsize=5)
    ax.legend(fontsize=5, frameon=False)


def report_figure(report: dict):
    """A matplotlib Figure of the whole analysis (the caller saves and closes it)."""
    panels = image_panels(report)
    words = readings(report)
    rows = -(-(len(panels) + 1) // COLS)
    table = words["agreement"]
    text_h = 0.25 * (len(table) + len(words["left_out"]) + 3)
    fig = plt.figure(figsize=(COLS * PANEL_W, rows * PANEL_H + text_h + 0.6))
    top = 1 - 0.6 / fig.get_figheight()
    bottom = (text_h + 0.2) / fig.get_figheight()
    grid = fig.add_gridspec(rows, COLS, left=0.04, right=0.97, top=top - 0.02, bottom=bottom, hspace=0.95, wspace=0.55)
    for k, p in enumerate(panels):
        _panel(fig, fig.add_subplot(grid[k // COLS, k % COLS]), p)
    k = len(panels)
    _radial(fig.add_subplot(grid[k // COLS, k % COLS]), report)
    fig.suptitle(wrap(words["summary"], COLS * PANEL_W * 0.85, 9), fontsize=9, y=0.995, va="top")
    lines = ["How the views agree:"] + [f"  {r['measure']}: {r['value']}: {r['reading']}" for r in table]
    lines += [f"  not shown: {x}" for x in words["left_out"]] + [f"  See also: {words['see_also']}."]
    width = COLS * PANEL_W * 0.85
    fig.text(0.02, bottom - 0.02, "\n".join(wrap(line, width, 7) for line in lines), fontsize=7, va="top",
             ha="left")
    return fig


def write_analysis(report: dict, out: Path) -> list[str]:
    """analysis.json (numbers and readings), arrays.npz and analysis.png (DPI, 300) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers, arrays = split_arrays(report)
    np.savez_compressed(out / "arrays.npz", **arrays)
    atomic_write_text(out / "analysis.json", json.dumps({**numbers, "readings": readings(report)}, indent=1,
                                                        default=float))
    write_report_figure(report, out / "analysis.png")
    return ["analysis.json", "arrays.npz", "analysis.png"]


def write_report_figure(report: dict, path, dpi: int = DPI) -> None:
    with FIGURE_LOCK:
        fig = report_figure(report)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)


