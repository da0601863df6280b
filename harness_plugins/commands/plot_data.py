"""Which numbers ``introspect plot`` draws: per-layer series, scalar metrics, methods."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

# A per-layer metric: "<prefix>_layer<NN>", e.g. p_at_1_layer05.
LAYER_METRIC = re.compile(r"^(.+)_layer(\d+)$")
PAIR_METRIC = re.compile(r"^(.+)_src(\d+)_tgt(\d+)$")  # heatmaps: commands/plot_pairs.py

# Baseline methods are named by a prefix on the measure they compute; the bare
# measure is the method under test (Patchscope).  Order = legend order.
_BASELINES: tuple[tuple[str, str], ...] = (("logit_lens_", "logit lens"), ("probe_", "probe"))
_METHOD_LABEL = "Patchscope"

# A value and its standard error (None when lm-eval wrote "N/A" or nothing).
Point = tuple[float, float | None]


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
        if LAYER_METRIC.match(metric) or PAIR_METRIC.match(metric) or value is None:
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
