"""The thesis' findings measured on our model, each by the protocol of the thesis section it cites: every clearly
active z2 unit, several seeds (independent samples of one batched run), a bootstrap 95% interval over units and a
verdict from it: "agrees", "disagrees" or "not testable on this model" (with the measured reason). A compound
claim is split into its parts (F1a, F1b, ...). A disagreement is a result: the verdict says what we saw.

F1-F7 (pixel AM) live in findings_pixel.py, F8-F13 in findings_latent.py, the generative views F14-F16 here."""

from __future__ import annotations

import time

import numpy as np
import torch

from ..analysis.gabor import fit_gabor
from ..analysis.onehot import one_hot_synthesis
from ..analysis.sta import spike_triggered_average, unit_response
from .findings_base import LINEAR, NONLINEAR, Base, Finding, clear_units
from .findings_latent import LatentFindings
from .findings_pixel import JITTER
from .findings_stats import (VERDICTS, beyond, bootstrap_ci, ci_text, group_difference_ci, pixel_corr,
                             same_vs_other)

__all__ = ["Base", "Experiments", "Finding", "VERDICTS", "clear_units"]
ONE_HOT_SCALE = 10.0  # the thesis' one-hot synthesis figure (30. ábra)
BLANK = 0.1  # an image whose pixel std is under a tenth of the data's is near-blank: nothing to fit


class Experiments(LatentFindings):
    def f14_f15(self) -> list[Finding]:
        sta = spike_triggered_average(unit_response(self.model, self.units), len(self.units), n_stimuli=20_000)
        sta_r2 = np.array([fit_gabor(s).r2 for s in sta])
        why = self.untestable_contrast()
        f14 = Finding("F14", "STA shows oriented edges for non-texture units and noise for texture-sensitive units.",
                      "not testable on this model" if why else beyond(group_difference_ci(
                          sta_r2[self.members(LINEAR)], sta_r2[self.members(NONLINEAR)])),
                      f"Gabor-fit R² of the STA (20,000 white-noise stimuli): {ci_text(bootstrap_ci(sta_r2))}"
                      + (f"; {self.by_class(sta_r2[:, None])}" if self.classes else "") + (f"; not testable: {why}" if why else ""),
                      "linear minus nonlinear units' STA Gabor R², groups resampled apart; agrees if the 95% CI lies "
                      "above 0", "4.1", {"sta_r2": bootstrap_ci(sta_r2)})
        views = [one_hot_synthesis(self.model, u, scale=ONE_HOT_SCALE, samples=self.seeds) for u in self.units]
        mean_img = np.array([v["mean"] - v["baseline"] for v in views])
        data_std = float(self.data.std()) if self.data is not None else 1.0
        contrast = mean_img.std((-2, -1)) / data_std
        r2 = np.array([fit_gabor(m).r2 for m in mean_img])
        blank = np.median(contrast) < BLANK
        f15a_verdict = "not testable on this model" if blank or why else beyond(bootstrap_ci(r2[self.members(LINEAR)]), 0.3)
        reason = (f"the prior-mean image is near-blank (pixel std {np.median(contrast):.3f} of the data's, median over "
                  f"units): a Gabor fit to it says nothing" if blank else why)
        f15a = Finding("F15a", "One-hot synthesis with the prior mean shows edges for non-texture units.", f15a_verdict,
                       f"z2 = {ONE_HOT_SCALE:g} e_i, image W E[z1|z2] minus that of z2 = 0: pixel std "
                       f"{ci_text(bootstrap_ci(contrast), 3)} of the data's; Gabor-fit R² {ci_text(bootstrap_ci(r2))}"
                       + (f"; not testable: {reason}" if f15a_verdict != "agrees" and reason else ""),
                       f"first the image must be real (pixel std at least {BLANK} of the data's); then the linear units' "
                       "Gabor R², agrees if its 95% CI lies above 0.3", "4.6.1",
                       {"contrast_over_data": bootstrap_ci(contrast), "gabor_r2": bootstrap_ci(r2)})
        drive = self.one_hot_drive(views)
        non = self.members(NONLINEAR) if self.classes else np.ones(len(self.units), bool)
        d_ci = bootstrap_ci(drive[non])
        f15b = Finding("F15b", "One-hot synthesis with a prior sample shows structure for texture-sensitive units.",
                       beyond(d_ci), f"activation on z1-sampled one-hot images minus on z1-sampled images of z2 = 0, "
                       f"nonlinear units: {ci_text(d_ci)}x the 99.9th pct",
                       f"structure the unit reads: {self.seeds} samples each, paired per unit; agrees if the 95% CI lies "
                       "above 0", "4.6.1", {"drive_over_p999": d_ci})
        rows = [("STA", sta), (f"one-hot mean (std {np.median(contrast):.3f})", mean_img),
                ("one-hot sample", np.array([v["samples"][0] for v in views]))]
        f14.figure = f15a.figure = f15b.figure = self.figure(
            "F14_F15_sta_one_hot", rows, f"white-noise STA (20,000 stimuli) and one-hot synthesis z2 = {ONE_HOT_SCALE:g} e_i")
        return [f14, f15a, f15b]

    @torch.no_grad()
    def one_hot_drive(self, views: list[dict]) -> np.ndarray:
        """(units, seeds): each unit's activation on its one-hot samples minus on samples of z2 = 0, over p999."""
        g = torch.Generator().manual_seed(1)
        zero = torch.zeros(self.seeds, self.model.layers["z2"].units)
        base = self.model.generate(zero, sample_z1=True, generator=g).reshape(self.seeds, -1)
        on = torch.as_tensor(np.array([v["samples"] for v in views]), dtype=torch.float32).reshape(len(self.units), self.seeds, -1)
        out = []
        for k, u in enumerate(self.units):
            read = unit_response(self.model, [u])
            out.append((read(on[k])[:, 0] - read(base)[:, 0]).numpy())
        return np.array(out) / self.p999

    def f16(self) -> list[Finding]:
        starts = {init: self.go(method="latent_z2", latent={"init": init, "z1": "sample", "one_hot_scale": 5.0})
                  for init in ("one_hot", "prior_mean", "prior_sample")}
        act = {k: self.ratio(r) for k, r in starts.items()}
        best = bootstrap_ci(act["one_hot"] - np.maximum(act["prior_mean"], act["prior_sample"]))
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():  # what the thesis looks at: x from a z1 sample of p(z1 | z2 = the code)
            sampled = self.grid(self.model.generate(torch.as_tensor(starts["one_hot"].arrays["latents"]), sample_z1=True,
                                                    generator=g)[:, 0].numpy())
        pix = self.grid(self.jittered.images)
        z1 = self.grid(self.go(method="latent_z1", **JITTER).images)
        like_z2, other_z2 = same_vs_other(sampled, pix)
        like, other = same_vs_other(z1, pix)
        like_px, other_px = same_vs_other(z1, pix, pixel_corr)
        d_ci = bootstrap_ci(like - other)
        fig = self.figure("F16_latent", [("pixel, jitter 2", pix[:, 0]), ("latent z1", z1[:, 0]),
                                         ("latent z2, one-hot start", sampled[:, 0])],
                          f"latent AM, {self.base['steps']} steps; z2 codes decoded through a z1 sample of p(z1|z2)")
        numbers = {k: bootstrap_ci(v) for k, v in act.items()} | {
            "one_hot_minus_best_other": best, "z2_spectrum_corr_with_pixel": bootstrap_ci(like_z2),
            "z2_spectrum_corr_with_other_units": bootstrap_ci(other_z2), "z1_minus_other_units": d_ci,
            "z1_pixel_corr_same": bootstrap_ci(like_px), "z1_pixel_corr_other": bootstrap_ci(other_px)}
        return [
            Finding("F16a", "Latent AM in z2 works only with a scaled one-hot start.", beyond(best),
                    "final activation (x 99.9th pct, z1 sampled) by start: " + ", ".join(
                        f"{k} {ci_text(numbers[k])}" for k in act) + f"; one-hot minus the better other {ci_text(best)}; "
                    f"the one-hot result's amplitude spectrum vs the unit's pixel result {ci_text(bootstrap_ci(like_z2))} "
                    f"(other units' {ci_text(bootstrap_ci(other_z2))})",
                    "z1 sampled from p(z1|z2) at every step (the thesis' protocol), paired per unit and seed; agrees if "
                    "the 95% CI of one-hot minus the better of prior mean and prior sample lies above 0", "4.6.2",
                    numbers, fig),
            Finding("F16b", "Latent AM in z1 approaches pixel AM.", beyond(d_ci),
                    f"amplitude-spectrum correlation of a unit's z1 result with its pixel result {ci_text(bootstrap_ci(like))}, "
                    f"with other units' {ci_text(bootstrap_ci(other))}; pixel correlation {ci_text(bootstrap_ci(like_px))} "
                    f"(other units' {ci_text(bootstrap_ci(other_px))})",
                    "same seed, both with jitter 2; agrees if the 95% CI of (same unit minus other units) lies above 0",
                    "4.6.3", numbers, fig),
        ]

    def all(self, progress=None) -> list[Finding]:
        steps = [self.f1_f2, self.f3, self.f4, self.f5, self.f6, self.f7, self.f8_f9, self.f10_f11_f13, self.f12,
                 self.f14_f15, self.f16]
        out: list[Finding] = []
        self.timings: dict[str, float] = {}
        for step in steps:
            if progress is not None:
                progress(step.__name__, done=False)
            started = time.perf_counter()
            result = step()
            self.timings[step.__name__] = round(time.perf_counter() - started, 1)
            out += result if isinstance(result, list) else [result]
            if progress is not None:
                progress(step.__name__, done=True)
        return sorted(out, key=finding_order)


def finding_order(f: Finding) -> tuple[int, str]:
    digits = "".join(c for c in f.id[1:] if c.isdigit())
    return int(digits), f.id


EXPERIMENTS = 11  # steps of Experiments.all, for a progress bar
