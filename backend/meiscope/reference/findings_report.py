"""FINDINGS.md from measured findings: the unit classes, the verdicts with their rules and thesis sections, the
verdicts that changed since the previous record (findings.json), and the figures."""

from __future__ import annotations

import torch

from .findings import Experiments, Finding
from .findings_stats import VERDICTS

PROTOCOL_CHANGE = (
    "The previous record judged 5 + 5 units (split by a texture eta² that is not texture sensitivity) on one seed "
    "with thresholds on means, and several findings by a protocol other than the thesis': pixel correlation for "
    "consistency (0 for a phase-invariant unit's two equally good phases), a high-frequency cut at 0.2 c/px that "
    "counted the units' preferred 0.35-0.40 c/px gratings as noise, z2 codes decoded through the mean of p(z1|z2), "
    "transform + distribution without the ELBO, a sigma read after 200 steps, and a Gabor fit to a near-blank "
    "one-hot image. This record follows the thesis' protocols on every clearly active unit and several seeds with "
    "bootstrap intervals, and splits compound claims into parts (F1a, F1b, ...), so a changed verdict mostly says "
    "that the measurement changed, not the model.")


def base_id(finding_id: str) -> str:
    return finding_id.rstrip("abcdefgh")


def changes_since(findings: list[Finding], previous: list[dict] | None, previous_model: str | None) -> list[str]:
    """A section naming the verdicts that differ from the previous FINDINGS.md's (findings.json), with both
    measurements side by side (a part F1a is compared with a previous whole F1); empty when there is no previous
    record or nothing changed."""
    if not previous:
        return []
    before = {f["id"]: f for f in previous}
    pairs = [(f, before.get(f.id) or before.get(base_id(f.id))) for f in findings]
    changed = [(f, b) for f, b in pairs if b is not None and b["verdict"] != f.verdict]
    if not changed:
        return []
    lines = ["", f"## Verdicts that changed from the previous record ({previous_model or 'unrecorded'})", "",
             "| # | before | now | measured before | measured now |", "|---|---|---|---|---|",
             *[f"| {f.id} | {b['verdict']} | {f.verdict} | {b['observed']} | {f.observed} |" for f, b in changed]]
    if not any("rule" in b for b in previous):
        lines += ["", PROTOCOL_CHANGE]
    return lines


def model_label(card: dict) -> str:
    t = card["training"]
    return f"released {card.get('released', '?')}, {t.get('total_steps', t['steps']):,} steps"


def class_lines(experiments: Experiments) -> list[str]:
    if experiments.traits is None:
        return ["Unit classes: not measured; the findings that contrast the thesis' texture-sensitive units with the "
                "others are not testable."]
    counts = experiments.class_counts()
    lines = ["## The units", "",
             f"All {len(experiments.units)} clearly active z2 units (mean KL above 0.1 nats on held-out data), "
             "characterised like cells (`analysis/characterise.py`): " + ", ".join(f"{n} {c}" for c, n in counts.items())
             + ". The thesis' texture-sensitive units (noise STA, a nonlinear readout) are read as the even ones "
             "(contrast, phase-invariant), its other units (edge STA) as the linear ones (odd share of the response "
             "at least the characterisation's threshold).", "",
             "| unit | class | preferred SF (c/px) | orientation (deg) | F1/F0 | odd share |", "|---|---|---|---|---|---|"]
    def num(v, digits: int) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    for t in experiments.traits:
        lines.append(f"| {t['unit']} | {t['unit_class']} | {num(t['preferred_sf_cycles_per_pixel'], 3)} | "
                     f"{num(t['preferred_orientation_deg'], 0)} | {num(t['phase_modulation'], 2)} | {num(t['odd_share'], 4)} |")
    return lines


def render_findings(findings: list[Finding], experiments: Experiments, seconds: float,
                    previous: list[dict] | None = None, previous_model: str | None = None) -> str:
    counts = {v: sum(f.verdict == v for f in findings) for v in VERDICTS}
    interim = " (interim)" if experiments.card["training"].get("interim_note") else ""
    lines = ["# The thesis' findings, measured on our model", "",
             "Written by `meiscope reproduce`; every number is measured, nothing is copied from the thesis. Each "
             f"condition is one batched run over all {len(experiments.units)} clearly active z2 units x "
             f"{experiments.seeds} seeds (independent samples). Steps: pixel and distribution AM "
             f"{experiments.base['steps']}, transform AM {experiments.short}, transform + distribution AM "
             f"{experiments.quick} (the thesis: the transform methods converge faster), F8 {experiments.base['steps'] * 10}"
             + (" (written with `--steps` below the default 200, which gives F8 the thesis' 2,000 steps and every "
                "other run twice as many)" if experiments.base["steps"] < 200 else "") + ". "
             "Activations are relative to each unit's 99.9th percentile on held-out data. A number in the form "
             "`m [lo, hi]` is a mean over units with its bootstrap 95% interval (units resampled with all their seeds, "
             "10,000 resamples). The verdict rule: a claimed effect **agrees** when the whole interval lies on the "
             "claimed side of the reference named in its rule, and **disagrees** otherwise; **not testable on this "
             "model** names the measured reason. Consistency and likeness are measured by the correlation of "
             "amplitude spectra (what two phases of one grating share), with pixel correlation beside it. A "
             f"disagreement is a result about this{interim} model ({model_label(experiments.card)}), not a failure.",
             "", ", ".join(f"{n} {v}" for v, n in counts.items()) + f". Run time {seconds / 60:.1f} min "
             f"({experiments.model.device}, {torch.get_num_threads()} threads; per experiment: "
             + ", ".join(f"{k} {v / 60:.1f}" for k, v in getattr(experiments, "timings", {}).items()) + " min).", ""]
    lines += class_lines(experiments)
    lines += ["", "## Findings", "", "| # | thesis | claim | verdict | what we measured | rule |", "|---|---|---|---|---|---|"]
    lines += [f"| {f.id} | {f.section} | {f.claim} | {f.verdict} | {f.observed} | {f.rule} |" for f in findings]
    lines += changes_since(findings, previous, previous_model)
    lines += ["", "## Figures", ""]
    seen = set()
    for f in findings:
        if f.figure and f.figure not in seen:
            seen.add(f.figure)
            lines += [f"![{f.figure}]({f.figure})", ""]
    return "\n".join(lines) + "\n"
