"""Figures of image tiles (run figures, export sheets, sweep sheets), laid out in inches so that no text is
clipped or runs into an image: every text is measured and wrapped (or shrunk) to the room it has, and the
figure grows to hold it.

A figure is a title, optional column heads, and rows of cells; a row may have a head on its left (a unit)
and a heading above it (a run's label). Each cell is an image with a label above it. The colour scale is
stated: a colour bar in the data's units, or, when the tiles' ranges differ too much to share one scale,
each tile's (or row's) own range written beside it and a colour bar in fractions of that range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.ticker import FuncFormatter

from .plotting import as_rgb, fit_text, number, plt, text_height, text_width

PAD = 0.1  # inches, around the figure
GAP = 0.14  # between columns of tiles
ROW_GAP = 0.1  # below a row of tiles
LABEL_PT, HEAD_PT, TITLE_PT, CAPTION_PT, TICK_PT = 7.0, 7.5, 9.0, 7.5, 6.5
MIN_WIDTH = 3.5  # a journal's single column
MERGE_RATIO = 2.0  # tiles whose ranges lie within this factor share one colour scale
FREQ_TICKS, FREQ_MINOR = (-0.4, 0.0, 0.4), (-0.2, 0.2)  # cycles/pixel


@dataclass
class Cell:
    image: np.ndarray | None  # (H, W), or (C, H, W) for colour; None: an empty cell (its label still shows)
    label: str = ""


@dataclass
class Row:
    cells: list[Cell]
    head: str = ""  # left of the row
    heading: str = ""  # above the row, across the figure


@dataclass
class Scale:
    """How values become grey levels (or colours). kind: `centred` (symmetric about 0, grey = 0), `range`
    (one shared vmin..vmax: spectra, sigma, inputs with a fixed range) or `rgb` (colour inputs)."""

    kind: str = "centred"
    label: str = "value"  # the colour bar's label: what the values are, with their unit
    cmap: str = "gray"
    by: str = "cell"  # centred: the range is each `cell`'s or each `row`'s own, or the `figure`'s
    merge: bool = True  # one range for all when the cells' (rows') ranges lie within MERGE_RATIO
    limits: tuple[float, float] | None = None  # range: fixed limits (None: the data's, see `robust`)
    robust: bool = False  # range: from the 1st percentile to the maximum (log spectra: DC can be far below)
    frequency: bool = False  # images are centred spectra: axes in cycles/pixel on the bottom-left tile


def tile_size(ncols: int) -> float:
    return 1.1 if ncols <= 4 else 0.9 if ncols <= 8 else 0.72


CONSTANT = 1e-5  # a shared range narrower than this fraction of its values is float rounding of one constant


def is_constant(values: np.ndarray) -> bool:
    """Whether finite `values` are one constant up to float rounding."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return v.size > 0 and float(v.max() - v.min()) <= CONSTANT * float(np.abs(v).max()) + 1e-12


def _fmt(value: float) -> str:
    return number(value, 2 if abs(value) < 0.1 else 3)


def _limits(rows: list[Row], scale: Scale) -> tuple[dict, str | None]:
    """(vmin, vmax) per (row, column) and the text that states a per-tile/row range (None: one shared
    scale, told by the colour bar)."""
    cells = {(i, j): c.image for i, r in enumerate(rows) for j, c in enumerate(r.cells) if c.image is not None}
    if scale.kind == "range":
        values = np.concatenate([np.ravel(v) for v in cells.values()]) if cells else np.zeros(1)
        values = values[np.isfinite(values)] if np.isfinite(values).any() else np.zeros(1)
        lo, hi = scale.limits or (float(np.percentile(values, 1) if scale.robust else values.min()), float(values.max()))
        if hi - lo <= CONSTANT * max(abs(lo), abs(hi)) + 1e-12:  # a constant (a fixed sigma): mid-colour, not a
            pad = max(abs(lo) * 0.5, 1e-9)  # colour map stretched over float rounding
            lo, hi = (lo + hi) / 2 - pad, (lo + hi) / 2 + pad
        return {k: (lo, hi) for k in cells}, None
    key = (lambda k: k) if scale.by == "cell" else (lambda k: k[0]) if scale.by == "row" else (lambda k: 0)
    group_lim: dict = {}
    for k, image in cells.items():
        finite = np.abs(np.asarray(image, dtype=np.float64))
        group_lim[key(k)] = max(group_lim.get(key(k), 0.0), float(np.nanmax(finite)) if finite.size else 0.0)
    nonzero = [v for v in group_lim.values() if v > 0]
    shared = not nonzero or len(group_lim) == 1 or scale.merge and max(nonzero) <= MERGE_RATIO * min(nonzero)
    if shared:
        lim = max(nonzero, default=1.0)
        return {k: (-lim, lim) for k in cells}, None
    return {k: (-(group_lim[key(k)] or 1.0), group_lim[key(k)] or 1.0) for k in cells}, scale.by


def _state_ranges(rows: list[Row], limits: dict, own: str | None) -> list[Row]:
    """Rows with each tile's (own == 'cell') or row's (own == 'row') range '±r' added to its label or head."""
    if own is None:
        return rows
    out = []
    for i, r in enumerate(rows):
        ranges = [f"±{_fmt(limits[(i, j)][1])}" if (i, j) in limits else "" for j in range(len(r.cells))]
        if own == "cell":
            cells = [Cell(c.image, "\n".join(t for t in (c.label, rng) if t)) for c, rng in zip(r.cells, ranges)]
            out.append(Row(cells, r.head, r.heading))
        else:
            stated = next((rng for rng in ranges if rng), "")
            out.append(Row(r.cells, "\n".join(t for t in (r.head, stated) if t), r.heading))
    return out


@dataclass
class _Text:
    text: str
    size: float

    @property
    def height(self) -> float:
        return text_height(self.text, self.size) if self.text else 0.0


# long: the layout is measured top to bottom in inches and then drawn; split up, a dozen measured sizes would
# travel between helpers
def tile_figure(rows: list[Row], title: str, scale: Scale, col_heads: list[str] | None = None, caption: str = ""):
    """The figure of `rows` (see the module's docstring) under `title` and, smaller, `caption`; the caller
    saves it."""
    ncols = max(1, max(len(r.cells) for r in rows))
    tile = tile_size(ncols)
    pitch = tile + GAP
    limits, own = _limits(rows, scale)
    rows = _state_ranges(rows, limits, own)
    labels = [[_Text(*fit_text(c.label, pitch - 0.04, LABEL_PT)) for c in r.cells] for r in rows]
    heads = [_Text(*fit_text(r.head, 1.2, HEAD_PT)) for r in rows]
    grid_w = ncols * tile + (ncols - 1) * GAP
    left = max([text_width(h.text, h.size) + 0.1 for h in heads if h.text] + [0.55 if scale.frequency else 0.0])

    # the colour bar block on the right: bar, tick labels, its label (wrapped to the bar's height)
    colour_bar = scale.kind != "rgb"
    grid_h_estimate = len(rows) * (tile + 0.25)
    bar_h = float(np.clip(grid_h_estimate, 1.3, 2.6))
    relative = own is not None
    bar_text = (f"{scale.label}, as a fraction of the range ±r written "
                + ("above each tile" if own == "cell" else "beside each row")) if relative else scale.label
    bar_label = _Text(*fit_text(bar_text, bar_h, LABEL_PT))
    right = (0.2 + 0.11 + text_width("−0.000", TICK_PT) + 0.08 + bar_label.height) if colour_bar else 0.0

    content_w = PAD + left + grid_w + right + PAD
    width = max(MIN_WIDTH, content_w)
    x0 = (width - content_w) / 2 + PAD + left  # left edge of the first column
    head = _Text(*fit_text(title, width - 2 * PAD, TITLE_PT, min_size=6.5))
    note = _Text(*fit_text(caption, width - 2 * PAD, CAPTION_PT)) if caption else _Text("", CAPTION_PT)
    col = [_Text(*fit_text(h, pitch - 0.04, HEAD_PT, bold=True)) for h in (col_heads or [])]

    # top to bottom, in inches from the top edge
    y = PAD + head.height + (0.03 + note.height if caption else 0.0) + 0.08
    col_y = y
    if col:
        y += max(c.height for c in col) + 0.04
    placed = []  # (row index, heading y, tile top y)
    for i, row in enumerate(rows):
        # a heading runs from the left edge to the grid's right edge: the colour bar lies beyond
        heading = _Text(*fit_text(row.heading, x0 + grid_w - PAD, HEAD_PT, bold=True)) if row.heading else None
        heading_y = y
        if heading:
            y += heading.height + 0.04
        y += max(lab.height for lab in labels[i]) + 0.03
        placed.append((i, heading, heading_y, y))
        y += tile + ROW_GAP
    bottom = y - ROW_GAP + (0.5 if scale.frequency else PAD)
    first_top = placed[0][3]
    height = max(bottom, first_top + bar_h + PAD if colour_bar else 0.0)

    fig = plt.figure(figsize=(width, height))
    fx = lambda x: x / width  # noqa: E731
    fy = lambda y: 1 - y / height  # noqa: E731
    fig.text(0.5, fy(PAD), head.text, ha="center", va="top", fontsize=head.size)
    if caption:
        fig.text(0.5, fy(PAD + head.height + 0.03), note.text, ha="center", va="top", fontsize=note.size, color="0.25")
    for j, c in enumerate(col):
        fig.text(fx(x0 + j * pitch + tile / 2), fy(col_y), c.text, ha="center", va="top", fontsize=c.size,
                 fontweight="bold")
    # the tiles: images in one axes spanning the figure, its data coordinates in inches from the top left (one
    # axes per tile would cost more than the drawing for an atlas of 256)
    board = fig.add_axes((0, 0, 1, 1))
    board.set_xlim(0, width)
    board.set_ylim(height, 0)
    board.set_autoscale_on(False)
    board.axis("off")
    mappable = None
    for i, heading, heading_y, top in placed:
        if heading:
            fig.text(fx(PAD), fy(heading_y), heading.text, ha="left", va="top", fontsize=heading.size,
                     fontweight="bold")
        if heads[i].text:
            fig.text(fx(x0 - 0.08), fy(top + tile / 2), heads[i].text, ha="right", va="center", fontsize=heads[i].size)
        for j, cell in enumerate(rows[i].cells):
            x = x0 + j * pitch
            if labels[i][j].text:
                fig.text(fx(x + tile / 2), fy(top - 0.03), labels[i][j].text, ha="center", va="bottom",
                         fontsize=labels[i][j].size)
            if cell.image is None:
                continue
            extent = (x, x + tile, top + tile, top)
            if scale.frequency and i == len(rows) - 1 and j == 0:  # the tile whose axes read in cycles/pixel
                ax = fig.add_axes((fx(x), fy(top + tile), tile / width, tile / height))
                mappable = _draw(ax, cell.image, scale, limits[(i, j)], relative, None)
                _frequency_axes(ax)
            else:
                mappable = _draw(board, cell.image, scale, limits[(i, j)], relative, extent) or mappable
    if colour_bar and mappable is not None:
        cax = fig.add_axes((fx(x0 + grid_w + 0.2), fy(first_top + bar_h), 0.11 / width, bar_h / height))
        _colour_bar(fig, cax, mappable, bar_label, relative)
    return fig


def _draw(ax, image: np.ndarray, scale: Scale, lim: tuple[float, float], relative: bool,
          extent: tuple[float, float, float, float] | None):
    """Draw one tile into `ax` at `extent` (None: filling an axes of its own, in cycles/pixel for a spectrum);
    returns the image, for the colour bar (None for colour images)."""
    where = {"extent": extent, "aspect": "auto"} if extent else {}
    if np.ndim(image) == 3:
        ax.imshow(as_rgb(image), interpolation="nearest", **where)
        return None
    if scale.frequency:  # DC at the centre, the frequency axis pointing up
        if extent is None:
            n, m = np.shape(image)
            fy_, fx_ = np.fft.fftshift(np.fft.fftfreq(n)), np.fft.fftshift(np.fft.fftfreq(m))
            where = {"extent": (fx_[0] - 0.5 / m, fx_[-1] + 0.5 / m, fy_[0] - 0.5 / n, fy_[-1] + 0.5 / n)}
        return ax.imshow(image, cmap=scale.cmap, vmin=lim[0], vmax=lim[1], origin="lower", interpolation="nearest",
                         **where)
    if relative:  # each tile on its own range: the colour bar reads in fractions of it
        image = np.asarray(image) / lim[1]
        lim = (-1.0, 1.0)
    return ax.imshow(image, cmap=scale.cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest", **where)


def _frequency_axes(ax) -> None:
    """Ticks in cycles/pixel on a spectrum's own axes. The axes span the frequencies' pixels exactly, -0.5 to
    just below 0.5 (an even size has the Nyquist frequency once, at -0.5): a tick at 0.5 would widen them."""
    labels = [f"{t:g}".replace("-", "−") for t in FREQ_TICKS]
    ax.set_xticks(FREQ_TICKS, labels)
    ax.set_yticks(FREQ_TICKS, labels)
    ax.set_xticks(FREQ_MINOR, minor=True)
    ax.set_yticks(FREQ_MINOR, minor=True)
    ax.tick_params(labelsize=TICK_PT, length=2, pad=1.5)
    ax.tick_params(which="minor", length=1.2)
    ax.tick_params(axis="x", pad=3)
    ax.set_xlabel("$f_x$ (cycles/pixel)", fontsize=LABEL_PT, labelpad=1)
    ax.set_ylabel("$f_y$ (cycles/pixel)", fontsize=LABEL_PT, labelpad=1)


def _colour_bar(fig, cax, mappable, label: _Text, relative: bool) -> None:
    if relative:
        bar = fig.colorbar(ScalarMappable(Normalize(-1, 1), mappable.get_cmap()), cax=cax, ticks=[-1, 0, 1])
        bar.ax.set_yticklabels(["−r", "0", "+r"])
    else:
        bar = fig.colorbar(mappable, cax=cax)
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: number(v)))
    bar.ax.tick_params(labelsize=TICK_PT, length=2, pad=1.5)
    bar.set_label(label.text, fontsize=label.size, labelpad=3)
