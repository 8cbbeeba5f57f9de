"""PNG figures of a Run: inputs, their amplitude spectra, learned kernels (and theirs), sigma maps and the
metric curves. Large batches (an atlas) show at most MAX_TILES rows."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.spectra import amplitude_spectrum
from ..plotting import grid_shape, image_grid, plt

if TYPE_CHECKING:  # result.py imports this module to draw a saved run's figures
    from .result import Run

MAX_TILES = 256
MAX_CURVES = 16


def _labels(run: Run, n: int) -> list[str]:
    act = run.final_activation if len(run.metrics["activation"]) else np.full(len(run.rows), np.nan)
    single = run.config.samples == 1
    return [f"u{r['unit']}" + ("" if single else f".{r['sample']}") + f"  {act[i]:.3g}"
            for i, r in enumerate(run.rows[:n])]


def _save(fig, path: Path, formats: tuple[str, ...]) -> list[str]:
    """Save one figure as path.<format> for each format; returns the file names."""
    names = []
    for fmt in formats:
        fig.savefig(path.with_suffix("." + fmt), dpi=110)
        names.append(path.with_suffix("." + fmt).name)
    plt.close(fig)
    return names


def _grid_figure(images: np.ndarray, titles: list[str], title: str, path: Path, symmetric: bool = True,
                 cmap: str = "gray", formats: tuple[str, ...] = ("png",)) -> list[str]:
    n = min(len(images), MAX_TILES)
    nrows, ncols = grid_shape(n)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols + 0.4, 1.15 * nrows + 0.6), squeeze=False)
    image_grid(axes, list(images[:n]), titles[:n], cmap=cmap, symmetric=symmetric)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return _save(fig, path, formats)


def _spectra(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """log10 amplitude spectra, (N, H, W); of the channels' mean for images of several channels (N, C, H, W)."""
    images = np.asarray(images)
    return np.log10(amplitude_spectrum(images if images.ndim == 3 else images.mean(1), size) + 1e-6)


def write_figures(run: Run, folder: str | Path, formats: tuple[str, ...] = ("png",)) -> list[str]:
    """Write the run's figures into `folder` in each of `formats` (png, svg, pdf); returns the file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = min(len(run.rows), MAX_TILES)
    labels = _labels(run, n)
    method = run.config.method
    centred = run.info.get("input", {}).get("centred", True)  # whitened inputs: a grey scale centred on 0
    size = run.images.shape[-1]
    written = []

    def grid(name: str, images: np.ndarray, title: str, **kw) -> None:
        written.extend(_grid_figure(images, labels, title, folder / name, formats=formats, **kw))

    grid("inputs.png", run.images, f"{method}: final inputs (unit, final activation)", symmetric=centred)
    grid("best_inputs.png", run.best_images, f"{method}: each row's input at its best objective", symmetric=centred)
    grid("spectra.png", _spectra(run.images), "log10 amplitude spectrum of the inputs (DC centred)",
         symmetric=False, cmap="magma")
    if "kernels" in run.arrays:
        first = run.arrays["kernels"][:, 0]  # (rows, k, k): the (first) kernel of each row
        grid("kernels.png", first, f"learned {first.shape[-1]}x{first.shape[-1]} kernels")
        grid("kernel_spectra.png", _spectra(first, size=size),
             f"log10 amplitude spectrum of the kernels ({size}x{size} grid)", symmetric=False, cmap="magma")
        grid("transform_inputs.png", run.arrays["inputs"], "inputs i before the transform (x = G(i))",
             symmetric=centred)
    if "sigma" in run.arrays and run.arrays["sigma"].ndim == 3:
        grid("sigma.png", run.arrays["sigma"], "sigma of the distribution", symmetric=False, cmap="viridis")

    steps = np.arange(len(run.metrics["activation"]))
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.5), sharex=True)
    curves = min(len(run.rows), MAX_CURVES)
    for ax, name in zip(axes.ravel(), ("activation", "runner_up", "elbo", "objective")):
        values = run.metrics[name][:, :curves]
        for i in range(curves):
            ok = np.isfinite(values[:, i])
            ax.plot(steps[ok], values[ok, i], lw=0.8, label=labels[i].split()[0] if i < 8 else None)
        ax.set_title(name.replace("_", "-"), fontsize=9)
        if name == "elbo":
            ax.set_yscale("symlog")
    axes[0, 0].legend(fontsize=6, ncol=2)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle(f"{method}: metrics per step" + (f" (first {curves} of {len(run.rows)} rows)" if curves < len(run.rows) else ""),
                 fontsize=9)
    fig.tight_layout()
    written.extend(_save(fig, folder / "metrics.png", formats))
    return written


def write_sheet(runs: list[tuple[str, Run]], path: Path, formats: tuple[str, ...] = ("png",)) -> list[str]:
    """A sheet of several runs' final inputs side by side (first row of each), labelled by unit, method and
    final activation: the thesis' grid figures."""
    images, titles = [], []
    for name, run in runs:
        for i, row in enumerate(run.rows[: max(1, MAX_TILES // max(1, len(runs)))]):
            images.append(run.images[i])
            titles.append(f"u{row['unit']} {run.config.method}\n{run.final_activation[i]:.3g}")
    return _grid_figure(np.array(images), titles, "preferred inputs (unit, method, final activation)", path,
                        formats=formats)
