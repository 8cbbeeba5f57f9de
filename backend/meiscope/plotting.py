"""Matplotlib helpers shared by the model card and the run figures (headless: the Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported for the figure modules)
import threading  # noqa: E402

import numpy as np  # noqa: E402

# pyplot keeps global state: threads of the server (atlas, exports) draw one at a time
FIGURE_LOCK = threading.RLock()


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A (C, H, W) image of several channels as (H, W, 3) in [0, 1], the channels scaled together."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = image.min(), image.max()
    rgb = np.moveaxis((image - lo) / ((hi - lo) or 1.0), 0, -1)
    return rgb if rgb.shape[-1] == 3 else np.repeat(rgb[..., :1], 3, axis=-1)


def image_grid(ax_grid, images: list[np.ndarray], titles: list[str] | None = None, cmap: str = "gray",
               symmetric: bool = True) -> None:
    """Draw images into a grid of axes, each on its own colour range (symmetric about 0 by default); images
    of several channels (C, H, W) in colour."""
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
