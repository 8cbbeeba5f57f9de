"""Ablations of the recipe at a short, equal budget: each arm changes one choice (the dictionary, the encoder's
start, the z2 free-bits schedule) and is measured on the targets of the reference model, so that recipes can be
compared before one of them gets the full budget.

An arm's folder holds the recipe's stage folders (its dictionary linked from a shared one) and `metrics.json`;
`ablation.json` beside them collects every arm measured so far."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from scipy import optimize

from ..analysis.baselines import gaussian_baselines
from ..analysis.characterise import DATA_INPUTS, responses, stimulus_frame, symmetry_and_contrast
from ..analysis.census import ACTIVE_KL, COLLAPSE_KL
from ..analysis.gabor import fit_gabor
from ..data.patches import PatchSetParams, build_natural, params_key
from ..model.checkpoint import atomic_write_text, load_model
from ..model.tdvae import OBS_STD, TDVAE, as_batch, kl_laplace, kl_normal_std_normal
from .dictionary import DICTIONARY_META, Dictionary, fit_ica, patches_for_dictionary, refine_ica
from .evaluate import (COV_PATCHES, elbo_terms_mean, live_atom_record, live_columns, per_patch_r2,
                       r2_percentiles, reconstruction_errors)
from .recipe import DICTIONARY_DIR, INFERENCE_DIR, JOINT_DIR, RecipeConfig, stage_done, stage_configs
from .train import METRICS_FILE, train

ABLATION_FILE = "ablation.json"
EVAL_PATCHES = 2048  # the first held-out patches, as the training's own held-out rows
GABOR_SAMPLE = 200  # live atoms fitted (a random sample), for the Gabor-like share
GABOR_R2 = 0.7
LINEAR_ODD_SHARE = 0.2  # the thesis' edge-like (linear) class
FACTOR_PATCHES = 32768  # the last training patches (after the dictionary's): their live z1 codes' linear structure
FACTOR_NATS = 0.1  # what a linear factor must be worth to the codes to match an active z2 unit
# a Gaussian factor along a correlation eigenvalue lam gains (lam - 1 - log lam) / 2 nats over independent codes:
# 0.1 nats takes lam >= 1.772
FACTOR_EIGENVALUE = optimize.brentq(lambda lam: (lam - 1 - math.log(lam)) / 2 - FACTOR_NATS, 1.0 + 1e-9, 100.0)

# Each arm: the recipe's fields it changes from the default (energy start from ICA, free bits per unit until 60%);
# "data": the patch set's fields it changes.
ARMS: dict[str, dict] = {
    "baseline": {},
    "signed": {"encoder_start": "signed"},
    "random": {"encoder_start": "random"},
    "refined_energy": {"dictionary": "ica_refined"},
    "refined_signed": {"dictionary": "ica_refined", "encoder_start": "signed"},
    "free_bits_longer": {"free_bits_until": 0.9},
    "free_bits_layer": {"free_bits_per": "layer"},
    # the whitening's roll-off at Nyquist: more of the patch's directions above the noise (1,119 against 842)
    "cutoff_0.5": {"data": {"f0": 0.5}},
}


def arm_folder(out: Path, name: str, seed: int) -> Path:
    return out / (name if seed == 0 else f"{name}-seed{seed}")


def patch_set_key(data) -> str:
    """The name of a built patch set's parameters: dictionaries and baselines are kept per patch set."""
    return params_key(PatchSetParams(**data.meta["params"]))


def shared_dictionary(method: str, root: Path, data, base: RecipeConfig, progress: bool = True) -> Path:
    """The folder of a dictionary shared by the arms on the same patches (fitted once, seed 0): ica, or
    ica_refined from the ica one."""
    folder = root / f"{method}-{patch_set_key(data)}"
    if (folder / DICTIONARY_META).is_file():
        return folder
    patches = patches_for_dictionary(data.train, base.dictionary_patches)
    if method == "ica":
        fitted = fit_ica(patches, n_components=base.dictionary_atoms)
    elif method == "ica_refined":
        fitted = refine_ica(patches, Dictionary.load(shared_dictionary("ica", root, data, base, progress)),
                            progress=progress)
    else:
        raise ValueError(f"arms use the ica or ica_refined dictionary, got {method!r}")
    fitted.save(folder)
    return folder


def run_arm(name: str, out: Path, dictionaries: Path, inference_steps: int, joint_steps: int, seed: int = 0,
            base: RecipeConfig | None = None, gabor_sample: int = GABOR_SAMPLE, progress: bool = True) -> dict:
    """Train one arm (or resume it) and measure it; returns its metrics row. Budgets are steps, not minutes, so
    that arms run side by side or on a loaded machine stay comparable; an arm run again keeps its finished stages and
    is measured again. `base`: the recipe the arms change."""
    base = base or RecipeConfig()
    changes = dict(ARMS[name])
    data_changes = changes.pop("data", {})
    config = replace(base, **changes, data=replace(base.data, **data_changes), seed=seed)
    folder = arm_folder(out, name, seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = build_natural(config.data, progress=progress)
    link = folder / DICTIONARY_DIR
    if not link.exists():
        link.symlink_to(shared_dictionary(config.dictionary, dictionaries, data, base, progress).resolve())
    inference, joint = stage_configs(config, folder, 0.0)
    t0 = time.perf_counter()
    for sub, stage, steps in ((INFERENCE_DIR, inference, inference_steps), (JOINT_DIR, joint, joint_steps)):
        stage.steps, stage.max_minutes = steps, 1e6  # the step budget alone drives the schedules
        if not stage_done(folder / sub, stage):
            train(stage, folder / sub, progress=progress)
    trained = time.perf_counter() - t0
    start_W = load_model(folder / INFERENCE_DIR).W.detach().double().numpy()  # W is frozen in that stage
    row = {"arm": name, "seed": seed, "changes": ARMS[name], "config": asdict(config),
           "steps": {"inference": inference_steps, "joint": joint_steps}, "train_seconds": round(trained, 1),
           "scale_mixture": scale_mixture_reference(data, out),
           **arm_metrics(load_model(folder / JOINT_DIR).eval(), data, start_W, gabor_sample=gabor_sample)}
    return save_row(out, folder, row)


def measure_released(model_dir: Path, out: Path, dictionaries: Path, base: RecipeConfig | None = None,
                     progress: bool = True) -> dict:
    """A released checkpoint (a recipe's output, e.g. the shipped one) measured like an arm, as the row named after
    its folder; its W is compared with the shared ICA dictionary, the recipe's default first stage."""
    base = base or RecipeConfig()
    card = json.loads((model_dir / "model_card.json").read_text())["training"]
    data = build_natural(base.data, progress=progress)
    ica = Dictionary.load(shared_dictionary("ica", dictionaries, data, base, progress))
    model = load_model(model_dir).eval()
    start_W = np.zeros(tuple(model.W.shape))
    start_W[:, : ica.n_atoms] = ica.atoms  # the energy start writes ICA's atoms into W in their order
    row = {"arm": model_dir.name, "seed": card["config"]["seed"], "changes": {}, "released": str(model_dir),
           "config": card["config"],
           "steps": {"inference": card["total_steps"] - card["steps"], "joint": card["steps"]},
           "train_seconds": round(card["total_wall_s"], 1), "scale_mixture": scale_mixture_reference(data, out),
           **arm_metrics(model, data, start_W)}
    folder = out / model_dir.name
    folder.mkdir(parents=True, exist_ok=True)
    return save_row(out, folder, row)


def save_row(out: Path, folder: Path, row: dict) -> dict:
    """A measured row into its folder's metrics.json, and ablation.json brought up to date."""
    atomic_write_text(folder / "metrics.json", json.dumps(row, indent=2))
    collect(out)
    return row


def write_figure(rows: list[dict], out: Path, path: Path) -> None:
    """Every measured arm's held-out ELBO and z2 units over its steps (presentation/ablation.py)."""
    from ..presentation.ablation import write_ablation_figure

    arms = []
    for r in rows:
        if "released" in r:  # its training curves are not under `out`
            continue
        folder = arm_folder(out, r["arm"], r["seed"])
        arms.append((f"{r['arm']} (seed {r['seed']})", [folder / INFERENCE_DIR / METRICS_FILE,
                                                        folder / JOINT_DIR / METRICS_FILE], r["scale_mixture"]))
    write_ablation_figure(arms, path)


def collect(out: Path) -> list[dict]:
    """Every measured arm under `out`, written to out/ablation.json."""
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*/metrics.json"))]
    atomic_write_text(out / ABLATION_FILE, json.dumps(rows, indent=2))
    return rows


def scale_mixture_reference(data, out: Path) -> float:
    """The contrast-only scale mixture's mean log-likelihood on the evaluation patches (cached in `out` per patch
    set: an arm on other patches is compared with its own)."""
    path = out / f"scale_mixture-{patch_set_key(data)}.json"
    if path.is_file():
        return json.loads(path.read_text())["scale_mixture"]
    value = gaussian_baselines(np.asarray(data.train[:COV_PATCHES]), np.asarray(data.heldout[:EVAL_PATCHES]),
                               OBS_STD**2)["scale_mixture"]
    atomic_write_text(path, json.dumps({"scale_mixture": value, "n_patches": EVAL_PATCHES}))
    return value


@torch.no_grad()
def arm_metrics(model: TDVAE, data, start_W: np.ndarray, seed: int = 0, gabor_sample: int = GABOR_SAMPLE) -> dict:
    """The reference model's targets, measured quickly: held-out ELBO, live z1 atoms (their Gabor-like share on a
    sample and their correlation with the atom they started from), z2 units above 0.1 nats, the odd share of the
    clearly active ones, how far p(z1 | z2)'s mean follows the codes, and per-patch reconstruction R² percentiles."""
    held = np.asarray(data.heldout[:EVAL_PATCHES], dtype=np.float32)
    terms = elbo_terms_mean(model, held)
    W = model.W.detach().double().numpy()
    atoms = live_atom_record(W)
    live = live_columns(W, atoms["live_atom_fraction"])
    sample = np.random.default_rng(seed).permutation(live)[:gabor_sample]
    r2 = np.array([fit_gabor(W[:, j].reshape(40, 40)).summary()["r2"] for j in sample])
    start = start_W[:, live]
    corr = (W[:, live] * start).sum(0) / (np.linalg.norm(W[:, live], axis=0) * np.linalg.norm(start, axis=0) + 1e-12)
    x = as_batch(held)
    mu, std = model.z2_posterior(x)
    mean_kl = kl_normal_std_normal(mu, std).mean(0).numpy()
    active = [int(u) for u in np.flatnonzero(mean_kl > ACTIVE_KL)]
    odd = odd_shares(model, data, [int(u) for u in np.flatnonzero(mean_kl > COLLAPSE_KL)])
    sse, sst = reconstruction_errors(model, held)
    mu1, b1 = model.z1_posterior(x, mu)
    prior_mu1, prior_b1 = model.z1_prior(mu)
    z1_kl = kl_laplace(mu1, b1, prior_mu1, prior_b1).mean(0).numpy()  # a z1 unit that carries information is alive
    # an odd z2 unit can act only through the prior's mean (through the scales alone, p(x | z2) is symmetric about
    # a fixed point, so z2's posterior is even in x): how much of each live code's spread that mean follows
    prior_mean_share = (prior_mu1[:, live].std(0) / mu1[:, live].std(0).clamp_min(1e-12)).numpy()
    return {
        "heldout_elbo": terms["elbo"], "log_lik": terms["log_lik"], "kl_z1": terms["kl_z1"], "kl_z2": terms["kl_z2"],
        **atoms,
        "gabor_share_live": float((r2 >= GABOR_R2).mean()) if len(r2) else None, "gabor_sampled": int(len(r2)),
        "start_correlation_live": {q: float(np.percentile(corr, p)) for q, p in (("p5", 5), ("median", 50))}
        if len(corr) else None,
        "z2_units_above_0.1": len(active), "z2_units_above_0.01": len(odd),
        "z2_units_with_half_the_kl": int(np.searchsorted(np.cumsum(np.sort(mean_kl)[::-1]), mean_kl.sum() / 2) + 1),
        "odd_share_active": odd_record([odd[u] for u in active]),
        "odd_share_above_0.01": odd_record(list(odd.values())),
        "r2_percentiles": r2_percentiles(per_patch_r2(sse, sst)),
        "z1_units_above_0.1": int((z1_kl > ACTIVE_KL).sum()),
        "prior_mean_share_live": float(np.median(prior_mean_share)) if len(live) else None,
        "linear_factors": linear_factors(live_codes(model, data.train[-FACTOR_PATCHES:], live)),
    }


@torch.no_grad()
def live_codes(model: TDVAE, patches, live: np.ndarray, batch: int = 2048) -> np.ndarray:
    """The live z1 units' posterior means (patches x live), at the z2 posterior mean."""
    x = as_batch(np.asarray(patches, dtype=np.float32))
    codes = [model.readout(x[i : i + batch], "z1", "mean", live) for i in range(0, len(x), batch)]
    return torch.cat(codes).double().numpy()


def linear_factors(codes: np.ndarray) -> dict:
    """The linear structure among the codes, which only an odd z2 unit (through the prior's mean) could model: the
    directions of largest variance of the standardised codes on one half of the patches, and the variance the
    other half has along them. The codes share each patch's contrast, so a half's covariance leans on its few
    high-contrast patches and its own top eigenvalues lie far above what independent codes would give; only the
    other half says whether a direction is the data's (its count still errs towards finding factors).
    A direction is worth FACTOR_NATS to a Gaussian factor when its variance reaches FACTOR_EIGENVALUE."""
    half = len(codes) // 2
    fit, check = codes[:half], codes[half : 2 * half]
    keep = fit.std(0) > 0
    mean, std = fit[:, keep].mean(0), fit[:, keep].std(0)
    a, b = ((v[:, keep] - mean) / std for v in (fit, check))
    lam, vectors = np.linalg.eigh(a.T @ a / len(a))
    lam, vectors = lam[::-1], vectors[:, ::-1]
    held = np.einsum("ij,ik,kj->j", vectors, b.T @ b / len(b), vectors)  # the other half's variance along each
    return {"top_eigenvalue": float(lam[0]), "n_worth_0.1_nats": int((lam > FACTOR_EIGENVALUE).sum()),
            "largest_other_half": float(held.max()),
            "n_worth_0.1_nats_other_half": int((held > FACTOR_EIGENVALUE).sum()),
            "n_codes": int(keep.sum()), "n_patches": int(2 * half)}


def odd_shares(model: TDVAE, data, units: list[int]) -> dict[int, float]:
    """Each unit's odd share under x -> 2m - x on held-out patches (analysis/characterise.py)."""
    if not units:
        return {}
    x = torch.as_tensor(np.array(data.heldout[:DATA_INPUTS], dtype=np.float32)).reshape(-1, 1, 40, 40)
    shares = symmetry_and_contrast(responses(model, "z2", units), stimulus_frame(model, x), x)["odd_share"]
    return {u: share for u, share in zip(units, shares) if share is not None}


def odd_record(shares: list[float]) -> dict:
    return {"max": max(shares) if shares else None, "n_at_least_0.2": sum(s >= LINEAR_ODD_SHARE for s in shares)}


def table(rows: list[dict]) -> str:
    """The ablation table (markdown), one row per arm and seed; each ELBO is compared with the scale mixture on
    the arm's own patches."""
    head = ["arm", "seed", "joint steps", "held-out ELBO", "over the scale mixture", "live z1 atoms (norm / KL > 0.1)",
            "Gabor-like (live, sample)", "start corr. (median / 5th)", "z2 > 0.1 / > 0.01 nats / half the KL",
            "odd >= 0.2 of > 0.01 (max)", "prior-mean share", "linear factors >= 0.1 nats (own half / other half, "
            "its largest variance)", "R² 1st / 5th / 50th"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        corr, odd, q = r["start_correlation_live"], r["odd_share_above_0.01"], r["r2_percentiles"]
        factors = r["linear_factors"]
        cells = [r["arm"], r["seed"], r["steps"]["joint"], f"{r['heldout_elbo']:.1f}",
                 f"{r['heldout_elbo'] - r['scale_mixture']:+.1f}",
                 f"{r['n_live_atoms']} / {r['z1_units_above_0.1']}", _number(r["gabor_share_live"], "{:.0%}"),
                 "" if corr is None else f"{corr['median']:.2f} / {corr['p5']:.2f}",
                 f"{r['z2_units_above_0.1']} / {r['z2_units_above_0.01']} / {r['z2_units_with_half_the_kl']}",
                 f"{odd['n_at_least_0.2']} ({_number(odd['max'], '{:.3f}')})",
                 _number(r["prior_mean_share_live"], "{:.3f}"),
                 f"{factors['n_worth_0.1_nats']} / {factors['n_worth_0.1_nats_other_half']} "
                 f"({factors['largest_other_half']:.2f})", f"{q['1']:.2f} / {q['5']:.2f} / {q['50']:.2f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _number(value: float | None, form: str) -> str:
    return "" if value is None else form.format(value)
