"""The model card: model_card.json (machine-readable), MODEL_CARD.md and its figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from .card_sections import (atom_lines, baseline_lines, modulation_lines, reconstruction_lines, texture_lines,
                            unit_class_lines, write_worst_reconstructions)
from .plotting import image_grid, plt
from ..model.checkpoint import CARD_JSON, atomic_write_text
from ..model.tdvae import TDVAE

CARD_MD = "MODEL_CARD.md"
# cards are released into models/NAME/: the links lead from there to the repository's docs
DOCS_LINE = ("What the model computes: [docs/MODEL.md](../../docs/MODEL.md). How meiscope finds a unit's preferred "
             "inputs (every method and option) and checks them: [docs/METHODS.md](../../docs/METHODS.md).")


def read_card(folder: Path) -> dict:
    path = Path(folder) / CARD_JSON
    if not path.is_file():
        raise FileNotFoundError(f"no model card at {path}")
    return json.loads(path.read_text())


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_training_curves(curves: list[tuple[str, list[dict]]], baseline: float, path: Path) -> None:
    """Held-out ELBO and the KLs over the training minutes of every stage in turn (a stage's rows as
    metrics.csv holds them), with the floored-Gaussian baseline and the stage boundaries."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    offset = 0.0
    for k, (name, rows) in enumerate(curves):
        minutes = offset + np.array([float(r["wall_s"]) for r in rows]) / 60
        held = [(m, float(r["heldout_elbo"])) for m, r in zip(minutes, rows) if r.get("heldout_elbo")]
        colour = f"C{k}"
        if held:
            a1.plot(*zip(*held), "o-", ms=2.5, color=colour, label=f"{name}: held-out (2,048 patches)")
        batch = [(m, float(r["kl_z1"]), float(r["kl_z2"])) for m, r in zip(minutes, rows) if r.get("kl_z1")]
        if batch:
            m, kl1, kl2 = map(np.array, zip(*batch))
            a2.plot(m, kl1, lw=0.7, color=colour, label=f"{name}: KL z1")
            a2.plot(m, 10 * kl2, lw=0.7, ls="--", color=colour, label=f"{name}: KL z2 x 10")
        if k:
            for ax in (a1, a2):
                ax.axvline(offset, color="0.6", lw=0.6)
        offset = minutes[-1]
    a1.axhline(baseline, color="k", lw=0.8, ls=":", label="floored Gaussian (all held-out patches)")
    lows = [float(r["heldout_elbo"]) for _, rows in curves for r in rows if r.get("heldout_elbo")]
    if lows:
        a1.set_ylim(max(min(lows + [baseline]) - 20, baseline - 600), None)
    a1.set_xlabel("training time (minutes)")
    a1.set_ylabel("ELBO (nats/patch)")
    a1.legend(fontsize=6.5)
    a2.set_xlabel("training time (minutes)")
    a2.set_ylabel("training batch (nats/patch)")
    a2.legend(fontsize=6.5, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_figures(model: TDVAE, heldout: np.ndarray, metrics: dict, stage_metrics: list[tuple[str, Path]],
                  folder: Path) -> list[str]:
    """PNG figures beside the card; returns their names. stage_metrics: (stage name, its metrics.csv),
    oldest first."""
    fig_dir = folder / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    names = []

    side = model.patch
    fits = metrics["projective_fields"]["fits"][:64]
    W = model.W.detach().numpy()
    fig, axes = plt.subplots(8, 8, figsize=(8, 8.6))
    image_grid(axes, [W[:, f["z1_unit"]].reshape(side, side) for f in fits],
                [f"z1 {f['z1_unit']}  R²={f['r2']:.2f}" for f in fits])
    fig.suptitle(f"The {len(fits)} largest-norm projective fields (columns of W) with their Gabor-fit R²", fontsize=9)
    fig.savefig(fig_dir / "projective_fields.png", dpi=110)
    plt.close(fig)
    names.append("projective_fields.png")

    x = torch.as_tensor(np.array(heldout[:8], dtype=np.float32))  # a copy: the memmap is read-only
    with torch.no_grad():
        recon = model.reconstruct(x.reshape(8, -1)).reshape(8, side, side).numpy()
    fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
    image_grid(axes, list(x.numpy()) + list(recon), [f"held-out {i}" for i in range(8)] + ["reconstruction"] * 8)
    fig.suptitle("Held-out patches (top) and posterior-mean reconstructions (bottom)", fontsize=9)
    fig.savefig(fig_dir / "reconstructions.png", dpi=110)
    plt.close(fig)
    names.append("reconstructions.png")

    if metrics.get("worst_reconstructions"):
        write_worst_reconstructions(model, heldout, metrics["worst_reconstructions"],
                                    fig_dir / "worst_reconstructions.png")
        names.append("worst_reconstructions.png")

    kl = np.sort(np.array([u["mean_kl"] for u in metrics["units"]["census"]]))[::-1]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.semilogy(np.maximum(kl, 1e-6), ".-", ms=3)
    ax.axhline(0.1, color="tab:green", lw=0.8, label="0.1 nats (clearly active)")
    ax.axhline(0.01, color="tab:red", lw=0.8, label="0.01 nats (collapse threshold)")
    ax.set_xlabel("z2 unit, sorted")
    ax.set_ylabel("mean KL on held-out (nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(fig_dir / "unit_kl.png", dpi=110)
    plt.close(fig)
    names.append("unit_kl.png")

    curves = [(name, rows) for name, path in stage_metrics for rows in [read_rows(Path(path))] if rows]
    if curves:
        write_training_curves(curves, metrics["baselines"]["floored_gaussian"], fig_dir / "training_curves.png")
        names.append("training_curves.png")
    return names


def _check(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _beta_text(c: dict) -> str:
    if c["beta_start"] >= 1 or c["beta_warmup_frac"] <= 0:
        return "z2-KL weight 1 throughout (no warm-up)"
    return f"z2-KL weight warmed up from {c['beta_start']} to 1 over the first {c['beta_warmup_frac']:.0%} of the steps"


def _schedule_text(c: dict) -> str:
    budget = (f"its {c['max_minutes']:g}-minute budget" if c.get("max_minutes") and c["steps"] >= 1_000_000
              else f"{c['steps']:,} planned steps")
    text = (f"Recipe: Adam lr {c['lr']}, constant for the first {c['lr_decay_start']:.0%} of {budget}, then falling linearly "
            f"to {c['lr_final_frac']:g} x lr; {_beta_text(c)}")
    if c.get("z2_free_bits"):
        until = c.get("z2_free_bits_until", 1.0)
        fall = f"falling to 0 at {until:.0%} of the run" if until <= 1 else "throughout"
        per = ("per z2 unit" if c.get("z2_free_bits_per", "unit") == "unit"
               else "per z2 unit on average, one floor on the layer's KL")
        text += f"; free bits {c['z2_free_bits']:g} nats {per}, {fall}"
    return text + f"; gradient-norm clip {c['clip_norm']}, seed {c['seed']}."


def _commands(t: dict) -> list[str]:
    """The train commands of every stage, oldest first (each later one starts from the one before)."""
    return [st["command"] for st in t.get("earlier_stages") or []] + [t["command"]]


def _earlier_stage_lines(t: dict) -> list[str]:
    """The stages the last one started from (a dictionary, earlier training folders or releases), and the
    totals over all of them."""
    stages = t.get("earlier_stages") or []
    if not stages:
        return []
    lines = []
    for st in stages:
        what = (f"Stage {st['stage']}" if st.get("stage") else f"Started from an earlier release ({st.get('released')})")
        steps = f"{st['steps']:,} steps in " if st["steps"] else ""
        lines.append(f"- {what}: {steps}{st['wall_s'] / 60:.1f} minutes on {st['machine']}, by `{st['command']}`")
    return lines


def _total_line(t: dict) -> list[str]:
    if not t.get("earlier_stages"):
        return []
    return [f"- In all: {t['total_steps']:,} steps in {t['total_wall_s'] / 60:.1f} minutes of training."]


def _reproduce_line(t: dict) -> str:
    if t.get("recipe"):
        stages = t["recipe"]["stages"]
        parts = ", ".join(f"{name} {st['seconds'] / 60:.1f}" if name != "data" or st["seconds"] >= 1 else "data cached"
                          for name, st in stages.items())
        minutes = sum(st["seconds"] for st in stages.values()) / 60
        return (f"- Reproduce: `{t['recipe']['command']}` runs every stage and the release in one go, resuming "
                f"after an interruption. Here it took {minutes:.0f} minutes ({parts} minutes).")
    return ("- Reproduce: " + ", then ".join(f"`{command}`" for command in _commands(t))
            + ", then `meiscope release RUN_DIR --out models/tdvae40`.")


def _intro_lines(card: dict) -> list[str]:
    t = card["training"]
    if card.get("provenance"):  # weights trained elsewhere (`meiscope import tdvae`)
        return [f"{card.get('model', 'TDVAE')}: a two-layer hierarchical VAE of early vision (architecture in "
                f"docs/MODEL.md, {card['n_parameters']:,} parameters).", "", card["provenance"], "",
                "Every number below is measured by meiscope on its own held-out patches, cut from held-out source "
                "images; none of them, nor any other meiscope patch, took part in training these weights."]
    return [
        "The reference model of meiscope: a two-layer hierarchical VAE of early vision (architecture in docs/MODEL.md,",
        f"{card['n_parameters']:,} parameters), trained by meiscope's own code on whitened 40x40 natural-image patches"
        + (" with the staged recipe of docs/TRAINING.md." if t.get("recipe") else "."),
        "Every number below is measured on held-out patches cut from held-out source images.",
    ]


def _training_lines(t: dict) -> list[str]:
    if t.get("imported"):
        step = t.get("global_step")
        return [
            "## Provenance",
            "",
            f"- Trained elsewhere, on other data, by {t['trained_by']}; meiscope did not train these weights.",
            f"- Imported from the TensorFlow checkpoint `{t['source']}` "
            + (f"at global step {step:,}" if step is not None else "(no global_step recorded)")
            + f": {t['n_tensors_read']} weight tensors read, {t['n_tensors_skipped']} others (optimiser state, "
            "counters) skipped.",
            f"- {t['assumptions']}",
            f"- Reproduce: `{t['command']}`.",
            "",
        ]
    return [
        "## Training",
        "",
        *_earlier_stage_lines(t),
        f"- {'Last stage' if t.get('earlier_stages') else 'Machine'}"
        f"{' (joint: every weight)' if t.get('recipe') else ''}: {t['machine']}; device {t['device']}; "
        f"{t['steps']:,} steps of batch {t['config']['batch']} "
        f"({t['steps'] * t['config']['batch']:,} patches) in {t['wall_s'] / 60:.1f} minutes. "
        f"{_schedule_text(t['config'])}",
        *[f"  - Session from step {seg['start_step']:,}: {seg['change']}" for seg in t.get("sessions", [])],
        *_total_line(t),
        _reproduce_line(t),
        "",
    ]


def _data_lines(card: dict) -> list[str]:
    d = card["data"]
    side = d.get("crop")
    lines = [
        "## Data" + (" (measurement only)" if card.get("provenance") else ""),
        "",
        f"- Whitened with f·exp(-(f/{d['params']['f0']})⁴) per whole image, {d['params']['n_train']:,} training and "
        f"{d['params']['n_heldout']:,} held-out 40x40 patches, flips and 90° rotations, unit pixel variance over the "
        f"training set (scale {d['scale']:.4f}), seed {d['params']['seed']}.",
    ]
    if side:
        lines.append(f"- The model takes {side}x{side} patches: every measurement uses the central {side}x{side} "
                     "pixels of each patch.")
    if card.get("provenance"):
        lines.append("- The training split serves only the Gaussian baselines' covariance; the weights never saw it.")
    return lines + [
        f"- Training images: {', '.join(d['sources']['train'])}.",
        f"- Held-out images: {', '.join(d['sources']['heldout'])}.",
        f"- Content hashes (sha256 of the float32 arrays): train `{d['train_sha256']}`, held-out `{d['heldout_sha256']}`.",
        "",
    ]


def _scale_mixture_row(m: dict) -> list[str]:
    base = m["baselines"]
    if "margin_over_scale_mixture" not in base:
        return []
    margin = base["margin_over_scale_mixture"]
    return [f"| held-out ELBO above the contrast-only Gaussian scale mixture | {m['heldout']['elbo']:.1f} vs "
            f"{base['scale_mixture']:.1f} nats/patch: margin {margin:+.1f} | {_check(margin > 0)} |"]


def render_markdown(card: dict) -> str:
    m = card["metrics"]
    t = card["training"]
    base = m["baselines"]
    pf = m["projective_fields"]
    units = m["units"]
    interim = t.get("interim_note")
    top = sorted(units["census"], key=lambda u: -u["mean_kl"])[:20]
    x_dim = card.get("sizes", {}).get("patch", 40) ** 2
    lines = [
        f"# {card.get('model', 'TDVAE-40')}: model card",
        "",
        *([f"> **{interim}**", ""] if interim else []),
        *_intro_lines(card),
        "",
        DOCS_LINE,
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        f"| held-out ELBO above the floored (linear-Gaussian) baseline | {m['heldout']['elbo']:.1f} vs "
        f"{base['floored_gaussian']:.1f} nats/patch: margin {base['margin_over_floored_gaussian']:+.1f} | "
        f"{_check(base['margin_over_floored_gaussian'] > 0)} |",
        *_scale_mixture_row(m),
        f"| at least 20 z2 units with mean KL > 0.1 nats | {units['n_kl_above_0.1']} | "
        f"{_check(units['n_kl_above_0.1'] >= 20)} |",
        f"| at least half of the {pf['n_fitted']} largest projective fields Gabor-like (R² >= {pf['r2_threshold']}) | "
        f"{pf['n_gabor_like']} ({pf['fraction_gabor_like']:.0%}), median R² {pf['median_r2']:.2f} | "
        f"{_check(pf['fraction_gabor_like'] >= 0.5)} |",
        f"| reconstructions explain at least 90% of pixel variance (pooled over patches) | {m['reconstruction_r2']:.1%} | "
        f"{_check(m['reconstruction_r2'] >= 0.9)} |",
        "",
        "## Held-out likelihood",
        "",
        f"- ELBO {m['heldout']['elbo']:.2f} nats/patch = E log p(x|z1) {m['heldout']['log_lik']:.2f} "
        f"- KL z1 {m['heldout']['kl_z1']:.2f} - KL z2 {m['heldout']['kl_z2']:.2f}, over {m['heldout']['n_patches']:,} "
        f"held-out patches, one sample per patch (sampling seed {m['heldout']['sampling_seed']}).",
        f"- Floored Gaussian (the TDVAE's linear-Gaussian special case: covariance eigenvalues floored at 0.4² = 0.16): "
        f"{base['floored_gaussian']:.2f} nats/patch; unconstrained Gaussian: {base['unconstrained_gaussian']:.2f} "
        f"({base['n_eigenvalues_below_obs_var']} of {x_dim} training-covariance eigenvalues lie below 0.16, so no model "
        f"with 0.4 observation noise reaches the latter). Covariance from {base['n_train_patches_for_covariance']:,} "
        "training patches.",
        f"- Reference batch for the test suite: the first {m['reference_batch']['first_n_heldout_patches']} held-out "
        f"patches, ELBO {m['reference_batch']['elbo']:.3f} nats/patch.",
        *baseline_lines(m),
        "",
        *_training_lines(t),
        *_data_lines(card),
        "## Unit census",
        "",
        f"{units['n_active_kl_above_0.01']} of {len(units['census'])} z2 units are active (mean KL >= 0.01 nats), "
        f"{units['n_kl_above_0.1']} above 0.1 nats. Every unit's record is in `model_card.json` (`metrics.units.census`); "
        "the 20 with the largest KL:",
        "",
        "| unit | mean KL | mean std | activation mean | activation std | 99.9th pct |",
        "|---|---|---|---|---|---|",
        *[f"| {u['unit']} | {u['mean_kl']:.3f} | {u['mean_std']:.3f} | {u['act_mean']:.3f} | {u['act_std']:.3f} | "
          f"{u['act_p999']:.3f} |" for u in top],
        "",
        *unit_class_lines(card),
        "## Projective fields",
        "",
        f"- {pf['n_gabor_like']} of the {pf['n_fitted']} largest-norm columns of W are Gabor-like (R² >= "
        f"{pf['r2_threshold']}).",
        *atom_lines(pf),
        *reconstruction_lines(m),
        "## Figures",
        "",
        *[f"![{name}](figures/{name})" for name in card["figures"]],
        "",
        "## Files",
        "",
        "`weights-*.safetensors`: float16 shards of at most 16 MiB; `manifest.json`: their sha256 and every tensor's "
        "shape, checked by `meiscope.load_model()`.",
        "",
    ]
    lines += texture_lines(card) + modulation_lines(card)
    return "\n".join(lines)


def write_card(folder: Path, card: dict) -> None:
    folder = Path(folder)
    atomic_write_text(folder / CARD_JSON, json.dumps(card, indent=1))
    atomic_write_text(folder / CARD_MD, render_markdown(card))
