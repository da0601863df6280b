"""``introspect plot`` for injected thoughts: hit and false-alarm rates vs layer, per strength.

Reads the per-cell metrics of ``introspect_injected_thoughts`` (``hit_rate_L06_s4``; the
false-alarm rate of the control trials has no cell) from a task's results and writes
``<out>/<task>__injection_by_layer.png``: one line per strength, the false-alarm rate
dashed across, and the best (layer, strength) by hit minus false alarm marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness_plugins.commands.plots.canvas import new_figure, safe_name, save_figure
from harness_plugins.commands.plots.data import as_task, finite
from harness_plugins.metric_names import DEFAULT_FILTER, parse_cell_metric
from harness_plugins.results import TaskResult

FILE_SUFFIX = "__injection_by_layer.png"
MEASURE = "hit_rate"


def hit_rates(task: TaskResult | Mapping[str, Any]) -> dict[float, dict[int, float]]:
    """strength -> layer -> hit rate, from the ``hit_rate_LNN_sS`` metrics of a task."""
    rates: dict[float, dict[int, float]] = {}
    for metric in as_task(task).metrics:
        cell = parse_cell_metric(metric.name)
        value = finite(metric.value)
        if (
            cell
            and cell.measure == MEASURE
            and metric.filter == DEFAULT_FILTER
            and value is not None
        ):
            rates.setdefault(cell.strength, {})[cell.layer] = value
    return rates


def _summary(task: TaskResult, name: str) -> float | None:
    metric = task.metric(name, DEFAULT_FILTER)
    return finite(metric.value) if metric else None


def injection_figure(task_name: str, task_results: TaskResult | Mapping[str, Any]) -> Any:
    """The figure of one task's hit rates (lines per strength) and false-alarm rate."""
    task = as_task(task_results)
    rates = hit_rates(task)
    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    for strength in sorted(rates):
        layers = sorted(rates[strength])
        axes.plot(
            layers, [rates[strength][x] for x in layers], marker="o", label=f"hit, s={strength:g}"
        )
    false_alarm = _summary(task, "false_alarm_rate")
    if false_alarm is not None:
        axes.axhline(false_alarm, color="black", linestyle="--", label="false alarm (control)")
    layer, strength = _summary(task, "best_layer"), _summary(task, "best_strength")
    if layer is not None and strength is not None and strength in rates:
        axes.scatter(
            [layer], [rates[strength].get(int(layer), 0.0)], s=160, facecolors="none",
            edgecolors="red", label="best hit - false alarm",
        )  # fmt: skip
    axes.set_xlabel("injection layer")
    axes.set_ylabel("rate")
    axes.set_ylim(-0.05, 1.05)
    axes.set_title(f"{task_name}: detection of an injected thought")
    axes.legend(fontsize="small")
    return figure


def plot_injection(
    results: Mapping[str, TaskResult | Mapping[str, Any]], out_dir: str | Path
) -> list[Path]:
    """Write one figure per task that has injected-thought cells; return their paths."""
    written = []
    for task, task_results in results.items():
        if isinstance(task_results, (TaskResult, Mapping)) and hit_rates(task_results):
            path = Path(out_dir) / f"{safe_name(task)}{FILE_SUFFIX}"
            written.append(save_figure(injection_figure(task, task_results), path))
    return written
