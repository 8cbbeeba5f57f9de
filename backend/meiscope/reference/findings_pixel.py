"""Findings F1-F7: pixel-space AM (thesis 4.2), each over every clearly active unit and several seeds."""

from __future__ import annotations

import numpy as np

from ..analysis.probes import shift_map
from ..analysis.sta import unit_response
from .findings_base import LINEAR, NONLINEAR, Base, Finding
from .findings_stats import (HF_CUTOFF, beyond, bootstrap_ci, ci_text, group_difference_ci, pixel_corr, power_above, same_vs_other,
                             within_unit)

JITTER = {"pre": {"jitter": 2}}
SINGLE = {"jitter 2": JITTER, "gamma 1": {"grad": {"gamma": 1.0}}, "blur 0.5": {"post": {"blur_sigma": 0.5}},
          "TV 0.05": {"obj": {"tv": 0.05}}}  # the ELBO as a regulariser is F5's (its runs cost ten times as much)


class PixelFindings(Base):
    _jittered = None

    @property
    def jittered(self):
        """The reference pixel result (jitter 2) of F2, F3, F7, F9, F10, F11, F16, run once."""
        if self._jittered is None:
            self._jittered = self.go(**JITTER)
        return self._jittered

    def hf(self, images: np.ndarray) -> np.ndarray:
        return self.grid(power_above(images))

    def shifted(self, images: np.ndarray, radius: int = 3) -> np.ndarray:
        """(units, seeds): each result's activation averaged over all circular shifts up to `radius` px, over
        its unit's 99.9th percentile: what survives when the pattern is not exactly where the unit reads it."""
        rows = [shift_map(unit_response(self.model, [u]), img, radius).mean()
                for img, u in zip(images, np.repeat(self.units, self.seeds))]
        return self.grid(np.array(rows)) / self.p999

    def f1_f2(self) -> list[Finding]:
        runs = {"none": self.go(), **{k: (self.jittered if k == "jitter 2" else self.go(**v)) for k, v in SINGLE.items()}}
        act = {k: self.ratio(r) for k, r in runs.items()}
        hf = {k: self.hf(r.images) for k, r in runs.items()}
        shifted = {k: self.shifted(r.images) for k, r in runs.items()}
        fig = self.figure("F1_F2_single_regularisers", [(k, self.first_seed(r)) for k, r in runs.items()],
                          f"pixel AM, {self.base['steps']} steps, one regulariser at a time")
        a_ci, h_ci = bootstrap_ci(act["none"]), bootstrap_ci(hf["none"])
        f1a = Finding("F1a", "Unregularised pixel AM raises activation.", beyond(a_ci, 1.0),
                      f"final activation {ci_text(a_ci, 1)}x the data's 99.9th percentile",
                      "mean over units of the final activation / the unit's 99.9th percentile on held-out data; "
                      "agrees if the 95% CI lies above 1", "4.2", {"activation_over_p999": a_ci}, fig)
        f1b = Finding("F1b", "Unregularised pixel AM gives high-frequency noise.", beyond(h_ci, self.data_hf),
                      f"power above {HF_CUTOFF} c/px: {ci_text(h_ci, 3)} of the result's power; held-out data "
                      f"{self.data_hf:.3f}", f"share of power above {HF_CUTOFF} c/px (above the units' preferred "
                      "0.35-0.40 c/px gratings); agrees if its 95% CI lies above the held-out data's share", "4.2",
                      {"hf_share": h_ci, "data_hf_share": self.data_hf}, fig)
        others = [k for k in SINGLE if k != "jitter 2"]
        best_other = max(others, key=lambda k: shifted[k].mean())
        d_ci = bootstrap_ci(shifted["jitter 2"] - shifted[best_other])
        table = {k: {"activation_over_p999": bootstrap_ci(act[k]), "hf_share": bootstrap_ci(hf[k]),
                     "shifted_activation_over_p999": bootstrap_ci(shifted[k])} for k in runs}
        f2 = Finding("F2", "Jitter before the step is the single most useful regulariser for pixel AM.", beyond(d_ci),
                     "activation averaged over ±3 px shifts (x 99.9th pct): "
                     + ", ".join(f"{k} {ci_text(v['shifted_activation_over_p999'], 2)}" for k, v in table.items())
                     + f"; jitter minus the best other ({best_other}): {ci_text(d_ci)}",
                     "a useful input drives its unit wherever it lies: the activation averaged over all circular "
                     "shifts up to ±3 px, paired per unit; agrees if the 95% CI of jitter minus the best other "
                     "single regulariser lies above 0", "4.2.1", table, fig)
        return [f1a, f1b, f2]

    def f3(self) -> list[Finding]:
        base = self.ratio(self.jittered)
        base_hf = self.hf(self.jittered.images)
        post = {"blur 1": {"blur_sigma": 1.0}, "bilateral 1": {"bilateral_sigma": 1.0}, "TV 0.2": {"tv_denoise": 0.2}}
        kept, hf_drop = {}, {}
        for name, p in post.items():
            r = self.go(**JITTER, post=p)
            kept[name] = self.ratio(r) / np.maximum(base, 1e-6)
            hf_drop[name] = self.hf(r.images) - base_hf
        worst = max(hf_drop, key=lambda k: hf_drop[k].mean())
        d_ci = bootstrap_ci(hf_drop[worst])
        table = {k: {"activation_kept": bootstrap_ci(kept[k]), "hf_share_change": bootstrap_ci(hf_drop[k])} for k in post}
        why = self.untestable_contrast()
        stall = {k: bootstrap_ci(v[self.members(NONLINEAR)]) for k, v in kept.items()} if self.classes else {}
        f3a = Finding("F3a", "Post-step denoisers (blur, bilateral, TV) blur the results.", beyond(d_ci, direction=-1),
                      "change of the power share above 0.45 c/px against jitter alone: "
                      + ", ".join(f"{k} {ci_text(v['hf_share_change'], 3)}" for k, v in table.items()),
                      "each denoiser after every step (with jitter 2) against jitter 2 alone, paired per unit; agrees "
                      "if the 95% CI of the change lies below 0 for every denoiser (the weakest shown decides)",
                      "4.2.2", table)
        text = "activation kept (denoiser / jitter alone): " + ", ".join(
            f"{k} {ci_text(v['activation_kept'])}" for k, v in table.items())
        if stall:
            text += "; on the nonlinear units: " + ", ".join(f"{k} {ci_text(v)}" for k, v in stall.items())
        f3b = Finding("F3b", "Post-step denoisers often stall texture-sensitive units (more than other units).",
                      "not testable on this model" if why else "disagrees", text + (f"; not testable: {why}" if why else ""),
                      "the kept share of nonlinear units against linear units' (the thesis' texture-sensitive vs "
                      "other units)", "4.2.2", {"kept_nonlinear": stall})
        if not why:  # linear units keep more than nonlinear ones under every denoiser
            diffs = {k: group_difference_ci(v[self.members(LINEAR)], v[self.members(NONLINEAR)]) for k, v in kept.items()}
            f3b.verdict = "agrees" if all(beyond(d) == "agrees" for d in diffs.values()) else "disagrees"
            f3b.observed += "; linear minus nonlinear: " + ", ".join(f"{k} {ci_text(d)}" for k, d in diffs.items())
            f3b.numbers["linear_minus_nonlinear"] = diffs
        return [f3a, f3b]

    def f4(self) -> list[Finding]:
        gammas = [0.0, 1.0, 3.0]
        runs = {g: self.go(optimizer={"name": "sgd", "lr": 0.5}, grad={"gamma": g}) for g in gammas}
        act = {g: self.ratio(r) for g, r in runs.items()}
        hf = {g: self.hf(r.images) for g, r in runs.items()}
        table = {str(g): {"activation_over_p999": bootstrap_ci(act[g]), "hf_share": bootstrap_ci(hf[g])} for g in gammas}
        fig = self.figure("F4_gradient_filter", [(f"gamma {g}", self.first_seed(r)) for g, r in runs.items()],
                          f"SGD lr 0.5, {self.base['steps']} steps, gradient filter 1/|f|^gamma")
        cleaner = bootstrap_ci(hf[1.0] - hf[0.0])
        lower = bootstrap_ci(act[3.0] - act[1.0])
        listing = "; ".join(f"gamma {g}: activation {ci_text(v['activation_over_p999'], 1)}x, HF share "
                            f"{ci_text(v['hf_share'], 3)}" for g, v in table.items())
        return [
            Finding("F4a", "A moderate gamma in the gradient filter gives cleaner images.", beyond(cleaner, direction=-1),
                    f"HF share, gamma 1 minus gamma 0: {ci_text(cleaner, 3)}; {listing}",
                    "power share above 0.45 c/px, gamma 1 minus gamma 0, paired per unit; agrees if the 95% CI lies "
                    "below 0", "4.2.3", table, fig),
            Finding("F4b", "A large gamma erases the pattern and lowers activation.", beyond(lower, direction=-1),
                    f"activation (x 99.9th pct), gamma 3 minus gamma 1: {ci_text(lower)}",
                    "final activation, gamma 3 minus gamma 1, paired per unit; agrees if the 95% CI lies below 0",
                    "4.2.3", {"gamma3_minus_gamma1": lower}, fig),
        ]

    def f5(self) -> list[Finding]:
        runs = {(w, lr): self.go(**JITTER, obj={"elbo_weight": w}, optimizer={"lr": lr})
                for w in (0.0, 0.01) for lr in (0.005, 0.02)}
        act = {k: self.ratio(r) for k, r in runs.items()}
        contrast = {k: self.grid(r.images.std((-2, -1))) for k, r in runs.items()}
        sens = {w: np.abs(np.log(np.maximum(act[(w, 0.02)], 1e-3) / np.maximum(act[(w, 0.005)], 1e-3)))
                for w in (0.0, 0.01)}
        d_act, d_con = bootstrap_ci(act[(0.01, 0.02)] - act[(0.0, 0.02)]), bootstrap_ci(contrast[(0.01, 0.02)] - contrast[(0.0, 0.02)])
        d_sens = bootstrap_ci(sens[0.01] - sens[0.0])
        falls = "agrees" if beyond(d_act, direction=-1) == beyond(d_con, direction=-1) == "agrees" else "disagrees"
        numbers = {"activation_change": d_act, "contrast_change": d_con, "lr_sensitivity_change": d_sens,
                   **{f"w{w}_lr{lr}": {"activation_over_p999": bootstrap_ci(act[(w, lr)]),
                                       "pixel_std": bootstrap_ci(contrast[(w, lr)])} for (w, lr) in runs}}
        return [
            Finding("F5a", "Raising the ELBO weight lowers contrast and activation.", falls,
                    f"ELBO weight 0.01 minus 0 (lr 0.02): activation {ci_text(d_act)}x the 99.9th pct, pixel std "
                    f"{ci_text(d_con)} (data 1.0)", "paired per unit, jitter 2, lr 0.02; agrees if both 95% CIs lie "
                    "below 0", "4.2.4", numbers),
            Finding("F5b", "Raising the ELBO weight makes runs less sensitive to the learning rate.",
                    beyond(d_sens, direction=-1),
                    f"|log(activation at lr 0.02 / at lr 0.005)|, ELBO weight 0.01 minus 0: {ci_text(d_sens)}",
                    "the lr sensitivity of each unit and seed, weight 0.01 minus weight 0, paired; agrees if the 95% CI "
                    "lies below 0", "4.2.4", numbers),
        ]

    def f6(self) -> list[Finding]:
        opts = {"rmsprop": {"name": "rmsprop", "lr": 0.01}, "adam": {"name": "adam", "lr": 0.01},
                "sgd": {"name": "sgd", "lr": 0.5}, "mei": {"name": "mei", "lr": 0.01}}
        runs = {k: self.go(**JITTER, optimizer=o) for k, o in opts.items()}
        early = min(50, self.base["steps"] - 1)
        final = {k: self.ratio(r) for k, r in runs.items()}
        at = {k: self.ratio(r, early) for k, r in runs.items()}
        vs = {k: bootstrap_ci(at["rmsprop"] - at[k]) for k in opts if k != "rmsprop"}
        fastest = "agrees" if all(beyond(v) == "agrees" for v in vs.values()) else "disagrees"
        sgd = bootstrap_ci(final["sgd"] - np.max([final[k] for k in opts if k != "sgd"], 0))
        numbers = {k: {"final_over_p999": bootstrap_ci(final[k]), f"step{early}_over_p999": bootstrap_ci(at[k])}
                   for k in opts}
        listing = "; ".join(f"{k}: step {early} {ci_text(v[f'step{early}_over_p999'], 1)}x, final "
                            f"{ci_text(v['final_over_p999'], 1)}x" for k, v in numbers.items())
        why = self.untestable_contrast()
        adam = bootstrap_ci(final["adam"][self.members(NONLINEAR)]) if self.classes else None
        adam_verdict = "not testable on this model" if adam is None else beyond(adam, 1.0, -1)
        rule = f"activation at step {early} (x 99.9th pct), paired per unit"
        return [
            Finding("F6a", "RMSprop converges fastest for pixel AM.", fastest,
                    f"RMSprop minus each other at step {early}: " + ", ".join(f"{k} {ci_text(v)}" for k, v in vs.items())
                    + f"; {listing}", rule + "; agrees if every 95% CI of RMSprop minus another lies above 0",
                    "4.2.5", numbers),
            Finding("F6b", "Adam fails (finds no optimum) on texture-sensitive units.", adam_verdict,
                    f"Adam's final activation on the nonlinear units: {ci_text(adam) if adam else 'unmeasured'}x the "
                    f"99.9th pct" + (f" (the contrast with other units is not testable: {why})" if why else ""),
                    "the thesis' texture-sensitive units are read as the nonlinear (contrast or phase-invariant) ones; "
                    "agrees if the 95% CI of Adam's final activation lies below the data's 99.9th percentile", "4.2.5",
                    {"adam_nonlinear": adam}),
            Finding("F6c", "SGD rarely converges (lowest activation).", beyond(sgd, direction=-1),
                    f"SGD (lr 0.5) minus the best of the others, final: {ci_text(sgd)}x",
                    "final activation, SGD minus the best other optimizer per unit; agrees if the 95% CI lies below 0",
                    "4.2.5", numbers),
            Finding("F6d", "MEI is slower than RMSprop (the thesis: stable but slower).", beyond(vs["mei"]),
                    f"RMSprop minus MEI at step {early}: {ci_text(vs['mei'])}x",
                    rule + "; agrees if the 95% CI of RMSprop minus MEI lies above 0", "4.2.5", numbers),
        ]

    def f7(self) -> Finding:
        alone = self.grid(self.jittered.images)
        pushed_run = self.go(**JITTER, diversity={"metric": "correlation", "weight": 1.0})
        pushed = self.grid(pushed_run.images)
        spec = {"alone": within_unit(alone), "pushed": within_unit(pushed)}
        pix = {"alone": within_unit(alone, pixel_corr), "pushed": within_unit(pushed, pixel_corr)}
        _, other = same_vs_other(alone, alone)
        d_ci = bootstrap_ci(spec["pushed"] - other)
        numbers = {"spectrum_corr_between_samples": {k: bootstrap_ci(v) for k, v in spec.items()},
                   "pixel_corr_between_samples": {k: bootstrap_ci(v) for k, v in pix.items()},
                   "spectrum_corr_between_units": bootstrap_ci(other),
                   "hf_share": {"alone": bootstrap_ci(self.hf(self.jittered.images)), "pushed": bootstrap_ci(self.hf(pushed_run.images))},
                   "activation_kept": bootstrap_ci(self.ratio(pushed_run) / np.maximum(self.ratio(self.jittered), 1e-6))}
        fig = self.figure("F7_diversity", [("no diversity s0", alone[:, 0]), ("no diversity s1", alone[:, 1]),
                                           ("diversity 1 s0", pushed[:, 0]), ("diversity 1 s1", pushed[:, 1])],
                          f"pixel AM with jitter 2, {self.seeds} samples per unit, correlation diversity weight 0 or 1")
        return Finding("F7", "Diversity terms add noise or contrast changes more than new structure.", beyond(d_ci),
                       f"between a unit's {self.seeds} samples, amplitude-spectrum correlation "
                       f"{ci_text(numbers['spectrum_corr_between_samples']['alone'])} -> "
                       f"{ci_text(numbers['spectrum_corr_between_samples']['pushed'])} with diversity, pixel correlation "
                       f"{ci_text(numbers['pixel_corr_between_samples']['alone'])} -> "
                       f"{ci_text(numbers['pixel_corr_between_samples']['pushed'])}; between different units "
                       f"{ci_text(numbers['spectrum_corr_between_units'])}; activation kept "
                       f"{ci_text(numbers['activation_kept'])}",
                       "no new structure: a unit's diversified samples still share their amplitude spectrum more "
                       "than different units' results do; agrees if the 95% CI of (spectrum correlation between "
                       "diversified samples minus between units) lies above 0", "4.2.6", numbers, fig)
