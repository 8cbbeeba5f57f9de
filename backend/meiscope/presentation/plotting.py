"""Matplotlib helpers shared by the model card and the run figures (headless: the Agg backend): saving at
print resolution, and measuring, wrapping and shrinking text so that it fits the space it is given."""

from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # in Jupyter keep the notebook's backend (inline is Agg too), or its plots stop
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported for the figure modules)
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

# pyplot keeps global state: threads of the server (atlas, exports) draw one at a time
FIGURE_LOCK = threading.RLock()
DPI = 300  # PNGs at print resolution; SVG and PDF are vector (images embedded at their own pixels)
# TrueType (Type 42) fonts in PDFs: what journals ask for, and text stays selectable
SAVE_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}
LINE_SPACING = 1.2  # matplotlib's default for multi-line text


def save_figure(fig, path: Path, formats: tuple[str, ...]) -> list[str]:
    """Save one figure as path.<format> for each format (PNG at DPI); closes it; returns the file names."""
    names = []
    with plt.rc_context(SAVE_RC):
        for fmt in formats:
            target = Path(path).with_suffix("." + fmt)
            fig.savefig(target, dpi=DPI)
            names.append(target.name)
    plt.close(fig)
    return names


def number(value: float, digits: int = 3) -> str:
    """A value in a label: `digits` significant digits, thousands separated (23,600 rather than 2.36e+04),
    a true minus sign."""
    text = f"{float(value):.{digits}g}"
    if 1e3 <= abs(float(text)) < 1e7:  # NaN and infinities fail the test too
        text = f"{float(text):,.0f}"
    return text.replace("-", "−")


# ---- text that fits ------------------------------------------------------------------------------
_MEASURE = RendererAgg(1, 1, 720)  # measures text in pixels at 720 dpi: 10 per point


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in inches of the widest line of `text` at `size` points."""
    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    return max(_MEASURE.get_text_width_height_descent(line or " ", prop, ismath=False)[0]
               for line in text.split("\n")) / 720


def text_height(text: str, size: float) -> float:
    """Height in inches of `text` (its lines) at `size` points, with a little room for descenders."""
    return (LINE_SPACING * (text.count("\n") + 1) + 0.15) * size / 72


def wrap(text: str, width: float, size: float, bold: bool = False) -> str:
    """Break each line of `text` at spaces into lines no wider than `width` inches where words allow."""
    out = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if line and text_width(candidate, size, bold) > width:
                out.append(line)
                line = word
            else:
                line = candidate
        out.append(line)
    return "\n".join(out)


def fit_text(text: str, width: float, size: float, min_size: float = 5.0, bold: bool = False) -> tuple[str, float]:
    """`text` wrapped to `width` inches at `size` points, shrunk (down to min_size) where a single word is
    too wide; at min_size a line that still does not fit is cut with an ellipsis. Returns (text, size)."""
    while True:
        wrapped = wrap(text, width, size, bold)
        if text_width(wrapped, size, bold) <= width:
            return wrapped, size
        if size - 0.5 < min_size:
            break
        size -= 0.5
    lines = []
    for line in wrapped.split("\n"):
        while len(line) > 1 and text_width(line, size, bold) > width:
            line = line[:-2] + "…"
        lines.append(line)
    return "\n".join(lines), size


# ---- images ----------------------------------------------------------------------------------------
def as_rgb(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) image of several channels as (H, W, 3) in [0, 1], the channels scaled together."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = image.min(), image.max()
    rgb = np.moveaxis((image - lo) / ((hi - lo) or 1.0), 0, -1)
    return rgb if rgb.shape[-1] == 3 else np.repeat(rgb[..., :1], 3, axis=-1)


def image_grid(ax_grid, images: list[np.ndarray], titles: list[str] | None = None, cmap: str = "gray",
               symmetric: bool = True) -> None:
    """Draw images into a grid of axes, each on its own colour range (symmetric about 0 by default); images
    of several channels (C, H, W) in colour. (The model card's and the analysis' figures; run figures and
    sheets use tiles.py, which states the scale.)"""
    for k, ax in enumerate(np.asarray(ax_grid).ravel()):
        ax.axis("off")
        if k < len(images):
            if np.ndim(images[k]) == 3:
                ax.imshow(as_rgb(images[k]))
            elif symmetric:
                lim = float(np.abs(images[k]).max()) or 1.0
                ax.imshow(images[k], cmap=cmap, vmin=-lim, vmax=lim)
            else:
                ax.imshow(images[k], cmap=cmap)
            if titles:
                ax.set_title(titles[k], fontsize=6)


def grid_shape(n: int, max_cols: int = 16) -> tuple[int, int]:
    cols = min(max_cols, max(1, int(np.ceil(np.sqrt(n)))))
    return int(np.ceil(n / cols)), cols
