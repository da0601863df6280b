"""``introspect plot``: PNG figures from lm-eval results files.

The numbers lm-eval writes (``results_<timestamp>.json``) are hard to read in
bulk, above all the per-layer metrics of Patchscope-style tasks
(``p_at_1_layer05``, ``logit_lens_p_at_1_layer05``, ...).  This module turns
one or more results files into:

* one line plot per task and *measure*: a method and its baselines on shared
  axes, x = layer, y = value, stderr as a shaded band
  (``<out>/<task>__<measure>_by_layer.png``);
* one bar chart of every scalar metric, one subplot per task, with error bars,
  value labels and a marker on lower-is-better metrics
  (``<out>/metrics_by_task.png``).

Usage (wired up as a subcommand by the ``introspect`` CLI)::

    introspect plot RESULTS.json [MORE.json ...] [--out DIR]

Design rules (shared with ``introspect gate``):

* Every bad input is one ``introspect plot: error: ...`` line via
  :class:`SystemExit`, raised before anything is written.
* Figures are written atomically (temp file in the same folder, then
  :func:`os.replace`), so a crash never leaves a truncated PNG that looks
  valid to a CI artifact viewer.
* matplotlib is imported lazily and only through the Agg canvas (no pyplot,
  no global backend state), so building the CLI parser stays fast and
  plotting works headless and from several threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.commands import results_files

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BAR_FILE",
    "DPI",
    "ERROR_PREFIX",
    "LAYER_METRIC",
    "Point",
    "add_arguments",
    "bars_figure",
    "find_results_file",
    "group_measures",
    "layer_figure",
    "layer_file_name",
    "layer_metrics",
    "load_results",
    "measure_of",
    "method_label",
    "plot_bars",
    "plot_error",
    "plot_layers",
    "run",
    "scalar_metrics",
]

ERROR_PREFIX = "introspect plot: error: "
DPI = 120
BAR_FILE = "metrics_by_task.png"

# A per-layer metric: "<prefix>_layer<NN>", e.g. p_at_1_layer05.
LAYER_METRIC = re.compile(r"^(.+)_layer(\d+)$")

# Baseline methods are named by a prefix on the measure they compute; the bare
# measure is the method under test (Patchscope).  Order = legend order.
_BASELINES: tuple[tuple[str, str], ...] = (("logit_lens_", "logit lens"), ("probe_", "probe"))
_METHOD_LABEL = "Patchscope"

# A value and its standard error (None when lm-eval wrote "N/A" or nothing).
Point = tuple[float, float | None]


def plot_error(message: str) -> SystemExit:
    """Build the single-line error every bad input is reported with.

    Returned (not raised) so callers write ``raise plot_error(...)`` and type
    checkers see the control flow; uncaught, it prints to stderr, exit status 1.
    """
    return SystemExit(ERROR_PREFIX + " ".join(message.split()))


# --------------------------------------------------------------------------- #
# Loading results
# --------------------------------------------------------------------------- #


def find_results_file(path: str | Path) -> Path:
    """The results file for ``path``: itself, or the newest one under it."""
    return results_files.find_results_file(path, plot_error)


def _read_results_file(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise plot_error(f"cannot read results file {file}: {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise plot_error(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "pass the results_*.json written by lm_eval --output_path"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise plot_error(
            f'{file} has no "results" dict; pass the results_*.json written by '
            "lm_eval --output_path (not a samples_*.jsonl or another file)"
        )
    return data


def load_results(paths: str | Path | Iterable[str | Path]) -> dict[str, Any]:
    """Load and combine lm-eval results files (or output directories).

    Returns a dict in lm-eval's own shape so the rest of the module (and
    callers) need no new vocabulary::

        {"results": {task: {...}}, "higher_is_better": {task: {...}},
         "versions": {...}, "files": [Path, ...], "sources": {task: Path}}

    ``groups`` entries are plotted like tasks.  Later files win when two files
    hold the same task, so ``load_results([old, new])`` shows the newer run.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [find_results_file(p) for p in paths]
    if not files:
        raise plot_error("no RESULTS given; pass a results_*.json or an lm_eval --output_path")
    combined: dict[str, Any] = {
        "results": {},
        "higher_is_better": {},
        "versions": {},
        "files": files,
        "sources": {},
    }
    for file in files:
        data = _read_results_file(file)
        sections = [data.get("groups"), data["results"]]
        for section in sections:
            if not isinstance(section, dict):
                continue
            for task, metrics in section.items():
                if isinstance(metrics, dict):
                    combined["results"][str(task)] = metrics
                    combined["sources"][str(task)] = file
        for key in ("higher_is_better", "versions"):
            value = data.get(key)
            if isinstance(value, dict):
                combined[key].update({str(k): v for k, v in value.items()})
    return combined


# --------------------------------------------------------------------------- #
# Picking metrics
# --------------------------------------------------------------------------- #


def _as_number(value: Any) -> float | None:
    """A metric value as float, or None for "N/A", NaN, infinities, bools."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _metric_entries(task_results: Mapping[str, Any]) -> Iterable[tuple[str, str, Any, Any]]:
    """(metric, filter, value, stderr) for each ``metric,filter`` key.

    Only keys with a comma are metrics: lm-eval also stores ``alias``,
    ``name`` and ``sample_len`` in a task entry.
    """
    for key, value in task_results.items():
        if not isinstance(key, str) or "," not in key:
            continue
        metric, _, filt = key.partition(",")
        if metric.endswith("_stderr"):
            continue
        yield metric, filt, value, task_results.get(f"{metric}_stderr,{filt}")


def _display_name(metric: str, filt: str) -> str:
    """``metric`` for lm-eval's default filter, ``metric,filter`` otherwise."""
    return metric if filt in ("", "none") else f"{metric},{filt}"


def layer_metrics(task_results: Mapping[str, Any]) -> dict[str, dict[int, Point]]:
    """Per-layer metrics of one task: ``{prefix: {layer: (value, stderr)}}``.

    ``p_at_1_layer05,none = 0.4`` becomes ``{"p_at_1": {5: (0.4, stderr)}}``;
    a non-default filter stays on the prefix (``"p_at_1,strict"``).  Layers
    whose value is not numeric are left out so a plot never shows "N/A" as 0.
    """
    series: dict[str, dict[int, Point]] = {}
    for metric, filt, raw, raw_stderr in _metric_entries(task_results):
        match = LAYER_METRIC.match(metric)
        value = _as_number(raw)
        if match is None or value is None:
            continue
        prefix = _display_name(match.group(1), filt)
        series.setdefault(prefix, {})[int(match.group(2))] = (value, _as_number(raw_stderr))
    return {prefix: dict(sorted(points.items())) for prefix, points in series.items()}


def scalar_metrics(task_results: Mapping[str, Any]) -> dict[str, Point]:
    """Metrics of one task without a ``_layerNN`` suffix: ``{name: (value, stderr)}``.

    Skips ``alias``, stderr entries and non-numeric values ("N/A").
    """
    out: dict[str, Point] = {}
    for metric, filt, raw, raw_stderr in _metric_entries(task_results):
        value = _as_number(raw)
        if LAYER_METRIC.match(metric) or value is None:
            continue
        out[_display_name(metric, filt)] = (value, _as_number(raw_stderr))
    return out


def _split_filter(prefix: str) -> tuple[str, str]:
    name, comma, filt = prefix.partition(",")
    return name, (comma + filt)


def measure_of(prefix: str) -> str:
    """The measure a layer-metric prefix computes, without its method prefix.

    ``logit_lens_p_at_1`` and ``p_at_1`` both measure ``p_at_1``, so they
    share one axes and the baseline can be compared with the method.
    """
    name, filt = _split_filter(prefix)
    for start, _ in _BASELINES:
        if name.startswith(start) and len(name) > len(start):
            return name[len(start) :] + filt
    return name + filt


def method_label(prefix: str, *, paired: bool = True) -> str:
    """Legend label of a prefix: "Patchscope", "logit lens", "probe", or the prefix.

    The bare prefix is the method under test (Patchscope) only when it is
    ``paired`` with a baseline on the same axes; alone, it is just the metric,
    so label it by its own name rather than claim a method.  A non-default
    lm-eval filter stays in the label (``"logit lens (strict)"``).
    """
    name, filt = _split_filter(prefix)
    label = _METHOD_LABEL if paired else name
    for start, baseline in _BASELINES:
        if name.startswith(start) and len(name) > len(start):
            label = baseline
            break
    return f"{label} ({filt[1:]})" if filt else label


def _method_rank(prefix: str) -> int:
    name, _ = _split_filter(prefix)
    for rank, (start, _) in enumerate(_BASELINES, start=1):
        if name.startswith(start) and len(name) > len(start):
            return rank
    return 0


def group_measures(prefixes: Iterable[str]) -> dict[str, list[str]]:
    """Group layer-metric prefixes by measure: ``{measure: [prefix, ...]}``.

    Within a measure the method comes first and the baselines follow in a
    fixed order, so line colours mean the same thing in every figure.
    Measures are sorted by name for a stable file list.
    """
    groups: dict[str, list[str]] = {}
    for prefix in prefixes:
        groups.setdefault(measure_of(prefix), []).append(prefix)
    return {
        measure: sorted(members, key=lambda p: (_method_rank(p), p))
        for measure, members in sorted(groups.items())
    }


def _metric_name(prefix_or_name: str) -> str:
    return _split_filter(prefix_or_name)[0]


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas (headless, no pyplot global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
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
) -> Figure:
    """One measure of one task by layer: a line per method, stderr as a band.

    Kept separate from :func:`plot_layers` so tests (and notebooks) can check
    the plotted data without reading pixels back.
    """
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(7.0, 4.2)
    ax = figure.add_subplot()
    paired = any(_method_rank(prefix) > 0 for prefix in series)
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
                label="_nolegend_",
            )
    note = " (lower is better)" if lower_is_better else ""
    ax.set_title(f"{task}: {measure} by layer{note}")
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
) -> Figure:
    """Scalar metrics as bars, one subplot per task, in a grid.

    Error bars show stderr where lm-eval computed one; each bar carries its
    value; lower-is-better metrics get a "↓" on their tick label and a note,
    so a short bar is not misread as a bad score.
    """
    higher_is_better = higher_is_better or {}
    names = list(tasks)
    ncols = min(3, max(1, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    widest = max((len(m) for m in tasks.values()), default=1)
    width = ncols * max(4.0, 0.8 * widest + 1.5)
    figure = new_figure(width, 3.8 * nrows + 0.4)
    any_lower = False
    for index, task in enumerate(names):
        ax = figure.add_subplot(nrows, ncols, index + 1)
        metrics = tasks[task]
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
        ax.set_title(task, fontsize="medium")
        ax.set_ylabel("value")
        ax.margins(y=0.15)
        if min(values) >= 0:
            # Scores are non-negative: start at 0 even if a stderr band dips below.
            ax.set_ylim(bottom=0, top=ax.get_ylim()[1] if max(values) > 0 else 1)
        else:
            ax.axhline(0, color="black", linewidth=0.6)
        ax.grid(True, axis="y", alpha=0.3)
    title = "Scalar metrics by task (error bars: stderr)"
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
) -> Path:
    """Write ``<out_dir>/<task>__<measure>_by_layer.png`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = layer_figure(task, measure, series, lower_is_better=lower_is_better)
    return save_figure(figure, out / layer_file_name(task, measure))


def plot_bars(
    tasks: Mapping[str, Mapping[str, Point]],
    out_dir: str | Path,
    higher_is_better: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``<out_dir>/metrics_by_task.png`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return save_figure(bars_figure(tasks, higher_is_better), out / BAR_FILE)


# --------------------------------------------------------------------------- #
# CLI glue
# --------------------------------------------------------------------------- #


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``introspect plot`` arguments to a (sub)parser."""
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="lm-eval results JSON, or the --output_path directory (the newest "
        "results_*.json under it is used); several are combined, later ones "
        "winning on task name clashes",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder for the PNGs (default: a 'plots' folder next to the first results file)",
    )


def _layer_directions(hib: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``higher_is_better`` flags of per-layer metrics, by prefix.

    lm-eval keys them by the full metric name (``surprisal_layer05``).
    """
    flags: dict[str, list[Any]] = {}
    for metric, flag in hib.items():
        match = LAYER_METRIC.match(str(metric))
        if match:
            flags.setdefault(match.group(1), []).append(flag)
    return flags


LayerPlot = tuple[str, str, dict[str, dict[int, Point]], bool]


def _plan(combined: Mapping[str, Any]) -> tuple[list[LayerPlot], dict[str, dict[str, Point]]]:
    """Decide every figure before writing any: (layer plots, bar data)."""
    hib_all: Mapping[str, Mapping[str, Any]] = combined.get("higher_is_better", {})
    layer_plots: list[LayerPlot] = []
    bars: dict[str, dict[str, Point]] = {}
    for task, task_results in combined["results"].items():
        hib = hib_all.get(task, {})
        hib = hib if isinstance(hib, Mapping) else {}
        directions = _layer_directions(hib)
        per_layer = layer_metrics(task_results)
        for measure, prefixes in group_measures(per_layer).items():
            series = {p: per_layer[p] for p in prefixes}
            flags = [f for p in prefixes for f in directions.get(_metric_name(p), [])]
            lower = bool(flags) and all(f is False for f in flags)
            layer_plots.append((task, measure, series, lower))
        scalars = scalar_metrics(task_results)
        if scalars:
            bars[task] = scalars
    return layer_plots, bars


def run(args: argparse.Namespace) -> int:
    """Write the figures, print ``wrote <path>`` per file and a summary; return 0.

    Bad input raises ``SystemExit("introspect plot: error: ...")`` before any
    file or folder is created.
    """
    inputs = list(getattr(args, "results", None) or [])
    if not inputs:
        raise plot_error("no RESULTS given; pass a results_*.json or an lm_eval --output_path")
    files = [find_results_file(given) for given in inputs]
    combined = load_results(files)
    layer_plots, bars = _plan(combined)
    if not layer_plots and not bars:
        names = ", ".join(str(f) for f in files)
        raise plot_error(
            f"no numeric metrics to plot in {names} (every metric is missing or 'N/A')"
        )
    out_arg = getattr(args, "out", None)
    out_dir = Path(out_arg) if out_arg else files[0].parent / "plots"
    if out_dir.exists() and not out_dir.is_dir():
        raise plot_error(f"--out {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise plot_error(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from None

    for given, file in zip(inputs, files, strict=True):
        if Path(given).is_dir():
            print(f"introspect plot: using results file {file} (newest under {given})")
    written: list[Path] = []
    try:
        for task, measure, series, lower in layer_plots:
            path = plot_layers(task, measure, series, out_dir, lower_is_better=lower)
            written.append(path)
            print(f"wrote {path}")
        if bars:
            path = plot_bars(bars, out_dir, combined.get("higher_is_better"))
            written.append(path)
            print(f"wrote {path}")
        from harness_plugins.commands.plot_injection import plot_injection

        for path in plot_injection(combined["results"], out_dir):
            written.append(path)
            print(f"wrote {path}")
    except OSError as exc:
        raise plot_error(f"cannot write plots to {out_dir}: {exc.strerror or exc}") from None
    layer_tasks = len({task for task, *_ in layer_plots})
    print(
        f"introspect plot: {len(written)} plots in {out_dir} "
        f"({len(layer_plots)} by-layer figures for {layer_tasks} tasks, "
        f"{'1 bar chart' if bars else 'no bar chart'} for {len(bars)} tasks) "
        f"from {len(files)} results file{'s' if len(files) != 1 else ''}"
    )
    return 0
