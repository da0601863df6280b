"""``introspect plot``: (source layer l, target layer l*) heatmaps of Patchscope sweeps.

A Patchscope attribute run with ``target_layers`` reports ``accuracy_srcLL_tgtMM``; each
such metric family becomes ``<out>/<task>__<measure>_by_layer_pair.png``, source layer on
the y axis, target layer on the x axis, as in the paper's figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness_plugins.commands.plots.canvas import new_figure, safe_name, save_figure
from harness_plugins.commands.plots.data import as_task, finite
from harness_plugins.metric_names import parse_pair_metric
from harness_plugins.results import TaskResult


def pair_metrics(task: TaskResult | Mapping[str, Any]) -> dict[str, dict[tuple[int, int], float]]:
    """``{measure: {(source, target): value}}`` of one task's ``<measure>_srcLL_tgtMM`` metrics."""
    out: dict[str, dict[tuple[int, int], float]] = {}
    for metric in as_task(task).metrics:
        pair = parse_pair_metric(metric.name)
        value = finite(metric.value)
        if pair is not None and value is not None:
            out.setdefault(pair.measure, {})[(pair.source, pair.target)] = value
    return out


def plot_pair_heatmaps(
    results: Mapping[str, TaskResult | Mapping[str, Any]], out_dir: Path
) -> list[Path]:
    """Write one heatmap per task and measure with pair metrics; return the paths."""
    import numpy as np

    written = []
    for task, task_results in results.items():
        for measure, points in pair_metrics(task_results).items():
            sources = sorted({s for s, _ in points})
            targets = sorted({t for _, t in points})
            grid = np.full((len(sources), len(targets)), np.nan)
            for (s, t), value in points.items():
                grid[sources.index(s), targets.index(t)] = value
            figure = new_figure(1.5 + 0.35 * len(targets), 1.2 + 0.3 * len(sources))
            ax = figure.add_subplot()
            image = ax.imshow(grid, origin="lower", aspect="auto", vmin=0, vmax=1)
            ax.set_xticks(range(len(targets)), [str(t) for t in targets])
            ax.set_yticks(range(len(sources)), [str(s) for s in sources])
            ax.set_xlabel("target layer l*")
            ax.set_ylabel("source layer l")
            ax.set_title(f"{task}: {measure} by (l, l*)")
            figure.colorbar(image, ax=ax)
            name = f"{safe_name(task)}__{safe_name(measure)}_by_layer_pair.png"
            written.append(save_figure(figure, out_dir / name))
    return written
