"""``introspect plot`` for injected thoughts: hit and false-alarm rates vs layer, per strength.

Reads the per-cell metrics of ``introspect_injected_thoughts`` (``hit_rate_L06_s4``; the
false-alarm rate of the control trials has no cell) from a task's results and writes
``<out>/<task>__injection_by_layer.png``: one line per strength, the false-alarm rate
dashed across, and the best (layer, strength) by hit minus false alarm marked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CELL_METRIC = re.compile(r"^hit_rate_L(\d+)_s([0-9p]+),none$")
FILE_SUFFIX = "__injection_by_layer.png"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(float(value)) else None


def hit_rates(task_results: Mapping[str, Any]) -> dict[float, dict[int, float]]:
    """strength -> layer -> hit rate, from the ``hit_rate_LNN_sS`` metrics of a task."""
    rates: dict[float, dict[int, float]] = {}
    for key, value in task_results.items():
        match = CELL_METRIC.match(str(key))
        number = _number(value)
        if match and number is not None:
            strength = float(match.group(2).replace("p", "."))
            rates.setdefault(strength, {})[int(match.group(1))] = number
    return rates


def injection_figure(task: str, task_results: Mapping[str, Any]) -> Any:
    """The figure of one task's hit rates (lines per strength) and false-alarm rate."""
    from harness_plugins.commands.plots import new_figure

    rates = hit_rates(task_results)
    figure = new_figure(6.0, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    for strength in sorted(rates):
        layers = sorted(rates[strength])
        axes.plot(
            layers, [rates[strength][x] for x in layers], marker="o", label=f"hit, s={strength:g}"
        )
    false_alarm = _number(task_results.get("false_alarm_rate,none"))
    if false_alarm is not None:
        axes.axhline(false_alarm, color="black", linestyle="--", label="false alarm (control)")
    layer = _number(task_results.get("best_layer,none"))
    strength = _number(task_results.get("best_strength,none"))
    if layer is not None and strength is not None and strength in rates:
        axes.scatter(
            [layer], [rates[strength].get(int(layer), 0.0)], s=160, facecolors="none",
            edgecolors="red", label="best hit - false alarm",
        )  # fmt: skip
    axes.set_xlabel("injection layer")
    axes.set_ylabel("rate")
    axes.set_ylim(-0.05, 1.05)
    axes.set_title(f"{task}: detection of an injected thought")
    axes.legend(fontsize="small")
    return figure


def plot_injection(results: Mapping[str, Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write one figure per task that has injected-thought cells; return their paths."""
    from harness_plugins.commands.plots import save_figure

    written = []
    for task, task_results in results.items():
        if isinstance(task_results, Mapping) and hit_rates(task_results):
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", task)
            path = Path(out_dir) / f"{name}{FILE_SUFFIX}"
            written.append(save_figure(injection_figure(task, task_results), path))
    return written
