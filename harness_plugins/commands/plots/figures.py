"""The figures of ``introspect plot`` (and ``introspect matrix``): by layer, metric bars.

Every figure says whose numbers it shows (explainer, subject, mode, n: `caption`),
puts metrics of different units on different axes (rates 0-1 on one, each other
measure on its own), and labels its error band or bars as ± 1 standard error.
matplotlib is imported lazily and only through the Agg canvas (no pyplot).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.commands.plots.canvas import new_figure, safe_name, save_figure
from harness_plugins.commands.plots.data import Point, method_label, method_rank, metric_name
from harness_plugins.results import RunResults

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BAR_FILE = "metrics_by_task.png"
# Measures that are not rates in [0, 1] whatever their values (a unit of their own).
_NOT_RATE = re.compile(r"surprisal|perplexity|loss|entropy|nll|bits|kl|mse|error|count|len")


def caption(result: RunResults | Mapping[str, Any], task: str) -> str:
    """``explainer E · subject S · mode M · n=N`` for one task of one results file."""
    run = result if isinstance(result, RunResults) else RunResults.from_dict(result)
    found = run.task(task)
    record = found.record
    explainer = (record.explainer if record else None) or run.model_name
    parts = []
    if explainer:
        parts.append(f"explainer {_short(str(explainer))}")
    if record and record.subject:
        parts.append(f"subject {_short(str(record.subject))}")
    if record and record.mode:
        parts.append(f"mode {record.mode}")
    if found.n is not None:
        parts.append(f"n={found.n}")
    return " · ".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= 48 else "…" + text[-47:]


def is_rate(name: str, value: float) -> bool:
    """Whether a metric reads as a rate or score in [0, 1] (shares the 0-1 axis)."""
    return 0.0 <= value <= 1.0 and not _NOT_RATE.search(metric_name(name))


def unit_groups(metrics: Mapping[str, Point]) -> list[tuple[str, dict[str, Point]]]:
    """(axis label, metrics) per unit: the rates together, every other measure alone."""
    rates = {k: v for k, v in metrics.items() if is_rate(k, v[0])}
    groups: list[tuple[str, dict[str, Point]]] = [("rate (0-1)", rates)] if rates else []
    groups += [(k, {k: v}) for k, v in metrics.items() if k not in rates]
    return groups


def layer_file_name(task: str, measure: str) -> str:
    """``<task>__<measure>_by_layer.png`` (names sanitised for the file system)."""
    return f"{safe_name(task)}__{safe_name(measure)}_by_layer.png"


def layer_figure(
    task: str,
    measure: str,
    series: Mapping[str, Mapping[int, Point]],
    *,
    lower_is_better: bool = False,
    caption: str = "",
) -> Figure:
    """One measure of one task by layer: a line per method, ± 1 stderr as a labelled band.

    Kept separate from :func:`plot_layers` so tests (and notebooks) can check
    the plotted data without reading pixels back.
    """
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(7.0, 4.2)
    ax = figure.add_subplot()
    paired = any(method_rank(prefix) > 0 for prefix in series)
    band_labelled = False
    for prefix, points in series.items():
        layers = sorted(points)
        values = [points[layer][0] for layer in layers]
        label = method_label(prefix, paired=paired)
        (line,) = ax.plot(layers, values, marker="o", markersize=4, label=label)
        errors = [points[layer][1] for layer in layers]
        if any(e is not None for e in errors):
            low = [
                v - e if e is not None else math.nan for v, e in zip(values, errors, strict=True)
            ]
            high = [
                v + e if e is not None else math.nan for v, e in zip(values, errors, strict=True)
            ]
            ax.fill_between(
                layers,
                low,
                high,
                where=[e is not None for e in errors],
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
                label="_nolegend_" if band_labelled else "shaded: ± 1 stderr",
            )
            band_labelled = True
    note = " (lower is better)" if lower_is_better else ""
    ax.set_title(f"{task}: {measure} by layer{note}" + (f"\n{caption}" if caption else ""))
    ax.set_xlabel("layer")
    ax.set_ylabel(measure + (" ↓" if lower_is_better else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(title="method", fontsize="small")
    figure.tight_layout()
    return figure


def bars_figure(
    tasks: Mapping[str, Mapping[str, Point]],
    higher_is_better: Mapping[str, Mapping[str, Any]] | None = None,
    captions: Mapping[str, str] | None = None,
) -> Figure:
    """Scalar metrics as bars, one subplot per task and unit, in a grid.

    Error bars show stderr where lm-eval computed one; each bar carries its
    value; lower-is-better metrics get a "↓" on their tick label and a note,
    so a short bar is not misread as a bad score.
    """
    higher_is_better = higher_is_better or {}
    captions = {task: captions[task] for task in tasks if captions and captions.get(task)}
    distinct = set(captions.values())
    shared_caption = distinct.pop() if len(distinct) == 1 and len(captions) == len(tasks) else ""
    panels = [(task, unit, group) for task in tasks for unit, group in unit_groups(tasks[task])]
    ncols = min(3, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    widest = max((len(group) for _, _, group in panels), default=1)
    width = ncols * max(4.0, 0.8 * widest + 1.5)
    figure = new_figure(width, 3.8 * nrows + 0.4)
    any_lower = False
    for index, (task, unit, metrics) in enumerate(panels):
        ax = figure.add_subplot(nrows, ncols, index + 1)
        hib = higher_is_better.get(task) or {}
        labels, values, errors, colors = [], [], [], []
        for name, (value, stderr) in metrics.items():
            lower = hib.get(metric_name(name)) is False
            any_lower |= lower
            labels.append(f"{name} ↓" if lower else name)
            values.append(value)
            # NaN draws no error bar (lm-eval's "N/A"); 0 would draw a misleading cap.
            errors.append(stderr if stderr is not None else math.nan)
            colors.append("C1" if lower else "C0")
        positions = list(range(len(values)))
        has_errors = any(not math.isnan(e) for e in errors)
        bars = ax.bar(
            positions,
            values,
            width=0.6,
            yerr=errors if has_errors else None,
            capsize=4 if has_errors else 0,
            color=colors,
        )
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], padding=2, fontsize="small")
        rotate = len(labels) > 3 or max(map(len, labels), default=0) > 14
        ax.set_xticks(
            positions, labels, rotation=30 if rotate else 0, ha="right" if rotate else "center"
        )
        # Keep bars bar-shaped when a task has only one or two metrics.
        pad = max(0.0, (3 - len(values)) / 2)
        ax.set_xlim(-0.6 - pad, len(values) - 0.4 + pad)
        note = "" if shared_caption else captions.get(task, "")
        note = "\n".join(textwrap.wrap(note, 44))
        ax.set_title(task + (f"\n{note}" if note else ""), fontsize="medium")
        ax.set_ylabel(unit)
        ax.margins(y=0.15)
        if unit == "rate (0-1)":
            ax.set_ylim(0, 1.1)
        elif min(values) >= 0:
            # Scores are non-negative: start at 0 even if a stderr band dips below.
            ax.set_ylim(bottom=0, top=ax.get_ylim()[1] if max(values) > 0 else 1)
        else:
            ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(True, axis="y", alpha=0.3)
    title = "Scalar metrics by task, one axis per unit (error bars: ± 1 stderr)"
    if shared_caption:
        title += f"\n{shared_caption}"
    if any_lower:
        title += "\n↓ (orange) = lower is better"
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_layers(
    task: str,
    measure: str,
    series: Mapping[str, Mapping[int, Point]],
    out_dir: str | Path,
    *,
    lower_is_better: bool = False,
    caption: str = "",
) -> Path:
    """Write ``<out_dir>/<task>__<measure>_by_layer.png`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = layer_figure(task, measure, series, lower_is_better=lower_is_better, caption=caption)
    return save_figure(figure, out / layer_file_name(task, measure))


def plot_bars(
    tasks: Mapping[str, Mapping[str, Point]],
    out_dir: str | Path,
    higher_is_better: Mapping[str, Mapping[str, Any]] | None = None,
    captions: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<out_dir>/metrics_by_task.png`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return save_figure(bars_figure(tasks, higher_is_better, captions), out / BAR_FILE)
