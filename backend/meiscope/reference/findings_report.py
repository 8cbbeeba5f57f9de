"""FINDINGS.md from measured findings: the verdicts in a table, the verdicts that changed since the previous
record (findings.json), and the figures."""

from __future__ import annotations

from .findings import Experiments, Finding


def changes_since(findings: list[Finding], previous: list[dict] | None, previous_model: str | None) -> list[str]:
    """A section naming the verdicts that differ from the previous FINDINGS.md's (findings.json), with both
    measurements side by side; empty when there is no previous record or nothing changed."""
    if not previous:
        return []
    before = {f["id"]: f for f in previous}
    changed = [f for f in findings if f.id in before and before[f.id]["verdict"] != f.verdict]
    if not changed:
        return []
    return ["", f"## Verdicts that changed from the previous checkpoint ({previous_model or 'unrecorded'})", "",
            "| # | before | now | measured before | measured now |", "|---|---|---|---|---|",
            *[f"| {f.id} | {before[f.id]['verdict']} | {f.verdict} | {before[f.id]['observed']} | {f.observed} |"
              for f in changed]]


def model_label(card: dict) -> str:
    t = card["training"]
    return f"released {card.get('released', '?')}, {t.get('total_steps', t['steps']):,} steps"


def render_findings(findings: list[Finding], experiments: Experiments, seconds: float,
                    previous: list[dict] | None = None, previous_model: str | None = None) -> str:
    counts = {v: sum(f.verdict == v for f in findings) for v in ("agrees", "mixed", "disagrees")}
    interim = " (interim)" if experiments.card["training"].get("interim_note") else ""
    lines = ["# The thesis' findings, measured on our model", "",
             "Written by `meiscope reproduce`; every number is measured, nothing is copied from the thesis. Units: the five "
             f"most texture-sensitive z2 units {experiments.texture} and the five least {experiments.plain} "
             f"among {experiments.pool} (by the card's texture eta²). Each condition is one batched run of "
             f"{experiments.base['steps']} steps, seed 0; activations are given relative to each unit's 99.9th "
             f"percentile on held-out data. A disagreement is a result about this{interim} model "
             f"({model_label(experiments.card)}), not a failure.",
             "", f"Verdicts: {counts['agrees']} agree, {counts['mixed']} mixed, {counts['disagrees']} disagree. "
             f"Run time {seconds / 60:.1f} min.", "", "| # | claim | verdict | what we measured |", "|---|---|---|---|"]
    lines += [f"| {f.id} | {f.claim} | {f.verdict} | {f.observed} |" for f in findings]
    lines += changes_since(findings, previous, previous_model)
    missing = sorted({f"F{i}" for i in range(1, 17)} - {f.id for f in findings}, key=lambda s: int(s[1:]))
    if missing:
        lines += ["", f"Not measured yet: {', '.join(missing)}."]
    lines += ["", "## Figures", ""]
    seen = set()
    for f in findings:
        if f.figure and f.figure not in seen:
            seen.add(f.figure)
            lines += [f"![{f.figure}]({f.figure})", ""]
    return "\n".join(lines) + "\n"
