"""Grid sheets laid out like the thesis' figures: rows of units, columns of one axis' values, each cell the
unit's preferred input (first sample) with its final activation. Each row (a unit) is on its own grey scale
centred on 0, its range written under the unit: the sheet compares the axis' values for one unit at a time.

With several axes, each axis gets its own sheet with the other axes at their first value. Sheets of more
than UNITS_PER_PAGE units are split into pages (<axis>-1, <axis>-2, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..presentation.labels import short_name
from ..presentation.plotting import FIGURE_LOCK, number, save_figure
from ..presentation.tiles import Cell, Row, Scale, tile_figure
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
    # each column is headed by its value, with the axis' short name (the title names it in full)
    heads = [f"{short_name(axis)} = {_label(expansion.points[p].values[axis])}" for p in columns] if axis else None
    rows = []
    for u, unit in zip(range(first, first + len(units)), units):
        cells = []
        for p in columns:
            a = grid["activation"][p, u]
            cells.append(Cell(None, "not run") if not np.isfinite(a) else Cell(_tile(grid["images"][p, u]), number(a)))
        rows.append(Row(cells, head=f"u{unit}"))
    fixed = ", ".join(f"{a} = {_label(v[0])}" for a, v in expansion.axes.items() if a != axis)
    title = (f"{expansion.name}: rows are units, columns " + (f"values of {axis}" if axis else "the base config")
             + (f" ({fixed})" if fixed else ""))
    fig = tile_figure(rows, title, Scale("centred", "input value (0: grey)", by="row", merge=False), col_heads=heads,
                      caption="Each cell: the unit's final input (first sample), its final activation above it")
    return save_figure(fig, path, formats)


def _tile(image: np.ndarray) -> np.ndarray:
    """(H, W), or (C, H, W) for several channels."""
    return image[0] if image.ndim == 3 and image.shape[0] == 1 else image
