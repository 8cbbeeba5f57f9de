"""The thesis' findings measured on our model: each experiment is a batched run over the
five most and the five least texture-sensitive active z2 units, a few numbers, a figure and a verdict. A
disagreement is a result: the verdict says what we saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import AMConfig, Run, run
from ..engine.options import merge
from ..engine.presets import plain
from ..model.tdvae import TDVAE
from ..presentation.plotting import FIGURE_LOCK, image_grid, plt
from ..analysis.census import ACTIVE_KL
from ..analysis.gabor import fit_gabor
from ..analysis.onehot import one_hot_synthesis
from ..analysis.probes import shift_map
from ..analysis.report import correlation
from ..analysis.sta import spike_triggered_average, unit_response

# the thesis' starting point, with every regulariser off (PLAIN): each experiment adds what it studies, and the
# findings do not move when the default configuration does
BASE = plain({"steps": 200, "elbo_every": 10, "snapshot_every": 200})


@dataclass
class Finding:
    id: str
    claim: str
    verdict: str  # "agrees", "disagrees" or "mixed"
    observed: str
    numbers: dict = field(default_factory=dict)
    figure: str | None = None


def pick_units(card: dict, k: int = 5) -> tuple[list[int], list[int], str]:
    """(the k most, the k least texture-sensitive active units, which units they were picked from) by the
    card's eta²; by mean KL without it.
    Among the clearly active units (mean KL above 0.1 nats) when there are 2k of them: a unit that carries
    a hundredth of a nat barely depends on its input, and its preferred input says little."""
    census = card["metrics"]["units"]["census"]
    active = [r for r in census if r["status"] == "active"]
    clear = [r for r in active if r["mean_kl"] > ACTIVE_KL]
    pool = "the clearly active ones (mean KL above 0.1 nats)" if len(clear) >= 2 * k else "the active ones"
    active = clear if len(clear) >= 2 * k else active
    key = "texture_eta2" if "texture_eta2" in active[0] else "mean_kl"
    ranked = sorted(active, key=lambda r: -r[key])
    return [r["unit"] for r in ranked[:k]], [r["unit"] for r in ranked[-k:]], pool


def hf_fraction(images: np.ndarray, cutoff: float = 8.0) -> np.ndarray:
    """Share of each image's power above `cutoff` cycles per patch."""
    power = np.abs(np.fft.fft2(images)) ** 2
    f = np.fft.fftfreq(images.shape[-1]) * images.shape[-1]
    high = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) > cutoff
    return power[..., high].sum((-1)) / power.reshape(*power.shape[:-2], -1).sum(-1)


def shifted_activation(model: TDVAE, images: np.ndarray, units: list[int], radius: int = 3) -> np.ndarray:
    """Per image: its unit's mean activation over all circular shifts up to `radius` px."""
    return np.array([shift_map(unit_response(model, [u]), img, radius).mean() for img, u in zip(images, units)])


def last_elbo(r: Run) -> np.ndarray:
    e = r.metrics["elbo"]
    return e[np.isfinite(e).all(1)][-1]


class Experiments:
    def __init__(self, model: TDVAE, card: dict, folder: Path, steps: int = 200) -> None:
        self.model, self.card, self.folder = model, card, Path(folder)
        self.texture, self.plain, self.pool = pick_units(card)
        self.units = self.texture + self.plain
        census = {r["unit"]: r for r in card["metrics"]["units"]["census"]}
        self.p999 = np.array([census[u]["act_p999"] for u in self.units])
        self.data_elbo = card["metrics"]["heldout"]["elbo"]
        self.base = {**BASE, "steps": steps}
        (self.folder / "figures").mkdir(parents=True, exist_ok=True)

    def go(self, **overrides) -> Run:
        return run(self.model, AMConfig.model_validate(merge({**self.base, "unit": self.units}, overrides)))

    def ratio(self, r: Run) -> np.ndarray:
        """Final activation over the unit's 99.9th percentile on held-out data."""
        return r.final_activation / self.p999

    def figure(self, name: str, rows: list[tuple[str, np.ndarray]]) -> str:
        """A grid: one row per condition, one column per unit (texture units first)."""
        with FIGURE_LOCK:
            fig, axes = plt.subplots(len(rows), len(self.units), figsize=(1.2 * len(self.units), 1.3 * len(rows) + 0.4),
                                     squeeze=False)
            for i, (label, images) in enumerate(rows):
                image_grid(axes[i], list(images), [f"u{u}" if i == 0 else "" for u in self.units])
                axes[i, 0].text(-8, 20, label, ha="right", va="center", fontsize=7)
            fig.suptitle(f"{name}: columns are units {self.units[:5]} (most texture-sensitive) then {self.units[5:]}",
                         fontsize=7)
            fig.tight_layout(rect=(0.12, 0, 1, 0.95))
            path = f"figures/{name}.png"
            fig.savefig(self.folder / path, dpi=90)
            plt.close(fig)
        return path

    # ---- the findings ------------------------------------------------------------------------------
    def f1_f2(self) -> list[Finding]:
        plain = self.go()
        variants = {"jitter 2": {"pre": {"jitter": 2}}, "gamma 1": {"grad": {"gamma": 1.0}},
                    "blur 0.5": {"post": {"blur_sigma": 0.5}}, "TV 0.05": {"obj": {"tv": 0.05}},
                    "ELBO 0.01": {"obj": {"elbo_weight": 0.01}}}
        runs = {"none": plain, **{k: self.go(**v) for k, v in variants.items()}}
        table = {k: {"activation_over_p999": float(self.ratio(r).mean()), "hf_fraction": float(hf_fraction(r.images).mean()),
                     "shifted_activation_over_p999": float((shifted_activation(self.model, r.images, self.units)
                                                            / self.p999).mean())}
                 for k, r in runs.items()}
        fig = self.figure("F1_F2_single_regularisers", [(k, r.images) for k, r in runs.items()])
        f1_ok = table["none"]["activation_over_p999"] > 2 and table["none"]["hf_fraction"] > max(
            table[k]["hf_fraction"] for k in variants)
        # useful = the cleanest image (least high-frequency power) among regularisers whose input still drives its
        # unit past the data's 99.9th percentile wherever it is placed (mean over ±3 px shifts)
        keeping = [k for k in variants if table[k]["shifted_activation_over_p999"] > 1] or list(variants)
        best = min(keeping, key=lambda k: table[k]["hf_fraction"])
        return [
            Finding("F1", "Unregularised pixel AM raises activation but gives high-frequency noise.",
                    "agrees" if f1_ok else "mixed",
                    f"unregularised: activation {table['none']['activation_over_p999']:.1f}x the data's 99.9th percentile, "
                    f"high-frequency power share {table['none']['hf_fraction']:.2f} (more than every regularised condition: {f1_ok})",
                    table, fig),
            Finding("F2", "Jitter before the step is the single most useful regulariser for pixel AM.",
                    "agrees" if best == "jitter 2" else "mixed",
                    "high-frequency share / activation averaged over ±3 px shifts (x the 99.9th percentile): "
                    + ", ".join(f"{k} {v['hf_fraction']:.2f} / {v['shifted_activation_over_p999']:.1f}x" for k, v in table.items())
                    + f"; cleanest while still above the data's range when shifted: {best}", table, fig),
        ]

    def f3(self) -> Finding:
        plain = self.ratio(self.go(pre={"jitter": 2}))
        table = {}
        for name, post in {"blur 1": {"blur_sigma": 1.0}, "bilateral 1": {"bilateral_sigma": 1.0},
                           "TV 0.2": {"tv_denoise": 0.2}}.items():
            denoised = self.ratio(self.go(pre={"jitter": 2}, post=post))
            table[name] = {"kept_texture_units": float(denoised[:5].mean() / plain[:5].mean()),
                           "kept_other_units": float(denoised[5:].mean() / plain[5:].mean())}
        worse = sum(v["kept_texture_units"] < v["kept_other_units"] for v in table.values())
        return Finding("F3", "Post-step denoisers blur results and often stall texture-sensitive units.",
                       "agrees" if worse == 3 else "mixed" if worse else "disagrees",
                       "share of activation kept by each denoiser (texture units / others): "
                       + ", ".join(f"{k} {v['kept_texture_units']:.2f}/{v['kept_other_units']:.2f}" for k, v in table.items()),
                       table)

    def f4(self) -> Finding:
        gammas = [0.0, 0.5, 1.0, 2.0, 3.0]
        runs = {g: self.go(optimizer={"name": "sgd", "lr": 0.5}, grad={"gamma": g}) for g in gammas}
        table = {str(g): {"activation_over_p999": float(self.ratio(r).mean()), "hf_fraction": float(hf_fraction(r.images).mean())}
                 for g, r in runs.items()}
        cleaner = table["1.0"]["hf_fraction"] < table["0.0"]["hf_fraction"]
        lower = table["3.0"]["activation_over_p999"] < table["1.0"]["activation_over_p999"]
        fig = self.figure("F4_gradient_filter", [(f"gamma {g}", r.images) for g, r in runs.items()])
        return Finding("F4", "A moderate gamma gives cleaner images; a large gamma erases the pattern and lowers activation.",
                       "agrees" if cleaner and lower else "mixed" if cleaner or lower else "disagrees",
                       "SGD lr 0.5: " + ", ".join(f"gamma {g}: activation {v['activation_over_p999']:.1f}x, HF share "
                                                  f"{v['hf_fraction']:.2f}" for g, v in table.items()), table, fig)

    def f5(self) -> Finding:
        table = {}
        for w in [0.0, 0.001, 0.01, 0.1]:
            lo, hi = (self.go(pre={"jitter": 2}, obj={"elbo_weight": w}, optimizer={"lr": lr}) for lr in (0.005, 0.02))
            table[str(w)] = {"activation_over_p999": float(self.ratio(hi).mean()), "contrast": float(hi.images.std()),
                             "elbo": float(last_elbo(hi).mean()),
                             "lr_sensitivity": float(np.abs(np.log(np.maximum(hi.final_activation, 1e-3)
                                                                   / np.maximum(lo.final_activation, 1e-3))).mean())}
        ws = list(table)
        falls = table[ws[-1]]["activation_over_p999"] < table[ws[0]]["activation_over_p999"] and \
            table[ws[-1]]["contrast"] < table[ws[0]]["contrast"]
        steadier = table[ws[-1]]["lr_sensitivity"] < table[ws[0]]["lr_sensitivity"]
        return Finding("F5", "Raising the ELBO weight lowers contrast and activation but makes runs less sensitive to lr.",
                       "agrees" if falls and steadier else "mixed" if falls or steadier else "disagrees",
                       "; ".join(f"ELBO weight {w}: activation {v['activation_over_p999']:.1f}x, contrast {v['contrast']:.2f}, "
                                 f"ELBO {v['elbo']:.0f}, |log act(lr 0.02)/act(lr 0.005)| {v['lr_sensitivity']:.2f}"
                                 for w, v in table.items()), table)

    def f6(self) -> Finding:
        table = {}
        for name, opt in {"rmsprop": {"name": "rmsprop", "lr": 0.01}, "adam": {"name": "adam", "lr": 0.01},
                          "sgd": {"name": "sgd", "lr": 0.5}, "mei": {"name": "mei", "lr": 0.01}}.items():
            r = self.go(pre={"jitter": 2}, optimizer=opt)
            act = r.metrics["activation"]
            reach = (act >= 0.9 * act[-1]).argmax(0)  # first step at 90% of the final activation
            table[name] = {"activation_over_p999": float(self.ratio(r).mean()), "steps_to_90pct": float(reach.mean()),
                           "texture_units_over_p999": float(self.ratio(r)[:5].mean())}
        fastest = min(table, key=lambda k: table[k]["steps_to_90pct"])
        parts = [fastest == "rmsprop",
                 table["adam"]["texture_units_over_p999"] < 1 <= table["rmsprop"]["texture_units_over_p999"],
                 table["sgd"]["activation_over_p999"] == min(v["activation_over_p999"] for v in table.values()),
                 table["mei"]["steps_to_90pct"] > table["rmsprop"]["steps_to_90pct"]]
        return Finding("F6", "RMSprop converges fastest for pixel AM; Adam fails on texture units; SGD rarely converges; "
                       "MEI is stable but slower.", "agrees" if all(parts) else "mixed" if any(parts) else "disagrees",
                       "; ".join(f"{k}: {v['activation_over_p999']:.1f}x after {self.base['steps']} steps (texture units {v['texture_units_over_p999']:.1f}x), "
                                 f"90% reached at step {v['steps_to_90pct']:.0f}" for k, v in table.items())
                       + f"; fastest: {fastest}; parts that hold (rmsprop fastest, adam fails on texture units, "
                       f"sgd lowest, mei slower): {parts}", table)

    def f7(self) -> Finding:
        def spread(r: Run) -> float:  # mean correlation between the 3 samples of a unit
            x = r.images.reshape(len(self.units), 3, -1)
            return float(np.mean([np.corrcoef(s)[np.triu_indices(3, 1)].mean() for s in x]))

        alone = self.go(pre={"jitter": 2}, samples=3)
        pushed = self.go(pre={"jitter": 2}, samples=3, diversity={"metric": "correlation", "weight": 1.0})
        hf = (float(hf_fraction(alone.images).mean()), float(hf_fraction(pushed.images).mean()))
        contrast = float(pushed.images.std() / alone.images.std())
        numbers = {"sample_correlation": [spread(alone), spread(pushed)], "hf_fraction": list(hf),
                   "contrast_ratio": contrast, "activation_kept": float((pushed.final_activation / alone.final_activation).mean())}
        noisier = hf[1] > hf[0] + 0.02 or abs(contrast - 1) > 0.2
        fig = self.figure("F7_diversity", [("no diversity", alone.images[::3]), ("diversity 1.0", pushed.images[::3])])
        return Finding("F7", "Diversity terms add noise or contrast changes more than new structure.",
                       "agrees" if noisier else "disagrees",
                       f"correlation between samples {numbers['sample_correlation'][0]:.2f} -> {numbers['sample_correlation'][1]:.2f}; "
                       f"high-frequency share {hf[0]:.2f} -> {hf[1]:.2f}; contrast x{contrast:.2f}; "
                       f"activation kept {numbers['activation_kept']:.2f}", numbers, fig)

    def f8_f9(self) -> list[Finding]:
        learned = self.go(method="distribution", distribution={"learn_sigma": True, "sigma": 0.1}, optimizer={"lr": 0.01})
        sigma = float(learned.arrays["sigma"].mean())
        fixed = self.go(method="distribution", pre={"jitter": 2}, distribution={"sigma": 0.1})
        r2 = np.array([fit_gabor(img).r2 for img in fixed.images])
        fig = self.figure("F8_F9_distribution", [("learned sigma", learned.images), ("fixed sigma", fixed.images)])
        return [
            Finding("F8", "In distribution AM a learned sigma collapses towards 0.", "agrees" if sigma < 0.05 else "disagrees",
                    f"mean sigma after {self.base['steps']} steps {sigma:.4f} (started at 0.1)", {"final_sigma": sigma}, fig),
            Finding("F9", "Fixed-sigma distribution AM gives clean edges for non-texture units but poor textures.",
                    "agrees" if r2[5:].mean() > r2[:5].mean() else "disagrees",
                    f"Gabor-fit R² of the mean: other units {r2[5:].mean():.2f}, texture units {r2[:5].mean():.2f}",
                    {"gabor_r2_texture": float(r2[:5].mean()), "gabor_r2_other": float(r2[5:].mean())}, fig),
        ]

    def f10_f11(self) -> list[Finding]:
        bare = self.go(method="transform")
        guided = self.go(method="transform", obj={"elbo_weight": 0.01})
        e_bare, e_guided = float(last_elbo(bare).mean()), float(last_elbo(guided).mean())
        consistency = {}
        for name, opt in {"mei": {"name": "mei", "lr": 0.01}, "rmsprop": {"name": "rmsprop", "lr": 0.01},
                          "adam": {"name": "adam", "lr": 0.01}}.items():
            r = self.go(method="transform_distribution", samples=2, optimizer=opt)
            pairs = r.images.reshape(len(self.units), 2, -1)
            consistency[name] = float(np.mean([correlation(a, b) for a, b in pairs]))
        fig = self.figure("F10_transform", [("no ELBO", bare.images), ("ELBO 0.01", guided.images)])
        return [
            Finding("F10", "Transform AM converges fast; without the ELBO term it finds out-of-distribution inputs.",
                    "agrees" if e_bare < self.data_elbo - 1000 and float(self.ratio(bare).mean()) > 5 else "mixed",
                    f"without the ELBO: activation {self.ratio(bare).mean():.0f}x the data's 99.9th percentile, ELBO {e_bare:.3g} "
                    f"(held-out data {self.data_elbo:.0f}); with ELBO weight 0.01: {self.ratio(guided).mean():.1f}x, ELBO {e_guided:.3g}",
                    {"elbo_without": e_bare, "elbo_with": e_guided}, fig),
            Finding("F11", "Transform + distribution AM with fixed sigma is the most consistent; MEI suits it best.",
                    "agrees" if max(consistency, key=consistency.get) == "mei" else "mixed",
                    "correlation between two seeds: " + ", ".join(f"{k} {v:.2f}" for k, v in consistency.items()),
                    consistency),
        ]

    def f12_f13(self) -> list[Finding]:
        peaks, kernels_vs, inputs_vs = {}, [], []
        runs = {}
        for k in (5, 9, 13):
            r = runs[k] = self.go(method="transform", transform={"kernel_size": k}, obj={"elbo_weight": 0.01})
            amp = np.abs(np.fft.fft2(r.images))
            f = np.sqrt(np.fft.fftfreq(40)[:, None] ** 2 + np.fft.fftfreq(40)[None, :] ** 2)
            amp[:, 0, 0] = 0
            peaks[k] = float(np.mean([f.ravel()[a.argmax()] for a in amp]))
            if k == 9:
                kamp = np.abs(np.fft.fft2(r.arrays["kernels"][:, 0], s=(40, 40)))
                iamp = np.abs(np.fft.fft2(r.arrays["inputs"]))
                kernels_vs = [correlation(a, b) for a, b in zip(amp, kamp)]
                inputs_vs = [correlation(a, b) for a, b in zip(amp, iamp)]
        falls = peaks[5] > peaks[9] > peaks[13]
        fig = self.figure("F12_kernel_size", [(f"kernel {k}", r.images) for k, r in runs.items()])
        return [
            Finding("F12", "The kernel size of the learned convolution sets the spatial frequency of the pattern.",
                    "agrees" if falls else "mixed",
                    "mean peak spatial frequency of the input: " + ", ".join(f"kernel {k}: {v:.3f} c/px" for k, v in peaks.items()),
                    {str(k): v for k, v in peaks.items()}, fig),
            Finding("F13", "The learned kernel carries the pattern (amplitude spectrum); the input carries its placement.",
                    "agrees" if np.mean(kernels_vs) > np.mean(inputs_vs) else "disagrees",
                    f"correlation of the result's amplitude spectrum with the kernel's {np.mean(kernels_vs):.2f}, "
                    f"with the input's {np.mean(inputs_vs):.2f}",
                    {"kernel": float(np.mean(kernels_vs)), "input": float(np.mean(inputs_vs))}),
        ]

    def f14_f15(self) -> list[Finding]:
        sta = spike_triggered_average(unit_response(self.model, self.units), len(self.units), n_stimuli=20_000)
        sta_r2 = np.array([fit_gabor(s).r2 for s in sta])
        views = [one_hot_synthesis(self.model, u, scale=5.0, samples=1) for u in self.units]
        mean_r2 = np.array([fit_gabor(v["mean"] - v["baseline"]).r2 for v in views])
        fig = self.figure("F14_F15_sta_one_hot", [("STA", sta), ("one-hot mean", np.array([v["mean"] - v["baseline"] for v in views])),
                                                  ("one-hot sample", np.array([v["samples"][0] for v in views]))])
        return [
            Finding("F14", "STA shows oriented edges for non-texture units and noise for texture-sensitive units.",
                    "agrees" if sta_r2[5:].mean() > sta_r2[:5].mean() and sta_r2[5:].mean() > 0.3 else "disagrees",
                    f"Gabor-fit R² of the STA (20,000 stimuli): other units {sta_r2[5:].mean():.2f}, texture units {sta_r2[:5].mean():.2f}",
                    {"sta_r2_texture": float(sta_r2[:5].mean()), "sta_r2_other": float(sta_r2[5:].mean())}, fig),
            Finding("F15", "One-hot synthesis with the prior mean shows edges for non-texture units.",
                    "agrees" if mean_r2[5:].mean() > 0.3 else "disagrees",
                    f"Gabor-fit R² of the prior-mean synthesis: other units {mean_r2[5:].mean():.2f}, texture units {mean_r2[:5].mean():.2f}",
                    {"one_hot_r2_texture": float(mean_r2[:5].mean()), "one_hot_r2_other": float(mean_r2[5:].mean())}, fig),
        ]

    def f16(self) -> Finding:
        table = {init: float(self.ratio(self.go(method="latent_z2", latent={"init": init})).mean())
                 for init in ("one_hot", "prior_mean", "prior_sample")}
        pixel = self.go(pre={"jitter": 2})
        z1 = self.go(method="latent_z1", pre={"jitter": 2})
        similar = float(np.mean([correlation(a, b) for a, b in zip(pixel.images, z1.images)]))
        only_one_hot = table["one_hot"] > 1 > max(table["prior_mean"], table["prior_sample"])
        parts = [only_one_hot, similar > 0.5]
        return Finding("F16", "Latent AM in z2 works only with a scaled one-hot start; latent AM in z1 approaches pixel AM.",
                       "agrees" if all(parts) else "mixed" if any(parts) else "disagrees",
                       "latent z2 activation over the 99.9th percentile by start: " + ", ".join(f"{k} {v:.2f}x" for k, v in table.items())
                       + f"; correlation of latent-z1 and pixel results {similar:.2f}", {**table, "z1_vs_pixel": similar})

    def all(self, progress=None) -> list[Finding]:
        steps = [self.f1_f2, self.f3, self.f4, self.f5, self.f6, self.f7, self.f8_f9, self.f10_f11, self.f12_f13, self.f14_f15, self.f16]
        out: list[Finding] = []
        for step in steps:
            result = step()
            out += result if isinstance(result, list) else [result]
            if progress is not None:
                progress(step.__name__)
        return sorted(out, key=lambda f: int(f.id[1:]))
