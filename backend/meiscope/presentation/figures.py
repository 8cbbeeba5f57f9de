"""Figures of a Run, ready for a paper: inputs, their amplitude spectra, learned kernels (and theirs), sigma
maps and the metric curves, each with its scale stated and every text inside the canvas (tiles.py).
Large batches (an atlas) show at most MAX_TILES rows; a sheet shows several runs side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis.spectra import amplitude_spectrum
from ..engine.result import Run
from .labels import SEP, target_text
from .plotting import fit_text, grid_shape, number, plt, save_figure
from .tiles import Cell, Row, Scale, is_constant, tile_figure

MAX_TILES = 256
MAX_CURVES = 16
MAX_COLS = 16
MAX_NATURAL_ROWS = 16  # units shown with their natural inputs
SPECTRUM = "log10 amplitude |FFT| (input units × pixels)"
METRIC_AXES = {"activation": "activation of the target unit", "runner_up": "largest activation of another unit",
               "elbo": "ELBO of the input (nats)", "objective": "objective maximised (activation + weighted terms)"}


def run_title(run: Run) -> str:
    """A run's label when it is shown alone: its target and method."""
    return f"{target_text(run.config)}{SEP}{run.config.method}"


def value_label(run: Run) -> str:
    """What an input's values are: whitened pixel values for the TDVAE-40, input values otherwise."""
    name = str(run.info.get("model", {}).get("name", "TDVAE"))
    return "whitened pixel value" if name.startswith("TDVAE") else "input value"


def input_scale(run: Run, images: np.ndarray, label: str | None = None) -> Scale:
    """Centred inputs (whitened patches) on a grey scale centred on 0; inputs with a range on that range;
    several channels in colour."""
    spec = run.info.get("input", {})
    if np.ndim(images) == 4 and np.shape(images)[1] > 1:
        return Scale("rgb")
    if spec.get("centred", True):
        return Scale("centred", label or value_label(run))
    limits = tuple(spec["range"]) if spec.get("range") else None
    return Scale("range", label or value_label(run), limits=limits)


def _tiles(images: np.ndarray) -> list[np.ndarray]:
    """One image per tile: (H, W), or (C, H, W) for several channels (one channel drops its axis)."""
    images = np.asarray(images)
    return [im[0] if im.ndim == 3 and im.shape[0] == 1 else im for im in images]


def grid_rows(images: list[np.ndarray], labels: list[str], max_cols: int = MAX_COLS, ncols: int | None = None) -> list[Row]:
    """Tiles in rows of `ncols`, by default of a near-square grid (at most max_cols wide)."""
    ncols = ncols or grid_shape(len(images), max_cols)[1]
    cells = [Cell(im, lab) for im, lab in zip(images, labels)]
    return [Row(cells[i:i + ncols]) for i in range(0, len(cells), ncols)]


def _row_names(run: Run, n: int) -> list[str]:
    single = run.config.samples == 1
    return [f"u{r['unit']}" + ("" if single else f".{r['sample']}") for r in run.rows[:n]]


def _spectra(images: np.ndarray, size: int | None = None) -> np.ndarray:
    """log10 amplitude spectra, (N, H, W); of the channels' mean for images of several channels (N, C, H, W)."""
    images = np.asarray(images)
    return np.log10(amplitude_spectrum(images if images.ndim == 3 else images.mean(1), size) + 1e-6)


def _first(n: int, total: int) -> str:
    return f" (the first {n} of {total} rows)" if n < total else ""


def write_figures(run: Run, folder: str | Path, formats: tuple[str, ...] = ("png",), label: str | None = None) -> list[str]:
    """Write the run's figures into `folder` in each of `formats` (png, svg, pdf); `label` names the run in
    the titles (default: its target and method). Returns the file names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    label = label or run_title(run)
    total = len(run.rows)
    n = min(total, MAX_TILES)
    names = _row_names(run, n)
    act = run.final_activation if len(run.metrics["activation"]) else np.full(total, np.nan)
    written: list[str] = []

    def grid(name: str, images, labels: list[str], what: str, scale: Scale) -> None:
        fig = tile_figure(grid_rows(_tiles(images[:n]), labels), label, scale, caption=what + _first(n, total))
        written.extend(save_figure(fig, folder / name, formats))

    grid("inputs.png", run.images, [f"{u}: {number(a)}" for u, a in zip(names, act)],
         "Final inputs; above each: unit (.sample) and its final activation", input_scale(run, run.images))
    steps = np.asarray(run.best_step[:n], dtype=int)
    best_act = [run.metrics["activation"][s, i] if len(run.metrics["activation"]) else np.nan for i, s in enumerate(steps)]
    grid("best_inputs.png", run.best_images, [f"{u}: {number(a)}\nstep {s}" for u, a, s in zip(names, best_act, steps)],
         "Each row's input at its best objective; above each: unit, activation and step there",
         input_scale(run, run.best_images))
    grid("spectra.png", _spectra(run.images), names, "Amplitude spectra of the final inputs (DC at the centre)",
         Scale("range", SPECTRUM, cmap="magma", robust=True, frequency=True))
    if "kernels" in run.arrays:
        first = run.arrays["kernels"][:, 0]  # (rows, k, k): the (first) kernel of each row
        k, size = first.shape[-1], run.images.shape[-1]
        grid("kernels.png", first, names, f"Learned {k}×{k} kernel of each row (the first, for a CNN)",
             Scale("centred", "kernel weight"))
        grid("kernel_spectra.png", _spectra(first, size=size), names,
             f"Amplitude spectra of the kernels, zero-padded to {size}×{size} (DC at the centre)",
             Scale("range", "log10 amplitude |FFT| (weight × pixels)", cmap="magma", robust=True, frequency=True))
        grid("transform_inputs.png", run.arrays["inputs"], names, "Inputs i before the transform (x = G(i))",
             input_scale(run, run.arrays["inputs"], "value of i"))
    if "sigma" in run.arrays and run.arrays["sigma"].ndim == 3:
        sigma = run.arrays["sigma"]
        title = (f"σ of the distribution over inputs: constant {number(float(np.nanmean(sigma)))} at every pixel (fixed)"
                 if is_constant(sigma) else "σ of the distribution over inputs, per pixel")
        grid("sigma.png", sigma, names, title, Scale("range", f"σ ({value_label(run)})", cmap="viridis"))
    if run.natural:
        written.extend(save_figure(natural_figure(run, label, names), folder / "natural.png", formats))
    written.extend(save_figure(metrics_figure(run, label), folder / "metrics.png", formats))
    return written


def natural_figure(run: Run, label: str, names: list[str]):
    """Each row's preferred input beside the real inputs that drive its unit most (run.natural), on one scale
    per row, each with its activation: an exaggeration of what the unit codes looks like them, an artefact not."""
    n = min(len(run.rows), MAX_NATURAL_ROWS)
    natural, acts = run.natural["images"][:n], run.natural["activation"][:n]
    final = run.final_activation if len(run.metrics["activation"]) else np.full(n, np.nan)
    k = acts.shape[1]
    rows = [Row([Cell(_tiles(run.images[i:i + 1])[0], number(final[i]))]
                + [Cell(im, number(a)) for im, a in zip(_tiles(natural[i]), acts[i])], head=names[i]) for i in range(n)]
    scale = input_scale(run, run.images)
    if scale.kind == "centred":
        scale = Scale("centred", scale.label, by="row")
    heads = ["preferred"] + [f"data #{j + 1}" for j in range(k)]
    caption = (f"Each unit's preferred input, then the {k} inputs of the data its census was measured on that drive "
               "it most; above each: its activation" + _first(n, len(run.rows)))
    return tile_figure(rows, label, scale, col_heads=heads, caption=caption)


def save_with_figures(run: Run, directory: str | Path, formats: tuple[str, ...] = ("png",)) -> Path:
    """Run.save, with the run's figures in `directory`/figures, written inside the same atomic save."""
    return run.save(directory, also=lambda folder: write_figures(run, folder / "figures", formats))


def metrics_figure(run: Run, label: str):
    """Activation, runner-up, ELBO and objective per step, a line per row (the first MAX_CURVES)."""
    steps = np.arange(len(run.metrics["activation"]))
    curves = min(len(run.rows), MAX_CURVES)
    names = _row_names(run, curves)
    fig = plt.figure(figsize=(8.5, 5.6), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    lines = []
    for ax, name in zip(axes.ravel(), METRIC_AXES):
        values = run.metrics[name][:, :curves]
        if not np.isfinite(values).any():
            ax.text(0.5, 0.5, "not measured" + (" (the model has no ELBO)" if name == "elbo" else ""),
                    ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
        for i in range(curves):
            ok = np.isfinite(values[:, i])
            line, = ax.plot(steps[ok], values[ok, i], lw=0.9)
            if name == "activation":
                lines.append(line)
        _reference_lines(ax, name, run.info.get("references") or {}, lines)
        ax.set_ylabel(fit_text(METRIC_AXES[name], 2.2, 8)[0], fontsize=8)
        ax.tick_params(labelsize=7)
        if name == "elbo" and _spans_decades(values):
            ax.set_yscale("symlog")
            ax.set_ylabel(fit_text("ELBO of the input (nats, symmetric log scale)", 2.2, 8)[0], fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("step", fontsize=8)
    if curves > 1:
        fig.legend(lines, names, loc="outside right center", fontsize=7, title="unit", title_fontsize=7,
                   ncols=1 if curves <= 12 else 2)
    title = f"{label}\nMetrics per step{_first(curves, len(run.rows))}"
    fig.suptitle(fit_text(title, 8.5 - 0.3, 9, min_size=6.5)[0], fontsize=9)
    return fig


def _reference_lines(ax, name: str, refs: dict, lines: list) -> None:
    """The page's reference lines: each row's unit's 99.9th percentile on data (dashed, in the row's colour) on the
    activation axis, the held-out median ELBO (dashed grey) on the ELBO axis; labelled on the axis."""
    if name == "activation":
        shown = {}
        for line, p999 in zip(lines, refs.get("act_p999") or []):
            if p999 is not None and p999 not in shown:
                shown[p999] = ax.axhline(p999, color=line.get_color(), lw=0.8, ls="--")
        if shown:
            text = "99.9th pct on data" + (" (each unit's colour)" if len(shown) > 1 else "")
            ax.legend([next(iter(shown.values()))], [text], fontsize=6, frameon=False, loc="best")
    elif name == "elbo" and refs.get("heldout_elbo_median") is not None:
        ax.axhline(refs["heldout_elbo_median"], color="0.45", lw=0.8, ls="--")
        ax.legend([ax.lines[-1]], ["held-out median"], fontsize=6, frameon=False, loc="best")


def _spans_decades(values: np.ndarray, decades: float = 1.5) -> bool:
    """Whether the finite values' magnitudes span more than `decades` (a log scale then reads better)."""
    magnitudes = np.abs(values[np.isfinite(values)])
    magnitudes = magnitudes[magnitudes > 0]
    return magnitudes.size > 1 and np.log10(magnitudes.max() / magnitudes.min()) > decades


def write_sheet(runs: list[tuple[str, Run]], path: Path, formats: tuple[str, ...] = ("png",),
                labels: dict[str, str] | None = None) -> list[str]:
    """The final inputs of several runs side by side, each run labelled by `labels` (name -> label; default:
    its target and method). Runs of one row each share a grid; runs of several rows get a section each
    (the first MAX_TILES // runs rows)."""
    labels = labels or {}
    titled = [(labels.get(name) or run_title(run), run) for name, run in runs]
    per_run = max(1, MAX_TILES // max(1, len(runs)))
    if all(len(run.rows) == 1 for _, run in titled):
        rows = grid_rows([_tiles(run.images)[0] for _, run in titled],
                         [f"{lab}: {number(run.final_activation[0])}" for lab, run in titled], max_cols=8)
        what = "above each: the run and its final activation"
    else:
        rows = []
        ncols = min(8, max(min(len(run.rows), per_run) for _, run in titled))
        for lab, run in titled:
            n = min(len(run.rows), per_run)
            section = grid_rows(_tiles(run.images[:n]), [f"{u}: {number(a)}" for u, a in
                                                       zip(_row_names(run, n), run.final_activation)], ncols=ncols)
            section[0].heading = lab + _first(n, len(run.rows))
            rows += section
        what = "above each: unit (.sample) and its final activation"
    first = titled[0][1]
    fig = tile_figure(rows, "Preferred inputs: the final input of each run", input_scale(first, first.images),
                      caption=what[0].upper() + what[1:])
    return save_figure(fig, path, formats)
