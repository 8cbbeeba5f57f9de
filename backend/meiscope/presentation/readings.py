"""What a unit analysis (analysis/report.py) says, in words: its panels, each with what its values are and a
one-line reading, and the agreement between views with an interpretation of each number. The page, the figure
and the exported JSON show the same sentences."""

from __future__ import annotations

import numpy as np

from .plotting import number

CHARACTERISE = ("grating tuning, F1/F0 and the contrast response are the characterisation's "
                "(the page's Characterise button, `meiscope characterise`)")


def _input_values(report: dict) -> str:
    rng = report.get("input_range")
    return "input value" + (f" (range {number(rng[0])}..{number(rng[1])})" if rng else " (whitened pixel)")


def _even(report: dict) -> bool:
    share = report["symmetry"]["odd_share"]
    return share is not None and share < 0.5


def _r(value: float) -> str:
    return f"r = {value:.2f}"


def read_sta(report: dict) -> str:
    sta, share = report["sta"], report["symmetry"]["odd_share"]
    level = (f"peak {number(sta['peak_z'], 2)}x its noise floor from {sta['n_stimuli']:,} stimuli (noise alone: "
             f"about {number(sta['noise_peak_z'], 2)})")
    if _even(report):
        return (f"{level}; the unit is even in its input (odd share {number(share, 2)}), so a white-noise STA "
                "cancels by symmetry and says little about it")
    if sta["peak_z"] < sta["noise_peak_z"] + 1:
        return f"{level}: at the level of noise; more stimuli (--n-sta), or a nonlinear unit"
    return f"{level}: the unit's linear receptive field (odd share {number(share or 0, 2)})"


def read_agreement(report: dict) -> list[dict]:
    """[{"measure", "value", "reading"}] for each agreement number."""
    a, even = report["agreement"], _even(report)
    share = report["symmetry"]["odd_share"]
    rows = []
    r = a["preferred_vs_sta"]
    rows.append({"measure": "preferred vs STA", "value": _r(r), "reading": (
        f"near 0 is expected: the unit is even (odd share {number(share, 2)}), its STA cancels; no evidence against "
        "the preferred input" if even and abs(r) < 0.3 else
        "the preferred input is the linear receptive field" if r >= 0.5 else
        "they differ although the unit is mostly linear: suspect the optimiser, or a strong nonlinearity"
        if abs(r) < 0.3 else "partial agreement: the linear part explains some of the preferred input")})
    r = a["preferred_vs_gradient"]
    rows.append({"measure": "preferred vs gradient at it", "value": _r(r), "reading": (
        "the preferred input is the unit's own local filter, as at a norm-bounded optimum of a smooth unit"
        if r >= 0.5 else "the optimum is shaped by the regularisers or the input range more than by the local "
        "filter" if r < 0.2 else "partly the local filter")})
    m, lo, spec = a["across_seeds_mean"], a["across_seeds_min"], a["across_seeds_spectra_mean"]
    rows.append({"measure": "across 3 seeds", "value": f"mean r = {m:.2f}, min {lo:.2f}; spectra r = {spec:.2f}",
                 "reading": "one pattern: every seed finds it" if lo >= 0.8 else
                 "the seeds differ in phase or position but share their spectrum: a family of optima "
                 "(as for a phase-invariant unit)" if spec >= 0.7 else "different patterns: several optima"})
    if "preferred_vs_one_hot" in a:
        r = a["preferred_vs_one_hot"]
        rows.append({"measure": "preferred vs one-hot synthesis", "value": _r(r), "reading": (
            "the unit prefers what it generates top-down" if abs(r) >= 0.5 else
            "what the unit detects and what it generates differ (a generative unit need not prefer its "
            "projective field; an even unit's preferred input has no fixed sign)" if abs(r) < 0.3 else
            "they partly agree")})
        r = a["sta_vs_one_hot"]
        rows.append({"measure": "STA vs one-hot synthesis", "value": _r(r), "reading": (
            "the linear receptive field and the projective field agree" if abs(r) >= 0.5 else
            "no agreement" + (": the STA of an even unit is noise" if even else ""))})
    if "best_gabor_activation" in a:
        rows.append(_gabor_row(report))
    if "best_natural_activation" in a:
        n, p = a["best_natural_activation"], a["preferred_activation_max"]
        rows.append({"measure": "best natural input vs optimised input", "value": f"activation {number(n)} vs {number(p)}",
                     "reading": "a data input drives the unit more than the optimised input: the optimiser did not find "
                     "the maximum" if n > p else f"the optimised input exaggerates the best data input "
                     f"{number(p / n, 2)}x" if n > 0 else "no data input drives the unit above 0"})
    return rows


def _gabor_row(report: dict) -> dict:
    a = report["agreement"]
    g, p = a["best_gabor_activation"], a["preferred_activation_max"]
    gn, pn = report["gabor"]["norm"], max(report["preferred"]["norm"])
    norms = f"norms {number(gn)} vs {number(pn)}"
    if g > p:
        reading = (f"the best Gabor drives the unit more than the optimised input ({norms}): the optimiser did not "
                   "find the maximum" + ("" if gn <= pn * 1.05 else ", or the Gabor gains by its larger norm"))
    else:
        reading = (f"the optimised input drives the unit more than any Gabor tried ({norms}): its optimum is not a "
                   "simple Gabor" + (", or it gains by its larger norm" if pn > gn * 1.05 else ""))
    return {"measure": "best Gabor vs optimised input", "value": f"activation {number(g)} vs {number(p)}",
            "reading": reading}


def _peak(image: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(int(np.argmax(image)), image.shape)
    return int(y), int(x)


def _shift_reading(report: dict) -> str:
    shift = report["probes"]["shift"]
    r = shift.shape[0] // 2
    centre = float(shift[r, r])
    dy, dx = (v - r for v in _peak(shift))
    ring = float(np.mean([shift[r + y, r + x] for y in (-1, 0, 1) for x in (-1, 0, 1) if (y, x) != (0, 0)]))
    tolerance = f"1-px shifts keep {100 * ring / centre:.0f}% of it" if abs(centre) > 1e-9 else "unshifted: 0"
    best = "the unshifted input is best" if (dy, dx) == (0, 0) else \
        f"a shift of (dy {dy}, dx {dx}) px drives it more ({number(float(shift.max()))} vs {number(centre)}): not the maximum"
    return f"{best}; {tolerance}"


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image.mean(0)


def image_panels(report: dict) -> list[dict]:
    """Every image view of the report, in the order of the figure and the page: {"key", "title", "image",
    "values" (what the grey levels are), "reading", "centred", "axes" (None, or the x and y labels and the
    coordinates of the corner pixels' centres [left, right, bottom, top], as imshow's extent)}."""
    values, centred = _input_values(report), report.get("input_range") is None
    act = report["preferred"]["activation"]

    def panel(key, title, image, reading, what=values, centre=centred, axes=None):
        return {"key": key, "title": title, "image": image, "values": what, "reading": reading,
                "centred": centre, "axes": axes}

    panels = [panel(f"preferred.{i}", f"preferred input, seed {i}", img, f"activation {number(act[i])}")
              for i, img in enumerate(report["preferred"]["images"])]
    panels.append(panel("sta", "STA (white noise)", report["sta"]["image"], read_sta(report),
                        "activation-weighted input", True))
    gr = report["agreement"]["preferred_vs_gradient"]
    panels.append(panel("gradient", "gradient at the preferred input", report["gradient"]["image"],
                        f"local linear receptive field; {_r(gr)} with the preferred input",
                        "d activation / d input", True))
    if "one_hot" in report:
        oh = report["one_hot"]
        panels.append(panel("one_hot", f"one-hot synthesis ({oh['latent']} = {number(oh['scale'])} e_i)",
                            oh["pattern"], "what the unit generates top-down (minus the code 0's image): its "
                            "projective field", "input value minus the code 0's", True))
        if oh.get("samples") is not None:
            panels.append(panel("one_hot.sample", "one-hot synthesis, a sample", oh["samples"][0],
                                "the same code decoded through a sample where the model samples"))
    panels += _gabor_panels(report, values, centred, panel)
    panels += _probe_panels(report, panel)
    panels += _data_panels(report, panel)
    return panels


def _gabor_panels(report: dict, values: str, centred: bool, panel) -> list[dict]:
    if "gabor" not in report:
        return []
    g, fit = report["gabor"], report["gabor_fit_of_preferred"]
    p = g["optimised"]["params"]
    return [panel("gabor.optimised", "best Gabor", g["optimised"]["image"],
                  f"activation {number(g['optimised']['activation'])} at norm {number(g['norm'])}; "
                  f"{number(g['optimised']['orientation_deg'])}°, {number(p['freq'])} cycles/px"),
            panel("gabor.fit", f"Gabor fit of the preferred input (R² {fit['r2']:.2f})", fit["image"],
                  "Gabor-like: one Gabor explains it" if fit["r2"] >= 0.5 else
                  "not well described by one Gabor" if fit["r2"] < 0.25 else "partly Gabor-like")]


def _probe_panels(report: dict, panel) -> list[dict]:
    pr = report["probes"]
    occ = pr["occlusion"]
    y, x = _peak(occ)
    r = pr["shift"].shape[0] // 2
    spectrum = np.log10(np.fft.fftshift(np.abs(np.fft.fft2(_grey(report["preferred"]["images"][0])))) + 1e-6)
    s = report["spectra"]
    h, w = spectrum.shape
    fy, fx = (np.fft.fftshift(np.fft.fftfreq(n)) for n in (h, w))
    return [
        panel("occlusion", f"occlusion ({pr['occlusion_square_px']} px square)", occ,
              f"largest drop {number(float(occ.max()))} at row {y}, column {x}: the unit looks there"
              + ("; negative: occluding raises the activation" if occ.min() < -abs(occ.max()) * 0.2 else ""),
              "drop in activation", True, {"x": "column (px)", "y": "row (px)", "extent": [0, w - 1, h - 1, 0]}),
        panel("shift", "activation under circular shifts", pr["shift"], _shift_reading(report), "activation", False,
              {"x": "dx (px)", "y": "dy (px)", "extent": [-r, r, r, -r]}),
        panel("spectrum", "amplitude spectrum of the preferred input", spectrum,
              f"peak at {number(s['peak_cycles_per_pixel'])} cycles/px; entropy {number(s['entropy_bits'])} of "
              f"{number(s['max_entropy_bits'])} bits (low: one grating, high: broadband)", "log10 amplitude", False,
              {"x": "fx (cycles/px)", "y": "fy (cycles/px)",
               "extent": [round(float(fx[0]), 3), round(float(fx[-1]), 3), round(float(fy[-1]), 3), round(float(fy[0]), 3)]}),
    ]


def _data_panels(report: dict, panel) -> list[dict]:
    panels = []
    best = max(report["preferred"]["activation"])
    if "nearest" in report:
        near = report["nearest"]
        for i, (img, r) in enumerate(zip(near["pixel"]["images"], near["pixel"]["score"])):
            panels.append(panel(f"nearest.pixel.{i}", f"nearest data input {i + 1}, pixels", img,
                                f"{_r(r)} with the preferred input" + (
                                    " (none of the data looks like it)" if i == 0 and r < 0.3 else "")))
        for i, (img, d) in enumerate(zip(near["activation"]["images"], near["activation"]["score"])):
            panels.append(panel(f"nearest.activation.{i}", f"nearest data input {i + 1}, {near['activation']['layer']}",
                                img, f"distance {number(d)} in {near['activation']['layer']}'s activations"))
    if "natural_top" in report:
        top = report["natural_top"]
        for i, (img, a) in enumerate(zip(top["images"][:4], top["activation"])):
            panels.append(panel(f"natural.{i}", f"top natural input {i + 1}", img,
                                f"activation {number(a)}" + (f" ({100 * a / best:.0f}% of the optimised input's"
                                                             + ("; more: not the maximum)" if a > best else ")")
                                                             if best > 0 else "")))
    return panels


def summary_line(report: dict) -> str:
    a = report["agreement"]
    parts = [f"{report['layer']} unit {report['unit']} of {report['model']}: optimised input activation "
             f"{number(max(report['preferred']['activation']))}",
             f"odd share {number(report['symmetry']['odd_share'] or 0, 2)} (on {report['symmetry']['measured_on']})",
             f"preferred vs STA {_r(a['preferred_vs_sta'])}"]
    if "best_gabor_activation" in a:
        parts.append(f"best Gabor {number(a['best_gabor_activation'])}")
    return "; ".join(parts)


def readings(report: dict) -> dict:
    """JSON-ready: the summary line, the agreement rows, each panel's title, values and reading, what was left out."""
    left_out = []
    if "one_hot" not in report:
        left_out.append(f"one-hot synthesis: {report['layer']} is no latent code the model decodes")
    if "gabor" not in report:
        left_out.append("Gabor fits: drawn for one-channel square inputs only")
    if "nearest" not in report:
        left_out.append("nearest and top natural inputs: the model has no data")
    return {"summary": summary_line(report), "agreement": read_agreement(report),
            "panels": [{k: p[k] for k in ("key", "title", "values", "reading", "axes")} for p in image_panels(report)],
            "left_out": left_out, "see_also": CHARACTERISE}
