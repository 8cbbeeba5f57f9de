"""The recipe ablations' figure: each arm's held-out ELBO over the contrast-only scale mixture on its own patches, and
its z2 units above 0.1 nats, over its training steps."""

from __future__ import annotations

from pathlib import Path

from .card import read_rows
from .plotting import plt


TARGET_MARGIN = 150  # nats per patch over the scale mixture
TARGET_UNITS = 30


def write_ablation_figure(arms: list[tuple[str, list[Path], float]], path: Path) -> None:
    """arms: (label, the metrics.csv of each of its stages in turn, the scale mixture's log-likelihood on its
    held-out patches); the stages' steps are counted on from one to the next, and a grey line marks where the
    first stage ended."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    boundary = None
    for k, (label, stages, scale_mixture) in enumerate(arms):
        offset, steps, elbo, units = 0, [], [], []
        for i, csv_path in enumerate(stages):
            rows = [r for r in read_rows(csv_path) if r.get("heldout_elbo")]
            steps += [offset + int(r["step"]) for r in rows]
            elbo += [float(r["heldout_elbo"]) - scale_mixture for r in rows]
            units += [int(float(r["heldout_z2_units"])) for r in rows]
            offset = steps[-1] if steps else offset
            if i == 0 and boundary is None and steps:
                boundary = offset
        style = dict(color=f"C{k % 10}", ls="-" if k < 10 else "--", lw=1.0, marker="o", ms=2.5)
        a1.plot(steps, elbo, label=label, **style)
        a2.plot(steps, units, label=label, **style)
    ends = [float(line.get_ydata()[-1]) for line in a1.get_lines() if len(line.get_ydata())]
    a1.axhline(0, color="k", lw=0.8, ls=":", label="contrast-only scale mixture")
    a1.axhline(TARGET_MARGIN, color="k", lw=0.8, ls="--", label=f"target (+{TARGET_MARGIN})")
    if ends:  # the end of training in view: the first rows lie hundreds of nats lower
        a1.set_ylim(min(ends + [0]) - 150, max(ends + [TARGET_MARGIN]) + 40)
    for ax, ylabel in ((a1, "held-out ELBO - scale mixture (nats/patch)"), (a2, "z2 units above 0.1 nats")):
        if boundary is not None:
            ax.axvline(boundary, color="0.6", lw=0.6)
        ax.set_xlabel("training step (inference stage, then joint)")
        ax.set_ylabel(ylabel)
    a2.set_ylim(0, None)
    a2.axhline(TARGET_UNITS, color="k", lw=0.8, ls=":", label=f"target ({TARGET_UNITS})")
    a1.set_title("held-out ELBO over the scale mixture on the same 2,048 patches\n(the first rows lie below the axis)",
                 fontsize=9)
    a2.set_title("z2 units above 0.1 nats (z2 sampled)", fontsize=9)
    a1.legend(fontsize=6.5, loc="lower right")
    a2.legend(fontsize=6.5, ncol=2, loc="center right")  # the late steps, where the units have gathered
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
