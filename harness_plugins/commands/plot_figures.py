"""The figures of ``introspect plot`` (and ``introspect matrix``): by layer, metric bars.

Every figure says whose numbers it shows (explainer, subject, mode, n: `caption`),
puts metrics of different units on different axes (rates 0-1 on one, each other
measure on its own), and labels its error band or bars as ± 1 standard error.
matplotlib is imported lazily and only through the Agg canvas (no pyplot).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.commands.plot_data import Point, _method_rank, _metric_name, method_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120
BAR_FILE = "metrics_by_task.png"
# Measures that are not rates in [0, 1] whatever their values (a unit of their own).
_NOT_RATE = re.compile(r"surprisal|perplexity|loss|entropy|nll|bits|kl|mse|error|count|len")


def caption(result: Mapping[str, Any], task: str) -> str:
    """``explainer E · subject S · mode M · n=N`` for one task of one results file."""
    config = result.get("config") or {}
    record = (((result.get("configs") or {}).get(task) or {}).get("metadata") or {}).get(
        "introspect"
    ) or {}
    explainer = record.get("explainer") or config.get("model_name") or config.get("model_args")
    parts = []
    if explainer:
        parts.append(f"explainer {_short(str(explainer))}")
    if record.get("subject"):
        parts.append(f"subject {_short(str(record['subject']))}")
    if record.get("mode"):
        parts.append(f"mode {record['mode']}")
    n = ((result.get("n-samples") or {}).get(task) or {}).get("effective")
    if n is not None:
        parts.append(f"n={n}")
    return " · ".join(parts)


def _short(text: str) -> str:
    return text if len(text) <= 48 else "…" + text[-47:]


def is_rate(name: str, value: float) -> bool:
    """Whether a metric reads as a rate or score in [0, 1] (shares the 0-1 axis)."""
    return 0.0 <= value <= 1.0 and not _NOT_RATE.search(_metric_name(name))


def unit_groups(metrics: Mapping[str, Point]) -> list[tuple[str, dict[str, Point]]]:
    """(axis label, metrics) per unit: the rates together, every other measure alone."""
    rates = {k: v for k, v in metrics.items() if is_rate(k, v[0])}
    groups: list[tuple[str, dict[str, Point]]] = [("rate (0-1)", rates)] if rates else []
    groups += [(k, {k: v}) for k, v in metrics.items() if k not in rates]
    return groups


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (headless, no pyplot global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from harness_plugins.commands.plots import plot_error

        raise plot_error(
            "matplotlib is not installed; `pip install matplotlib` to use introspect plot"
        ) from None
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _safe_name(text: str) -> str:
    """A file-name-safe version of a task or measure name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"


def layer_file_name(task: str, measure: str) -> str:
    """``<task>__<measure>_by_layer.png`` (names sanitised for the file system)."""
    return f"{_safe_name(task)}__{_safe_name(measure)}_by_layer.png"


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
    paired = any(_method_rank(prefix) > 0 for prefix in series)
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
            lower = hib.get(_metric_name(name)) is False
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


def save_figure(figure: Figure, path: Path) -> Path:
    """Save ``figure`` as PNG to ``path`` via a temp file and :func:`os.replace`.

    The temp file lives in the same folder (so the rename is atomic) and is
    created with the umask's permissions, unlike :func:`tempfile.mkstemp`'s 0600.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
