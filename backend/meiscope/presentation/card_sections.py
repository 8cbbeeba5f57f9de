"""Sections of the model card beyond its targets: the likelihood baselines, reconstructions patch by patch,
live atoms, texture (family decoding and the spectrally matched control), and the unit classes when a
characterisation has added them; and the figure of the worst-reconstructed patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .plotting import plt
from ..model.tdvae import OBS_STD, TDVAE


def write_worst_reconstructions(model: TDVAE, heldout: np.ndarray, worst: list[dict], path: Path) -> None:
    """The held-out patches with the lowest per-patch R² above their posterior-mean reconstructions, each pair on
    one grey scale (the patch's own range), so a near-constant reconstruction shows as flat grey."""
    side = model.patch
    idx = [w["heldout_index"] for w in worst]
    x = torch.as_tensor(np.array(heldout[idx], dtype=np.float32))
    with torch.no_grad():
        recon = model.reconstruct(x.reshape(len(idx), -1)).reshape(len(idx), side, side).numpy()
    fig, axes = plt.subplots(2, len(idx), figsize=(1.3 * len(idx), 3.1), squeeze=False)
    for k, w in enumerate(worst):
        lim = float(np.abs(x[k].numpy()).max()) or 1.0
        for row, img in enumerate((x[k].numpy(), recon[k])):
            axes[row, k].imshow(img, cmap="gray", vmin=-lim, vmax=lim)
            axes[row, k].axis("off")
        axes[0, k].set_title(f"#{w['heldout_index']}\nR² {w['r2']:.2f}, std {w['pixel_std']:.2f}", fontsize=6)
    fig.suptitle(f"The {len(idx)} worst-reconstructed held-out patches (top) and their reconstructions (bottom), "
                 f"pixel std in the title (observation noise std {OBS_STD})", fontsize=7.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def baseline_lines(m: dict) -> list[str]:
    """The held-out likelihood against both baselines: the floored Gaussian and the contrast-only scale mixture."""
    base = m["baselines"]
    if "scale_mixture" not in base:
        return []
    fit = base["scale_mixture_fit"]
    ref = base.get("reference_batch", {})
    lines = [
        f"- Contrast-only Gaussian scale mixture x = c·y + n (y the floored Gaussian's signal part, covariance "
        f"eigenvalues max(λ - 0.16, 0); n ~ N(0, 0.16 I); c on {len(fit['scales'])} log-spaced contrasts from "
        f"{fit['scales'][0]:g} to {fit['scales'][-1]:g}, mixture weights fitted by EM on {fit['n_em_patches']:,} "
        f"training patches; exact likelihood): {base['scale_mixture']:.2f} nats/patch. It takes "
        f"{base['scale_mixture'] - base['floored_gaussian']:+.1f} of the model's "
        f"{base['margin_over_floored_gaussian']:+.1f}-nat margin over the floored Gaussian: what the model adds "
        f"beyond a random contrast is {base['margin_over_scale_mixture']:+.1f} nats/patch.",
    ]
    if ref:
        lines.append(f"- On the reference batch: ELBO {m['reference_batch']['elbo']:.1f}, floored Gaussian "
                     f"{ref['floored_gaussian']:.1f}, scale mixture {ref['scale_mixture']:.1f} nats/patch (margins "
                     f"{ref['margin_over_floored_gaussian']:+.1f} and {ref['margin_over_scale_mixture']:+.1f}).")
    return lines


def reconstruction_lines(m: dict) -> list[str]:
    pct = m.get("reconstruction_r2_percentiles")
    if not pct:
        return []
    poor = m.get("poorly_reconstructed")
    return [
        "## Reconstructions, patch by patch",
        "",
        f"The pooled R² ({m['reconstruction_r2']:.1%}) is dominated by high-contrast patches. Per patch "
        f"(1 - SSE/SST about the patch's own mean, posterior-mean reconstruction, all held-out patches) the R² is "
        f"{pct['1']:.2f} at the 1st percentile, {pct['5']:.2f} at the 5th and {pct['50']:.2f} at the median. The "
        f"worst patches (figure `worst_reconstructions.png`, pixel std in each title) are of low contrast: a patch whose pixel std is near "
        f"or below the observation noise std {OBS_STD} is explained as noise and rightly reconstructed as nearly "
        f"constant, so a low per-patch R² there is the model's noise model at work, not a failure to represent "
        f"structure."
        + (f" Of the {poor['n']:,} patches with R² below {poor['r2_below']:g}, {poor['share_pixel_std_below_obs_std']:.0%} "
           f"have a pixel std below {OBS_STD} (their median {poor['median_pixel_std']:.2f}; all held-out patches' "
           f"median {poor['median_pixel_std_all']:.2f})." if poor and poor["n"] else ""),
        "",
    ]


def atom_lines(pf: dict) -> list[str]:
    if "n_live_atoms" not in pf:
        return []
    gap = ""
    if pf.get("largest_dead_norm_share") is not None:
        gap = (f" The norms fall in two groups with a gap around that threshold: no other atom lies above "
               f"{pf['largest_dead_norm_share']:.3f} of the largest, no live one below "
               f"{pf['smallest_live_norm_share']:.3f}.")
    return [f"- Live z1 atoms: {pf['n_live_atoms']} of {pf['n_atoms']} columns of W have a norm above "
            f"{pf['live_atom_fraction']:g} of the largest column norm.{gap} The other atoms barely reach the "
            f"pixels, so the model uses {pf['n_live_atoms']} of its {pf['n_atoms']} z1 units; the Gabor fits above "
            f"concern the {pf['n_fitted']} largest of the live atoms.", ""]


def texture_lines(card: dict) -> list[str]:
    """The family decoding of `meiscope texture-units`, said for what it is: which photograph a synthesis came
    from, decoded from z2, beside baselines; and how little most of its "sensitive" units carry."""
    t = card["metrics"].get("texture")
    if not t:
        return []
    census = card["metrics"]["units"]["census"]
    top = sorted((r for r in census if "texture_eta2" in r), key=lambda r: -r["texture_eta2"])[:10]
    acc = t["accuracy"]
    spectrum = (f", a 64-number log power spectrum (8 spatial-frequency x 8 orientation bins) "
                f"{acc['power_spectrum']:.3f}" if "power_spectrum" in acc else "")
    weak = sum(1 for r in census if r.get("texture_sensitive") and r["mean_kl"] <= 0.1)
    return [
        "## Texture families",
        "",
        f"Families: {', '.join(t['families'])} (Portilla-Simoncelli syntheses, `meiscope data textures`; "
        f"{t['n_synth']} syntheses each, decoders tested on the held-out last synthesis, {t['n_test']} patches). "
        "Brick, grass and reptile skin are training images of the model.",
        f"Decoding accuracy (chance {t['chance']:.2f}): z2 means {acc['z2']:.3f}, z1 means {acc['z1']:.3f}, "
        f"pixels {acc['pixels']:.3f}{spectrum}. This says which photograph a patch's statistics came from, and "
        + ("is not evidence of texture selectivity where the power spectrum, a second-order statistic, decodes "
           "the family as well." if spectrum else "is not by itself evidence of texture selectivity: the card "
           "holds no power-spectrum baseline for it yet (`meiscope texture-units --write-card` adds one), and "
           "the families may differ in second-order statistics alone."),
        f"{t['n_sensitive']} z2 units tell the families apart (ANOVA p < {t['alpha']:g}/250 and eta² >= "
        f"{t['min_eta2']}), but {weak} of them carry at most 0.1 nats (a unit of a nearly collapsed posterior "
        "can still shift with the input's statistics). The census records each unit's F, eta² and one-unit "
        "accuracy; the control against spectrally matched noise below is the stricter test.",
        "",
        "| unit | status | mean KL | eta² | F | one-unit accuracy |",
        "|---|---|---|---|---|---|",
        *[f"| {r['unit']} | {r['status']} | {r['mean_kl']:.3f} | {r['texture_eta2']:.3f} | {r['texture_f']:.1f} | "
          f"{r['texture_accuracy']} |" for r in top],
        "",
    ]


def modulation_lines(card: dict) -> list[str]:
    t = card["metrics"].get("texture_modulation")
    if not t:
        return []
    return [
        "### Against spectrally matched noise",
        "",
        f"Held-out photographs only ({', '.join(t['families'])}; never training images), whitened like the data, "
        f"against the same whitened image with its Fourier phases randomised (same amplitude spectrum), "
        f"{t['n_patches_per_family']} patches per family at the same positions in both. A unit's response is "
        f"{t['response']} (activations take either sign); its modulation index (Freeman et al. 2013) is "
        f"(texture - noise) / (texture + noise) per family, averaged over families, with a {t['ci']:g}% bootstrap "
        f"interval over patches ({t['n_boot']} resamples).",
        f"Among the {t['n_active']} clearly active z2 units (mean KL > 0.1 nats), {t['n_sensitive_active']} are "
        f"texture-sensitive against this control (the interval lies above 0); median index "
        f"{t['median_index_active']:.3f}. Counting every z2 unit would give {t['n_sensitive_all']}: a unit whose "
        "posterior barely moves still moves a little more for texture than for noise, so the count is kept to "
        "units that carry information. Phase randomisation removes every higher-order statistic, the local "
        "concentration of contrast into edges and blobs (sparseness) among them, so an index above 0 says that a "
        "unit responds to the photograph's non-Gaussian structure; it does not single out the texture-specific "
        "statistics (Portilla-Simoncelli's correlations) that distinguish V2 from V1 in Freeman et al.",
        "",
        "| unit | mean index | 95% interval | " + " | ".join(t["families"]) + " |",
        "|---|---|---|" + "---|" * len(t["families"]),
        *[f"| {u['unit']} | {u['mean_index']:.3f} | [{u['ci'][0]:.3f}, {u['ci'][1]:.3f}] | "
          + " | ".join(f"{v:.3f}" for v in u["index"]) + " |"
          for u in sorted(t["per_unit"], key=lambda u: -u["mean_index"])],
        "",
    ]


def unit_class_lines(card: dict) -> list[str]:
    """The unit classes of the clearly active z2 units, characterised with gratings (`meiscope characterise`):
    metrics.unit_classes ({class name: [units]}) and metrics.characterisation (rule, odd shares); nothing without."""
    classes = card["metrics"].get("unit_classes")
    if not classes:
        return []
    info = card["metrics"].get("characterisation", {})
    rows = [f"| {name} | {len(v)} | {', '.join(map(str, v))} |" for name, v in classes.items()]
    lines = ["## Unit classes", "",
             "The clearly active z2 units (mean KL above 0.1 nats) measured as a physiologist would, with gratings at the "
             "data's contrast and on held-out patches (`meiscope characterise`, docs/METHODS.md)."]
    if info.get("odd_share_range"):
        low, high = info["odd_share_range"]
        linear = len(classes.get("linear", []))
        lines += ["", f"Odd share of the response under x -> -x: {low:.4f} to {high:.4f}"
                  + (" - every one of them is an even function of its input: no linear (edge-like) unit, so a "
                     "white-noise STA is zero by symmetry" if linear == 0 and high < 0.05 else "") + "."]
    if info.get("rule"):
        lines += ["", f"Rule: {info['rule']}."]
    return [*lines, "", "| class | units | which |", "|---|---|---|", *rows, ""]
