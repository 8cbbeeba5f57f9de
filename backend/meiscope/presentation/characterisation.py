"""The figure of a unit's characterisation: tuning curves, the response over phase, the contrast-response function,
the preferred grating and the top natural inputs, every axis labelled with its unit; and the files of
`meiscope characterise` (characterisation.json, characterisation.png, arrays.npz)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..model.checkpoint import atomic_write_text
from .plotting import DPI, FIGURE_LOCK, number, plt

READING = {
    "contrast": "a contrast unit: its activation follows the inputs' contrast on data",
    "linear": "a linear (simple-cell-like) unit: mostly odd in its input",
    "phase-invariant": "a phase-invariant (complex-cell-like) unit: even in its input, F1/F0 below 1",
    "untuned": "an untuned even unit: no orientation halves its response",
    "even, phase-modulated": "even in its input, yet modulated by the grating's phase",
    "unresponsive": "neither gratings nor inputs move it",
}


def summary_line(record: dict) -> str:
    """One line a reader can take in: class, preferred grating, F1/F0, odd share."""
    return (f"{record['layer']} unit {record['unit']}: {READING.get(record['unit_class'], record['unit_class'])}. "
            f"Prefers {number(record['preferred_orientation_deg'])}° at "
            f"{number(record['preferred_sf_cycles_per_pixel'])} cycles/px; F1/F0 {number(record['phase_modulation'])}, "
            f"odd share {number(record['odd_share'] or 0)} (on {record['odd_share_measured_on']}), "
            f"blank response {number(record['blank_response'])}")


def _curve(ax, x, y, blank, xlabel, title, log=False, mark=None) -> None:
    ax.plot(x, y, color="C0", lw=1.4)
    ax.axhline(0, color="0.6", lw=0.8, ls="--", label="blank")
    if mark is not None:
        ax.axvline(mark, color="C3", lw=0.8, label="preferred")
    if log:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("peak response − blank", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)


def _image(ax, image: np.ndarray, title: str) -> None:
    img = np.moveaxis(image, 0, -1) if image.ndim == 3 else image
    img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
    if img.ndim == 3:
        img = (img - img.min()) / (np.ptp(img) + 1e-12)
        ax.imshow(img, interpolation="nearest")
    else:
        lim = float(np.abs(img - np.median(img)).max()) or 1.0
        centre = float(np.median(img))
        ax.imshow(img, cmap="gray", vmin=centre - lim, vmax=centre + lim, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _contrast(ax, record: dict) -> None:
    crf = record["contrast_response"]
    c, r = np.array(crf["contrasts"]), np.array(crf["responses"])
    shown = c > 0
    ax.plot(c[shown], r[shown], "o-", color="C0", ms=3, lw=1.4)
    ax.axhline(record["blank_response"], color="0.6", lw=0.8, ls="--", label="blank")
    ax.axvline(record["stimulus"]["contrast"], color="C2", lw=0.8,
               label="data's contrast" if record["stimulus"]["contrast_from"] == "data" else "unit contrast")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("grating contrast (pixel std)", fontsize=8)
    ax.set_ylabel("response at the best phase", fontsize=8)
    si = record["saturation_index"]
    ax.set_title(f"contrast response (saturation {'n/a' if si is None else number(si, 2)})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)


def characterisation_figure(record: dict):
    """A 2 x 4 figure of one characterised unit (a matplotlib Figure; the caller saves and closes it)."""
    a = record["arrays"]
    fig = plt.figure(figsize=(11, 5.6))
    grid = fig.add_gridspec(2, 4, height_ratios=[1, 1])
    ax = [fig.add_subplot(grid[0, i]) for i in range(4)]
    _curve(ax[0], a["orientations_deg"], a["orientation_curve"], record["blank_response"],
           "grating orientation (deg, wave vector from +x)", f"orientation tuning (HWHH "
           f"{'n/a' if record['orientation_bandwidth_deg'] is None else number(record['orientation_bandwidth_deg'], 2) + '°'})",
           mark=record["preferred_orientation_deg"])
    _curve(ax[1], a["sfs"], a["sf_curve"], record["blank_response"], "spatial frequency (cycles/pixel)",
           f"SF tuning (bandwidth {'n/a' if record['sf_bandwidth_octaves'] is None else number(record['sf_bandwidth_octaves'], 2) + ' oct'})",
           log=True, mark=record["preferred_sf_cycles_per_pixel"])
    phases = np.degrees(a["phases"])
    ax[2].plot(phases, a["phase_response"], "o-", color="C0", ms=3, lw=1.4)
    ax[2].axhline(record["blank_response"], color="0.6", lw=0.8, ls="--", label="blank")
    ax[2].set_xlabel("grating phase (deg)", fontsize=8)
    ax[2].set_ylabel("response", fontsize=8)
    ax[2].set_title(f"phase, at the preferred grating (F1/F0 {number(record['phase_modulation'], 2)})", fontsize=8)
    ax[2].tick_params(labelsize=7)
    ax[2].legend(fontsize=6, frameon=False)
    _contrast(ax[3], record)
    images = [(a["preferred_grating"], "preferred grating")]
    top = record.get("natural_top")
    if top is not None:
        images += [(img[None] if img.ndim == 2 else img, f"natural #{k + 1}: {number(v)}")
                   for k, (img, v) in enumerate(zip(a["natural_images"][:7], top["activation"]))]
    inner = grid[1, :].subgridspec(1, 8)
    for k, (img, title) in enumerate(images):
        _image(fig.add_subplot(inner[0, k]), img, title)
    fig.suptitle(summary_line(record), fontsize=9, wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def split_arrays(record: dict) -> tuple[dict, dict]:
    """(the JSON-ready record, its arrays)."""
    return {k: v for k, v in record.items() if k != "arrays"}, record["arrays"]


def write_characterisation(record: dict, out: Path) -> list[str]:
    """characterisation.json, arrays.npz and characterisation.png (at print resolution) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers, arrays = split_arrays(record)
    atomic_write_text(out / "characterisation.json", json.dumps(numbers, indent=1))
    np.savez_compressed(out / "arrays.npz", **arrays)
    with FIGURE_LOCK:
        fig = characterisation_figure(record)
        fig.savefig(out / "characterisation.png", dpi=DPI)
        plt.close(fig)
    return ["characterisation.json", "arrays.npz", "characterisation.png"]


def figure_png(record: dict, dpi: int = 110) -> bytes:
    """The figure as PNG bytes at screen resolution (the page's view)."""
    buffer = io.BytesIO()
    with FIGURE_LOCK:
        fig = characterisation_figure(record)
        fig.savefig(buffer, format="png", dpi=dpi)
        plt.close(fig)
    return buffer.getvalue()


def _or_na(value, digits: int = 3, suffix: str = "") -> str:
    return "n/a" if value is None else number(value, digits) + suffix


def readings(record: dict) -> list[dict]:
    """Each measure with its value and a one-line reading, for the page's table."""
    pm, odd, si, r = record["phase_modulation"], record["odd_share"], record["saturation_index"], record["contrast_correlation"]
    crf = record["contrast_response"]["responses"]
    rows = [
        ("preferred orientation", _or_na(record["preferred_orientation_deg"], 3, "°"),
         "angle of the grating's wave vector from the x axis (0°: vertical stripes); half-width at half height "
         + _or_na(record["orientation_bandwidth_deg"], 2, "°")),
        ("preferred spatial frequency", _or_na(record["preferred_sf_cycles_per_pixel"], 3, " cycles/px"),
         "bandwidth " + _or_na(record["sf_bandwidth_octaves"], 2, " octaves") + " (full width at half height)"),
        ("F1/F0 over phase", _or_na(pm), "below 1: phase-invariant (complex-cell-like); pi/2 for a rectified linear "
         "unit; larger: linear (simple-cell-like)" + (" — capped: F0 is 0" if pm == 1000 else "")),
        ("odd share", _or_na(odd), f"share of the response's variance that changes sign with the input (on "
         f"{record['odd_share_measured_on']}): 1 linear, 0 even (energy or contrast); a white-noise STA of an even "
         "unit is 0"),
        ("blank response", _or_na(record["blank_response"]), "the response to a uniform input"),
        ("contrast response", f"{number(crf[0])} → {number(crf[-1])}", "at the preferred grating, blank to the "
         f"highest contrast; saturation index {_or_na(si, 2)} (0 linear, 1 flat at the top, negative accelerating)"),
        ("contrast correlation", _or_na(r, 2), "correlation with the log of the inputs' pixel std on data; "
         "|r| of 0.5 or more: a contrast unit" if r is not None else "needs data (the model has none)"),
        ("class", record["unit_class"], READING.get(record["unit_class"], "")),
    ]
    t = record.get("texture_modulation")
    if t is not None:
        per_family = ", ".join(f"{f} {number(v, 2)}" for f, v in zip(t["families"], t["index"]))
        rows.insert(-1, ("texture vs matched noise", f"{number(t['mean_index'], 2)} [{number(t['ci95'][0], 2)}, "
                         f"{number(t['ci95'][1], 2)}]", "modulation index (tex - noise) / (tex + noise) on held-out "
                         f"photographs against their phase-randomised twins ({per_family}); above 0: more for the "
                         "photograph's non-Gaussian structure than for its power spectrum alone"))
    return [{"measure": m, "value": v, "reading": text} for m, v, text in rows]
