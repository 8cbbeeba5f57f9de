"""The figure of a unit analysis (meiscope analyze): every view of the unit in one grid, with how well the
views agree in the title."""

from __future__ import annotations

from ..analysis.report import report_panels
from .plotting import FIGURE_LOCK, grid_shape, image_grid, plt


def write_report_figure(report: dict, path) -> None:
    panels = report_panels(report)
    rows, cols = grid_shape(len(panels), max_cols=6)
    with FIGURE_LOCK:
        fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows + 0.5), squeeze=False)
        image_grid(axes, [img for _, img in panels], [title for title, _ in panels])
        a = report["agreement"]
        fig.suptitle(f"unit {report['unit']}: preferred vs STA r={a['preferred_vs_sta']:.2f}, vs one-hot "
                     f"r={a['preferred_vs_one_hot']:.2f}, across seeds r={a['across_seeds_mean']:.2f}", fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
