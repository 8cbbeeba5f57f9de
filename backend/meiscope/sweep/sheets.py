"""Grid sheets laid out like the thesis' figures: rows of units, columns of one axis' values, each cell the
unit's preferred input (first sample, symmetric grey scale) with its final activation.

With several axes, each axis gets its own sheet with the other axes at their first value. Sheets of more
than UNITS_PER_PAGE units are split into pages (<axis>-1, <axis>-2, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..engine.figures import _save
from ..plotting import FIGURE_LOCK, image_grid, plt
from .spec import Expansion

UNITS_PER_PAGE = 40
FORMATS = ("png", "svg", "pdf")


def axis_slice(expansion: Expansion, axis: str | None) -> list[int]:
    """Indices of the grid points along `axis` with every other axis at its first value (None, for a sweep
    without axes: the single point)."""
    if axis is None:
        return [0]
    others = {a: values[0] for a, values in expansion.axes.items() if a != axis}
    return [i for i, p in enumerate(expansion.points) if all(p.values[a] == v for a, v in others.items())]


def sheet_name(axis: str | None) -> str:
    """A file stem for an axis ('optimizer.lr' -> 'optimizer_lr': a dot would read as a suffix)."""
    return "units" if axis is None else axis.replace(".", "_")


def _label(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def write_sheets(expansion: Expansion, grid: dict[str, np.ndarray], folder: Path,
                 formats: tuple[str, ...] = FORMATS) -> list[str]:
    """One sheet per axis (pages of UNITS_PER_PAGE units); returns the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for axis in list(expansion.axes) or [None]:
        columns = axis_slice(expansion, axis)
        units = expansion.units
        pages = [units[i:i + UNITS_PER_PAGE] for i in range(0, len(units), UNITS_PER_PAGE)]
        for k, page in enumerate(pages):
            stem = sheet_name(axis) + (f"-{k + 1}" if len(pages) > 1 else "")
            with FIGURE_LOCK:
                written += _sheet(expansion, grid, axis, columns, page, folder / f"{stem}.png", formats)
    return written


def _sheet(expansion: Expansion, grid: dict[str, np.ndarray], axis: str | None, columns: list[int],
           units: list[int], path: Path, formats: tuple[str, ...]) -> list[str]:
    first = expansion.units.index(units[0])
    rows = range(first, first + len(units))
    width = max(3.6, 1.05 * len(columns) + 0.9)
    fig, axes = plt.subplots(len(units), len(columns), figsize=(width, 1.05 * len(units) + 1.0), squeeze=False)
    # the value alone heads a column (the axis is named once, in the title): long names would overlap
    heads = [f"{_label(expansion.points[p].values[axis])}\n" if axis else "" for p in columns]
    images, titles = [], []
    for i, u in enumerate(rows):
        for j, p in enumerate(columns):
            a = grid["activation"][p, u]
            images.append(grid["images"][p, u])
            titles.append((heads[j] if i == 0 else "") + ("not run" if not np.isfinite(a) else f"{a:.3g}"))
    image_grid(axes, images, titles)
    for i, unit in enumerate(units):  # row heads: the unit
        axes[i, 0].annotate(f"u{unit}", (-0.12, 0.5), xycoords="axes fraction", ha="right", va="center", fontsize=7)
    fixed = ", ".join(f"{a} = {_label(v[0])}" for a, v in expansion.axes.items() if a != axis)
    fig.suptitle(f"{expansion.name}: rows units, columns {axis or 'the base config'}\n" + (f"({fixed}) " if fixed else "")
                 + "cell: final input, final activation", fontsize=7)
    fig.tight_layout(rect=(0.06, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return _save(fig, path, formats)
