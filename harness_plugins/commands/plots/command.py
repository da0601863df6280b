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
* Figures are drawn and written atomically by `harness_plugins.commands.plots.canvas`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness_plugins.commands.plots.canvas import plot_error
from harness_plugins.commands.plots.data import (
    Point,
    group_measures,
    layer_metrics,
    left_out,
    metric_name,
    scalar_metrics,
)
from harness_plugins.commands.plots.figures import caption, plot_bars, plot_layers
from harness_plugins.commands.plots.injection import plot_injection
from harness_plugins.commands.plots.pairs import plot_pair_heatmaps
from harness_plugins.metric_names import parse_layer_metric
from harness_plugins.results import RunResults, TaskResult
from harness_plugins.results import find_results_file as _find_results_file

# --------------------------------------------------------------------------- #
# Loading results
# --------------------------------------------------------------------------- #


def find_results_file(path: str | Path) -> Path:
    """The results file for ``path``: itself, or the newest one under it."""
    return _find_results_file(path, plot_error)


def load_results(paths: str | Path | Iterable[str | Path]) -> dict[str, Any]:
    """Load and combine lm-eval results files (or output directories).

    Returns lm-eval's own shape plus what the figures need::

        {"results": {task: {...}}, "tasks": {task: TaskResult},
         "higher_is_better": {task: {...}}, "versions": {...},
         "files": [Path, ...], "sources": {task: Path}, "captions": {task: str}}

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
        "tasks": {},
        "higher_is_better": {},
        "versions": {},
        "files": files,
        "sources": {},
        "captions": {},
    }
    for file in files:
        run = RunResults.load(file, plot_error)
        for name, task in run.tasks.items():
            combined["results"][name] = dict(task.entries)
            combined["tasks"][name] = task
            combined["sources"][name] = file
            combined["captions"][name] = caption(run, name)
        combined["higher_is_better"].update(run.higher_is_better)
        versions = run.data.get("versions")
        if isinstance(versions, dict):
            combined["versions"].update({str(k): v for k, v in versions.items()})
    return combined


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
        layer = parse_layer_metric(str(metric))
        if layer is not None:
            flags.setdefault(layer.measure, []).append(flag)
    return flags


LayerPlot = tuple[str, str, dict[str, dict[int, Point]], bool, str]


def _plan(combined: Mapping[str, Any]) -> tuple[list[LayerPlot], dict[str, dict[str, Point]]]:
    """Decide every figure before writing any: (layer plots, bar data)."""
    layer_plots: list[LayerPlot] = []
    bars: dict[str, dict[str, Point]] = {}
    tasks: Mapping[str, TaskResult] = combined["tasks"]
    for task, task_results in tasks.items():
        directions = _layer_directions(task_results.higher_is_better)
        per_layer = layer_metrics(task_results)
        for measure, prefixes in group_measures(per_layer).items():
            series = {p: per_layer[p] for p in prefixes}
            flags = [f for p in prefixes for f in directions.get(metric_name(p), [])]
            lower = bool(flags) and all(f is False for f in flags)
            layer_plots.append((task, measure, series, lower, combined["captions"].get(task, "")))
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
        for task, measure, series, lower, note in layer_plots:
            path = plot_layers(task, measure, series, out_dir, lower_is_better=lower, caption=note)
            written.append(path)
            print(f"wrote {path}")
        for path in plot_pair_heatmaps(combined["tasks"], out_dir):
            written.append(path)
            print(f"wrote {path}")
        if bars:
            path = plot_bars(
                bars, out_dir, combined.get("higher_is_better"), combined.get("captions")
            )
            written.append(path)
            print(f"wrote {path}")
        for path in plot_injection(combined["tasks"], out_dir):
            written.append(path)
            print(f"wrote {path}")
    except OSError as exc:
        raise plot_error(f"cannot write plots to {out_dir}: {exc.strerror or exc}") from None
    skipped = left_out(combined["tasks"])
    if skipped:
        shown = ", ".join(skipped[:8]) + (
            f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
        )
        print(f"introspect plot: left out {len(skipped)} metrics with no finite value: {shown}")
    layer_tasks = len({task for task, *_ in layer_plots})
    print(
        f"introspect plot: {len(written)} plots in {out_dir} "
        f"({len(layer_plots)} by-layer figures for {layer_tasks} tasks, "
        f"{'1 bar chart' if bars else 'no bar chart'} for {len(bars)} tasks) "
        f"from {len(files)} results file{'s' if len(files) != 1 else ''}"
    )
    return 0
