"""Training curves: one metrics table from the CSV logs of every job of a run, and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from matchforge.io.write import save_figure


def merge_logs(logs_dir: Path, out_csv: Path) -> None:
    """One metrics table from the CSV logs of the first job and of every resumed job.

    A resumed job restarts from the last checkpoint, so rows of an earlier job at or after the
    step where the next job started are superseded and dropped.
    """
    import pandas as pd

    versions = sorted(Path(logs_dir).glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(p) for p in versions if p.stat().st_size]
    kept = []
    for i, df in enumerate(frames):
        later = [f["step"].min() for f in frames[i + 1:] if len(f)]
        kept.append(df[df["step"] < min(later)] if later else df)
    merged = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame({"step": []})
    merged.to_csv(out_csv, index=False)


def plot_curves(metrics_csv: Path, out_png: Path, panels: Sequence[tuple[Any, ...]], title: str = "",
                references: dict[str, float] | None = None) -> None:
    """One panel per ``(title, columns)`` or ``(title, columns, (ymin, ymax))`` of the merged metrics table (a
    fixed range keeps a panel of one or two points from zooming onto noise, e.g. percentages on 0-100);
    ``references``: dashed horizontal lines (e.g. the validation loss of the best constant predictor) keyed by
    column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(metrics_csv) if metrics_csv.is_file() and metrics_csv.stat().st_size else pd.DataFrame()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharex=True)
    for ax, (name, cols, *limits) in zip(axes[0], panels):
        for col in cols:
            if col in df and df[col].notna().any():
                d = df[["step", col]].dropna()
                ax.plot(d["step"], d[col], marker="." if len(d) < 50 else None, label=col)
            if references and col in references:
                ax.axhline(references[col], ls="--", c="gray", label=f"{col}: constant predictor")
        ax.set_title(name)
        ax.set_xlabel("step")
        if limits:
            ax.set_ylim(*limits[0])
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=80)
