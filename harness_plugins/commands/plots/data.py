"""Which numbers ``introspect plot`` draws: per-layer series, scalar metrics, methods."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from harness_plugins.metric_names import display_name, is_breakdown, parse_layer_metric
from harness_plugins.results import MetricValue, TaskResult

# Baseline methods are named by a prefix on the measure they compute; the bare
# measure is the method under test (Patchscope).  Order = legend order.
_BASELINES: tuple[tuple[str, str], ...] = (("logit_lens_", "logit lens"), ("probe_", "probe"))
_METHOD_LABEL = "Patchscope"

# A value and its standard error (None when lm-eval wrote "N/A" or nothing).
Point = tuple[float, float | None]


def finite(value: float | None) -> float | None:
    """``value`` unless it is missing or infinite (a plot never draws "N/A" as 0)."""
    return value if value is not None and math.isfinite(value) else None


def as_task(task: TaskResult | Mapping[str, Any]) -> TaskResult:
    """A task's results as `TaskResult` (lm-eval's raw entry dict accepted too)."""
    return task if isinstance(task, TaskResult) else TaskResult(name="", entries=task)


def _points(task: TaskResult | Mapping[str, Any]) -> Iterable[tuple[MetricValue, Point]]:
    for metric in as_task(task).metrics:
        value = finite(metric.value)
        if value is not None:
            yield metric, (value, finite(metric.stderr))


def left_out(tasks: Mapping[str, TaskResult | Mapping[str, Any]]) -> list[str]:
    """``task/metric (what lm-eval wrote)`` of every metric no plot draws: no finite value."""
    return [
        f"{name}/{metric.display} ({metric.raw!r})"
        for name, task in tasks.items()
        for metric in as_task(task).metrics
        if finite(metric.value) is None
    ]


def layer_metrics(task: TaskResult | Mapping[str, Any]) -> dict[str, dict[int, Point]]:
    """Per-layer metrics of one task: ``{prefix: {layer: (value, stderr)}}``.

    ``p_at_1_layer05,none = 0.4`` becomes ``{"p_at_1": {5: (0.4, stderr)}}``;
    a non-default filter stays on the prefix (``"p_at_1,strict"``).  Layers
    whose value is not numeric are left out so a plot never shows "N/A" as 0.
    """
    series: dict[str, dict[int, Point]] = {}
    for metric, point in _points(task):
        layer = parse_layer_metric(metric.name)
        if layer is not None:
            prefix = display_name(layer.measure, metric.filter)
            series.setdefault(prefix, {})[layer.layer] = point
    return {prefix: dict(sorted(points.items())) for prefix, points in series.items()}


def scalar_metrics(task: TaskResult | Mapping[str, Any]) -> dict[str, Point]:
    """Metrics of one task that break nothing down by layer, pair or cell:
    ``{name: (value, stderr)}``; ``alias``, stderr entries and "N/A" left out."""
    return {m.display: point for m, point in _points(task) if not is_breakdown(m.name)}


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


def method_rank(prefix: str) -> int:
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
        measure: sorted(members, key=lambda p: (method_rank(p), p))
        for measure, members in sorted(groups.items())
    }


def metric_name(prefix_or_name: str) -> str:
    """The metric of a prefix or display name, without its lm-eval filter."""
    return _split_filter(prefix_or_name)[0]
