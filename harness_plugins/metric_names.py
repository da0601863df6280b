"""The one formatter and parser of metric names: lm-eval's keys and the introspect breakdowns.

lm-eval writes every metric of a task as ``<metric>,<filter>`` and its standard error as
``<metric>_stderr,<filter>``. Introspect types break a summary metric down by layer
(``p_at_1_layer05``), by (source, target) layer pair (``accuracy_src03_tgt07``) and by
sweep cell (``hit_rate_L06_s4``, ``s0p5`` for a strength of 0.5). The writers (the
explanation types) and the readers (console, report, plot, gate, matrix) share these
functions so a name written one way is never parsed another.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_FILTER = "none"
"""The filter lm-eval names when a task declares none."""
STDERR_SUFFIX = "_stderr"

_LAYER = re.compile(r"^(.+)_layer(\d+)$")
_PAIR = re.compile(r"^(.+)_src(\d+)_tgt(\d+)$")
_CELL = re.compile(r"^(.+)_(L\d+_s\d+(?:p\d+)?(?:e[+-]\d+)?)$")
_CELL_SUFFIX = re.compile(r"^L(\d+)_s(\d+(?:p\d+)?(?:e[+-]\d+)?)$")


# ------------------------------------------------------------------ lm-eval's result keys


@dataclass(frozen=True)
class ResultKey:
    """One key of a task's entry in lm-eval's results: ``metric[_stderr],filter``."""

    metric: str
    filter: str = DEFAULT_FILTER
    stderr: bool = False

    def __str__(self) -> str:
        return result_key(self.metric, self.filter, stderr=self.stderr)


def result_key(metric: str, filt: str = DEFAULT_FILTER, *, stderr: bool = False) -> str:
    """``metric,filter`` (``metric_stderr,filter`` for its standard error)."""
    return f"{metric}{STDERR_SUFFIX if stderr else ''},{filt}"


def stderr_key(metric: str, filt: str = DEFAULT_FILTER) -> str:
    """The key of ``metric``'s standard error: ``metric_stderr,filter``."""
    return result_key(metric, filt, stderr=True)


def split_result_key(key: str) -> tuple[str, str]:
    """``"acc,none"`` -> ``("acc", "none")``; a key without a comma has filter ``""``."""
    metric, _, filt = key.partition(",")
    return metric, filt


def parse_result_key(key: object) -> ResultKey | None:
    """The metric, filter and stderr flag of a key; None for ``alias``, ``name`` and others
    that carry no comma (lm-eval stores them beside the metrics)."""
    if not isinstance(key, str) or "," not in key:
        return None
    metric, filt = split_result_key(key)
    if not metric or not filt:
        return None
    if metric.endswith(STDERR_SUFFIX) and len(metric) > len(STDERR_SUFFIX):
        return ResultKey(metric[: -len(STDERR_SUFFIX)], filt, stderr=True)
    return ResultKey(metric, filt)


def display_name(metric: str, filt: str) -> str:
    """``metric`` under lm-eval's default filter, ``metric,filter`` under any other."""
    return metric if filt in ("", DEFAULT_FILTER) else f"{metric},{filt}"


# ------------------------------------------------------------------ breakdowns


@dataclass(frozen=True)
class LayerMetric:
    """``<measure>_layerNN``: one measure at one layer."""

    measure: str
    layer: int

    def __str__(self) -> str:
        return layer_metric(self.measure, self.layer)


@dataclass(frozen=True)
class PairMetric:
    """``<measure>_srcLL_tgtMM``: one measure at one (source, target) layer pair."""

    measure: str
    source: int
    target: int

    def __str__(self) -> str:
        return pair_metric(self.measure, self.source, self.target)


@dataclass(frozen=True)
class CellMetric:
    """``<measure>_LNN_sS``: one measure at one (layer, strength) cell of a sweep."""

    measure: str
    layer: int
    strength: float

    def __str__(self) -> str:
        return cell_metric(self.measure, self.layer, self.strength)


Breakdown = LayerMetric | PairMetric | CellMetric


def _check(measure: str, *numbers: int) -> None:
    if not measure or any(n < 0 for n in numbers):
        raise ValueError(
            f"a metric name needs a measure and layers >= 0, got {measure!r} {numbers}"
        )


def layer_metric(measure: str, layer: int) -> str:
    """``p_at_1``, 5 -> ``p_at_1_layer05``."""
    _check(measure, layer)
    return f"{measure}_layer{layer:02d}"


def pair_metric(measure: str, source: int, target: int) -> str:
    """``accuracy``, 3, 7 -> ``accuracy_src03_tgt07``."""
    _check(measure, source, target)
    return f"{measure}_src{source:02d}_tgt{target:02d}"


def cell_suffix(layer: int, strength: float) -> str:
    """The name of one sweep cell: ``L06_s4`` (``L06_s0p5`` for 0.5; a dot is no name part)."""
    _check("cell", layer)
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"a sweep strength must be a finite number >= 0, got {strength!r}")
    return f"L{layer:02d}_s{strength:g}".replace(".", "p")


def parse_cell_suffix(text: str) -> tuple[int, float] | None:
    """``L06_s0p5`` -> ``(6, 0.5)``; None for anything else."""
    match = _CELL_SUFFIX.match(text)
    if match is None:
        return None
    return int(match.group(1)), float(match.group(2).replace("p", "."))


def cell_metric(measure: str, layer: int, strength: float) -> str:
    """``hit_rate``, 6, 4 -> ``hit_rate_L06_s4``."""
    _check(measure)
    return f"{measure}_{cell_suffix(layer, strength)}"


def parse_layer_metric(name: str) -> LayerMetric | None:
    match = _LAYER.match(name)
    return None if match is None else LayerMetric(match.group(1), int(match.group(2)))


def parse_pair_metric(name: str) -> PairMetric | None:
    match = _PAIR.match(name)
    if match is None:
        return None
    return PairMetric(match.group(1), int(match.group(2)), int(match.group(3)))


def parse_cell_metric(name: str) -> CellMetric | None:
    match = _CELL.match(name)
    if match is None:
        return None
    cell = parse_cell_suffix(match.group(2))
    return None if cell is None else CellMetric(match.group(1), *cell)


def parse_breakdown(name: str) -> Breakdown | None:
    """The layer, pair or cell a metric name breaks its measure down by; None for a summary."""
    return parse_pair_metric(name) or parse_cell_metric(name) or parse_layer_metric(name)


def is_breakdown(name: str) -> bool:
    """Whether ``name`` is one part of a breakdown (shown in plots, not in summary tables)."""
    return parse_breakdown(name) is not None
