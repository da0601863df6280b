"""What ``introspect matrix`` writes: CSV and JSON, heatmaps with intervals, a W&B run, a table.

Kept apart from the evaluation loop (`harness_plugins.commands.matrix`) so that a script
that merges several matrix runs (examples/self_vs_cross) can draw and write the same way.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness_plugins.commands.matrix_statistics import interval_text

GAP_COLUMNS = (
    "subject",
    "explainer",
    "task",
    "metric",
    "self",
    "cross",
    "gap",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "degenerate",
)
SIGNIFICANCE = 0.05


def heatmaps(
    cells: Sequence[Any], explainers: Sequence[str], subjects: Sequence[str], out: Path
) -> list[Path]:
    """One PNG per (task, metric): explainers down, subjects across, each value with its
    95% interval, self cells and failures marked."""
    import numpy as np

    from harness_plugins.commands.plots.canvas import new_figure, save_figure

    written = []
    keys = sorted({(c.task, c.metric) for c in cells if c.metric})
    for task, metric in keys:
        grid = np.full((len(explainers), len(subjects)), np.nan)
        notes = np.full((len(explainers), len(subjects)), "", dtype=object)
        for cell in cells:
            if cell.task == task and cell.metric == metric and cell.value is not None:
                i, j = explainers.index(cell.explainer), subjects.index(cell.subject)
                grid[i, j] = cell.value
                interval = interval_text(cell.ci_low, cell.ci_high)
                notes[i, j] = (f"\n{interval}" if interval else "") + (
                    "\nself" if cell.mode == "self" else ""
                )
        finite = grid[np.isfinite(grid)]
        rate = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
        scale = {"vmin": 0.0, "vmax": 1.0} if rate else {}
        figure = new_figure(1.9 + 1.6 * len(subjects), 1.3 + 1.0 * len(explainers))
        axes = figure.add_subplot(1, 1, 1)
        image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis", **scale)
        axes.set_xticks(range(len(subjects)), subjects, rotation=30, ha="right")
        axes.set_yticks(range(len(explainers)), explainers)
        axes.set_xlabel("subject")
        axes.set_ylabel("explainer")
        axes.set_title(f"{task}: {metric}\n(95% bootstrap interval; self cells marked)")
        for i in range(len(explainers)):
            for j in range(len(subjects)):
                missing = np.isnan(grid[i, j])
                text = "n/a" if missing else f"{grid[i, j]:.2f}{notes[i, j]}"
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    color="black" if missing or image.norm(grid[i, j]) >= 0.5 else "white",
                    fontsize=8,
                )
        figure.colorbar(image, ax=axes)
        written.append(save_figure(figure, out / f"heatmap__{task}__{metric}.png"))
    return written


def log_to_wandb(
    cells: Sequence[Any], gaps: Sequence[Mapping[str, Any]], images: Sequence[Path], project: str
) -> str | None:
    """One W&B run with the whole matrix as a table, the gaps and the heatmaps."""
    try:
        import wandb
    except ImportError:
        return None
    run = wandb.init(project=project, job_type="introspect-matrix", reinit=True)
    columns = list(asdict(cells[0])) if cells else ["explainer"]
    run.log(
        {
            "matrix/cells": wandb.Table(
                columns=columns, data=[list(asdict(c).values()) for c in cells]
            ),
            "matrix/self_minus_cross": wandb.Table(
                columns=list(GAP_COLUMNS), data=[[g.get(k) for k in GAP_COLUMNS] for g in gaps]
            ),
            **{f"matrix/{image.stem}": wandb.Image(str(image)) for image in images},
        }
    )
    directory = run.dir
    run.finish()
    return directory


def write_outputs(
    cells: Sequence[Any], gaps: Sequence[Mapping[str, Any]], out: Path
) -> tuple[Path, Path]:
    """``matrix.csv`` (one row per cell, with ci_low, ci_high and n) and ``matrix.json``
    (cells and gaps), each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "matrix.csv", out / "matrix.json"
    rows = [asdict(c) for c in cells]
    staging = csv_path.with_suffix(".csv.tmp")
    with staging.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["explainer"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(staging, csv_path)
    staging = json_path.with_suffix(".json.tmp")
    staging.write_text(json.dumps({"cells": rows, "self_minus_cross": list(gaps)}, indent=2))
    os.replace(staging, json_path)
    return csv_path, json_path


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def gap_lines(gaps: Sequence[Mapping[str, Any]]) -> list[str]:
    """The printed self-minus-cross table: values, the paired 95% interval and p-value, and
    the flag of a gap between degenerate runs (no finding, whatever its p-value)."""
    lines = []
    for gap in gaps:
        interval = interval_text(gap.get("ci_low"), gap.get("ci_high")) or "[n/a]"
        flag = f"  DEGENERATE ({gap['degenerate']}): no finding" if gap.get("degenerate") else ""
        lines.append(
            f"  {gap['subject']:<28} {gap['explainer']:<28} {gap['task']}/{gap['metric']:<16} "
            f"self {gap['self']:.3f}  cross {gap['cross']:.3f}  gap {gap['gap']:+.3f} "
            f"{interval}  p {_number(gap.get('p_value'), '.3g')}  n {gap.get('n') or 'n/a'}{flag}"
        )
    return lines


def significant_gaps(gaps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Gaps that are findings: p below `SIGNIFICANCE` and neither side degenerate."""
    return [
        gap
        for gap in gaps
        if gap.get("p_value") is not None
        and gap["p_value"] < SIGNIFICANCE
        and not gap.get("degenerate")
    ]


def significance_summary(gaps: Sequence[Mapping[str, Any]]) -> str:
    """One line: how many gaps are significant findings, and how many were set aside."""
    flagged = sum(1 for gap in gaps if gap.get("degenerate"))
    found = significant_gaps(gaps)
    names = ", ".join(f"{g['subject']}:{g['task']}/{g['metric']}" for g in found) or "none"
    return (
        f"significant (p < {SIGNIFICANCE}, neither side degenerate): {len(found)} of "
        f"{len(gaps)} gaps ({names}); {flagged} set aside as degenerate"
    )
