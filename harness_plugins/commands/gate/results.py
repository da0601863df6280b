"""Reading what the gate checks: results files, ``--min``/``--max`` values, metric keys.

Every bad input is one ``introspect gate: error: ...`` line (exit status 2), raised
before any table is printed, so a CI log never shows a half-evaluated gate; a metric
that is missing or ``"N/A"`` is an error, never a silent pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness_plugins.metric_names import (
    STDERR_SUFFIX,
    parse_result_key,
    result_key,
    split_result_key,
)
from harness_plugins.results import RunResults, number
from harness_plugins.results import find_results_file as _find_results_file

ERROR_PREFIX = "introspect gate: error: "
INPUT_ERROR_STATUS = 2
"""Exit status for bad input; 1 means a check failed, 0 that all passed."""

ThresholdKind = Literal["min", "max"]
CheckKind = Literal["min", "max", "drop", "rise"]


class GateInputError(SystemExit):
    """Bad gate input: the message is one line; the exit status is 2 (1 is a failed check)."""

    def __init__(self, message: str) -> None:
        super().__init__(INPUT_ERROR_STATUS)
        self.message = message

    def __str__(self) -> str:
        return self.message


def gate_error(message: str) -> GateInputError:
    """Build the single-line error every bad input is reported with (exit status 2).

    Returned (not raised) so callers write ``raise gate_error(...)`` and type
    checkers see the control flow.
    """
    return GateInputError(ERROR_PREFIX + message)


# --------------------------------------------------------------------------- #
# Data model
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Threshold:
    """One ``--min``/``--max`` bar, as typed on the command line."""

    kind: ThresholdKind
    task: str
    metric: str
    filter: str | None
    value: float
    raw: str


Results = RunResults
"""What the gate reads: `harness_plugins.results.RunResults` (groups gated like tasks)."""


# --------------------------------------------------------------------------- #
# Loading results
# --------------------------------------------------------------------------- #


def find_results_file(path: str | Path) -> Path:
    """The results file for ``path``: itself, or the newest one under it."""
    return _find_results_file(path, gate_error)


def load_results(path: str | Path) -> Results:
    """Load an lm-eval results file (or output directory) for gating.

    Fails with a gate error when the file is missing, is not JSON, or has no
    ``"results"`` dict, because gating on anything else would be meaningless.
    """
    return RunResults.load(path, gate_error)


# --------------------------------------------------------------------------- #
# Parsing command-line values
# --------------------------------------------------------------------------- #


def parse_threshold(text: str, kind: ThresholdKind) -> Threshold:
    """Parse ``TASK/METRIC=NUMBER`` or ``TASK/METRIC,FILTER=NUMBER``.

    Strict on purpose: a typo in a CI gate must fail loudly, not be skipped.
    """
    flag = f"--{kind}"
    hint = f"expected TASK/METRIC=NUMBER, got {text!r} (example: {flag} arc_easy/acc=0.5)"
    key, eq, number = text.rpartition("=")
    task, slash, metric_part = key.rpartition("/")
    metric, comma, filt = metric_part.partition(",")
    task, metric, filt = task.strip(), metric.strip(), filt.strip()
    if not eq or not slash or not task or not metric or (comma and not filt):
        if not eq and (text.endswith(".json") or "/" not in text):
            hint += (
                "; if this is the results file, put RESULTS before --min/--max "
                "or end the threshold list with --"
            )
        raise gate_error(f"{flag}: {hint}")
    try:
        value = float(number.strip())
    except ValueError:
        raise gate_error(f"{flag}: {hint}") from None
    if math.isnan(value):
        raise gate_error(f"{flag}: {hint}")
    return Threshold(
        kind=kind,
        task=task,
        metric=metric,
        filter=filt or None,
        value=value,
        raw=text,
    )


def parse_thresholds(values: list[str] | None, kind: ThresholdKind) -> list[Threshold]:
    """Parse every value given to ``--min`` or ``--max`` (in order)."""
    return [parse_threshold(v, kind) for v in values or []]


def parse_max_drop(value: str | float | None) -> float | None:
    """Parse ``--max-drop``: a finite number >= 0, or None when not given."""
    if value is None:
        return None
    try:
        drop = float(value)
    except (TypeError, ValueError):
        raise gate_error(f"--max-drop: expected a number such as 0.02, got {value!r}") from None
    if not math.isfinite(drop) or drop < 0:
        raise gate_error(f"--max-drop: expected a number >= 0 such as 0.02, got {value!r}")
    return drop


# --------------------------------------------------------------------------- #
# Looking metrics up
# --------------------------------------------------------------------------- #


def _entries(results: Results, task: str) -> Mapping[str, Any]:
    found = results.tasks.get(task)
    return found.entries if found is not None else {}


def _metric_keys(metrics: Mapping[str, Any]) -> list[str]:
    """All ``metric,filter`` keys of one task entry (alias/name/etc. skipped)."""
    return sorted(k for k in metrics if parse_result_key(k) is not None)


def _available_metrics(metrics: Mapping[str, Any]) -> str:
    metric_names = (split_result_key(k)[0] for k in _metric_keys(metrics))
    names = sorted({m for m in metric_names if not m.endswith(STDERR_SUFFIX)})
    return ", ".join(names) if names else "(none)"


def resolve_metric(results: Results, task: str, metric: str, filt: str | None = None) -> str:
    """Map ``TASK/METRIC[,FILTER]`` to the exact ``metric,filter`` key.

    lm-eval stores ``"acc,none"``; users type ``acc``.  When a metric exists
    under several filters (e.g. gsm8k's strict-match/flexible-extract) the
    user must choose, since the values can differ a lot.
    """
    where = results.path
    if task not in results.tasks:
        available = ", ".join(sorted(results.tasks)) or "(none)"
        raise gate_error(f"task {task!r} is not in {where}; available tasks: {available}")
    metrics = _entries(results, task)
    keys = [k for k in _metric_keys(metrics) if split_result_key(k)[0] == metric]
    if filt is not None:
        key = result_key(metric, filt)
        if key in metrics:
            return key
        if keys:
            filters = sorted(split_result_key(k)[1] for k in keys)
            raise gate_error(
                f"metric {metric!r} of task {task!r} in {where} has no filter "
                f"{filt!r}; available filters: {', '.join(filters)}"
            )
    elif len(keys) == 1:
        return keys[0]
    elif len(keys) > 1:
        filters = ", ".join(split_result_key(k)[1] for k in keys)
        raise gate_error(
            f"metric {metric!r} of task {task!r} has several filters ({filters}); "
            f"select one as {task}/{metric},FILTER"
        )
    raise gate_error(
        f"metric {metric!r} is not in task {task!r} of {where}; "
        f"available metrics: {_available_metrics(metrics)}"
    )


def metric_value(results: Results, task: str, key: str) -> float:
    """The numeric value of ``task``/``key``; "N/A" or missing is an error."""
    metrics = _entries(results, task)
    if key not in metrics:
        metric, filt = split_result_key(key)
        raise gate_error(
            f"metric {metric!r} (filter {filt!r}) of task {task!r} is not in "
            f"{results.path}; available metrics: {_available_metrics(metrics)}"
        )
    value = number(metrics[key])
    if value is None or not math.isfinite(value):
        raise gate_error(
            f"metric {key!r} of task {task!r} in {results.path} has no finite numeric "
            f"value ({metrics[key]!r}); the gate cannot check it"
        )
    return value


def _higher_is_better(results: Results, task: str, key: str) -> bool | None:
    found = results.tasks.get(task)
    value = found.higher_is_better.get(split_result_key(key)[0]) if found else None
    return value if isinstance(value, bool) else None
