"""``introspect gate``: pass/fail a model release on lm-eval results.

CI jobs run ``lm_eval ... --output_path DIR`` and then need a yes/no answer:
did every metric clear its bar, and did nothing regress against the last
release?  This module answers that from the results JSON alone (stdlib only,
no model or lm-eval import needed), prints a table a human can read in the CI
log and returns an exit code the CI runner can act on.

Usage (wired up as a subcommand by the ``introspect`` CLI)::

    introspect gate RESULTS.json --min TASK/METRIC=VALUE ... \\
        [--max TASK/METRIC=VALUE ...] [--baseline OLD.json --max-drop 0.02]

Design rules:

* Every bad input (missing file, unparsable threshold, unknown task or metric,
  inconsistent flags) is reported as one ``introspect gate: error: ...`` line
  via :class:`SystemExit` *before* any table is printed, so a CI log never
  shows a half-evaluated gate.
* A metric that is missing or ``"N/A"`` is an error, never a silent pass.
* Comparisons allow a tiny float tolerance so that ``0.62 - 0.60`` is not
  reported as a drop larger than ``0.02``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness_plugins.commands import results_files

__all__ = [
    "ERROR_PREFIX",
    "Check",
    "Results",
    "Threshold",
    "add_arguments",
    "evaluate_baseline",
    "evaluate_thresholds",
    "find_results_file",
    "format_table",
    "gate_error",
    "load_results",
    "metric_value",
    "parse_max_drop",
    "parse_threshold",
    "parse_thresholds",
    "resolve_metric",
    "run",
    "summary_line",
]

ERROR_PREFIX = "introspect gate: error: "

ThresholdKind = Literal["min", "max"]
CheckKind = Literal["min", "max", "drop", "rise"]

# Relative/absolute tolerance for float comparisons (see module docstring).
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


def gate_error(message: str) -> SystemExit:
    """Build the single-line error every bad input is reported with.

    Returned (not raised) so callers write ``raise gate_error(...)`` and type
    checkers see the control flow.  ``SystemExit(str)`` prints the message to
    stderr and exits with status 1 when left uncaught.
    """
    return SystemExit(ERROR_PREFIX + message)


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


@dataclass(frozen=True)
class Results:
    """The parts of an lm-eval results file the gate needs.

    ``tasks`` merges the ``"results"`` and ``"groups"`` sections so a group
    (e.g. ``mmlu``) can be gated exactly like a task.
    """

    path: Path
    tasks: dict[str, dict[str, Any]]
    higher_is_better: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Check:
    """One evaluated row of the gate table.

    ``limit`` is the threshold for ``min``/``max`` checks and the baseline
    value for ``drop``/``rise`` checks (where ``max_change`` is the allowed
    regression).
    """

    kind: CheckKind
    task: str
    key: str
    value: float
    limit: float
    passed: bool
    max_change: float | None = None


# --------------------------------------------------------------------------- #
# Loading results
# --------------------------------------------------------------------------- #


def find_results_file(path: str | Path) -> Path:
    """The results file for ``path``: itself, or the newest one under it."""
    return results_files.find_results_file(path, gate_error)


def load_results(path: str | Path) -> Results:
    """Load an lm-eval results file (or output directory) for gating.

    Fails with a gate error when the file is missing, is not JSON, or has no
    ``"results"`` dict, because gating on anything else would be meaningless.
    """
    file = find_results_file(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise gate_error(f"cannot read results file {file}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise gate_error(
            f"{file} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); pass the results_*.json written by lm_eval --output_path"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise gate_error(
            f'{file} has no "results" dict; pass the results_*.json written by '
            "lm_eval --output_path (not a samples_*.jsonl or another file)"
        )
    tasks: dict[str, dict[str, Any]] = {}
    groups = data.get("groups")
    if isinstance(groups, dict):
        for name, metrics in groups.items():
            if isinstance(metrics, dict):
                tasks[str(name)] = metrics
    for name, metrics in data["results"].items():
        if isinstance(metrics, dict):
            tasks[str(name)] = metrics
    hib = data.get("higher_is_better")
    higher_is_better = (
        {str(k): v for k, v in hib.items() if isinstance(v, dict)} if isinstance(hib, dict) else {}
    )
    return Results(path=file, tasks=tasks, higher_is_better=higher_is_better)


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


def _metric_keys(metrics: dict[str, Any]) -> list[str]:
    """All ``metric,filter`` keys of one task entry (alias/name/etc. skipped)."""
    return sorted(k for k in metrics if isinstance(k, str) and "," in k)


def _split_key(key: str) -> tuple[str, str]:
    metric, _, filt = key.partition(",")
    return metric, filt


def _available_metrics(metrics: dict[str, Any]) -> str:
    metric_names = (_split_key(k)[0] for k in _metric_keys(metrics))
    names = sorted({m for m in metric_names if not m.endswith("_stderr")})
    return ", ".join(names) if names else "(none)"


def _as_number(value: Any) -> float | None:
    """A metric value as float, or None for lm-eval's "N/A", NaN, bools, etc."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


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
    metrics = results.tasks[task]
    if filt is not None:
        key = f"{metric},{filt}"
        if key in metrics:
            return key
        filters = sorted(
            _split_key(k)[1] for k in _metric_keys(metrics) if _split_key(k)[0] == metric
        )
        if filters:
            raise gate_error(
                f"metric {metric!r} of task {task!r} in {where} has no filter "
                f"{filt!r}; available filters: {', '.join(filters)}"
            )
    else:
        keys = [k for k in _metric_keys(metrics) if _split_key(k)[0] == metric]
        if len(keys) == 1:
            return keys[0]
        if len(keys) > 1:
            filters = ", ".join(_split_key(k)[1] for k in keys)
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
    metrics = results.tasks.get(task, {})
    if key not in metrics:
        metric, filt = _split_key(key)
        raise gate_error(
            f"metric {metric!r} (filter {filt!r}) of task {task!r} is not in "
            f"{results.path}; available metrics: {_available_metrics(metrics)}"
        )
    value = _as_number(metrics[key])
    if value is None:
        raise gate_error(
            f"metric {key!r} of task {task!r} in {results.path} has no numeric "
            f"value ({metrics[key]!r}); the gate cannot check it"
        )
    return value


def _higher_is_better(results: Results, task: str, key: str) -> bool | None:
    value = results.higher_is_better.get(task, {}).get(_split_key(key)[0])
    return value if isinstance(value, bool) else None


# --------------------------------------------------------------------------- #
# Evaluating checks
# --------------------------------------------------------------------------- #


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)


def evaluate_thresholds(results: Results, thresholds: list[Threshold]) -> list[Check]:
    """Check each ``--min`` (value >= bar) and ``--max`` (value <= bar)."""
    checks: list[Check] = []
    for t in thresholds:
        key = resolve_metric(results, t.task, t.metric, t.filter)
        value = metric_value(results, t.task, key)
        if t.kind == "min":
            passed = value >= t.value or _close(value, t.value)
        else:
            passed = value <= t.value or _close(value, t.value)
        checks.append(Check(t.kind, t.task, key, value, t.value, passed))
    return checks


def _regression_check(
    task: str, key: str, new: float, old: float, max_change: float, higher: bool
) -> Check:
    change = (old - new) if higher else (new - old)
    passed = change <= max_change or _close(change, max_change)
    kind: CheckKind = "drop" if higher else "rise"
    return Check(kind, task, key, new, old, passed, max_change)


def evaluate_baseline(
    results: Results,
    baseline: Results,
    max_drop: float,
    thresholds: list[Threshold] | None = None,
) -> list[Check]:
    """Compare against an older results file and flag regressions > max_drop.

    With thresholds, only the metrics they name are compared; ``--max``
    metrics are lower-is-better (a rise fails), ``--min`` ones higher-is-better
    (a drop fails).  Without thresholds, every numeric non-stderr metric the
    two files share is compared, using lm-eval's ``higher_is_better`` (default:
    higher is better).
    """
    checks: list[Check] = []
    if thresholds:
        direction: dict[tuple[str, str], set[str]] = {}
        for t in thresholds:
            key = resolve_metric(results, t.task, t.metric, t.filter)
            direction.setdefault((t.task, key), set()).add(t.kind)
        for (task, key), kinds in direction.items():
            new = metric_value(results, task, key)
            if task not in baseline.tasks:
                available = ", ".join(sorted(baseline.tasks)) or "(none)"
                raise gate_error(
                    f"task {task!r} is not in baseline {baseline.path}; "
                    f"available tasks: {available}"
                )
            old = metric_value(baseline, task, key)
            if kinds == {"max"}:
                higher = False
            elif kinds == {"min"}:
                higher = True
            else:
                hib = _higher_is_better(results, task, key)
                higher = True if hib is None else hib
            checks.append(_regression_check(task, key, new, old, max_drop, higher))
        return checks

    for task in sorted(set(results.tasks) & set(baseline.tasks)):
        new_metrics, old_metrics = results.tasks[task], baseline.tasks[task]
        for key in _metric_keys(new_metrics):
            if _split_key(key)[0].endswith("_stderr") or key not in old_metrics:
                continue
            new, old = _as_number(new_metrics[key]), _as_number(old_metrics[key])
            if new is None or old is None:
                continue
            hib = _higher_is_better(results, task, key)
            if hib is None:
                hib = _higher_is_better(baseline, task, key)
            higher = True if hib is None else hib
            checks.append(_regression_check(task, key, new, old, max_drop, higher))
    if not checks:
        raise gate_error(
            f"{results.path} and baseline {baseline.path} share no numeric metric; "
            "check that the baseline comes from the same tasks, or name metrics "
            "with --min/--max"
        )
    return checks


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _display_key(task: str, key: str) -> str:
    metric, filt = _split_key(key)
    return f"{task}/{metric}" if filt == "none" else f"{task}/{metric},{filt}"


def _row(check: Check) -> list[str]:
    if check.kind == "min":
        value, limit = _fmt(check.value), f">= {_fmt(check.limit)}"
    elif check.kind == "max":
        value, limit = _fmt(check.value), f"<= {_fmt(check.limit)}"
    else:
        delta = check.value - check.limit
        value = f"{_fmt(check.value)} ({delta:+.4g})"
        word = "max drop" if check.kind == "drop" else "max rise"
        limit = f"baseline {_fmt(check.limit)} ({word} {_fmt(check.max_change or 0.0)})"
    label = {"min": "min", "max": "max", "drop": "baseline", "rise": "baseline"}
    return [
        label[check.kind],
        _display_key(check.task, check.key),
        value,
        limit,
        "PASS" if check.passed else "FAIL",
    ]


def format_table(checks: list[Check]) -> str:
    """Render checks as an aligned plain-text table (readable in CI logs)."""
    header = ["CHECK", "TASK/METRIC", "VALUE", "THRESHOLD", "STATUS"]
    rows = [header] + [_row(c) for c in checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary_line(checks: list[Check]) -> str:
    """One-line verdict, e.g. ``gate: 3 checks, 1 failed``."""
    failed = sum(not c.passed for c in checks)
    noun = "check" if len(checks) == 1 else "checks"
    return f"gate: {len(checks)} {noun}, {failed} failed"


# --------------------------------------------------------------------------- #
# CLI glue
# --------------------------------------------------------------------------- #


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``introspect gate`` arguments to a (sub)parser."""
    parser.add_argument(
        "results",
        nargs="?",
        metavar="RESULTS",
        help="required: lm-eval results JSON, or the --output_path directory "
        "(the newest results_*.json under it is used); give it before --min/--max, "
        "which take several values",
    )
    parser.add_argument(
        "--min",
        dest="min",
        action="extend",
        nargs="+",
        default=None,
        metavar="TASK/METRIC=VALUE",
        help="fail unless the metric is >= VALUE; repeatable, several values "
        "allowed; use TASK/METRIC,FILTER=VALUE when a metric has several filters",
    )
    parser.add_argument(
        "--max",
        dest="max",
        action="extend",
        nargs="+",
        default=None,
        metavar="TASK/METRIC=VALUE",
        help="fail unless the metric is <= VALUE (lower is better); repeatable",
    )
    parser.add_argument(
        "--baseline",
        dest="baseline",
        default=None,
        metavar="OLD.json",
        help="older results JSON (or directory) to check for regressions; requires --max-drop",
    )
    parser.add_argument(
        "--max-drop",
        dest="max_drop",
        default=None,
        metavar="D",
        help="largest allowed regression vs --baseline (drop for higher-is-better "
        "metrics, rise for --max metrics), e.g. 0.02",
    )


def _prepare(args: argparse.Namespace) -> tuple[list[Check], list[str]]:
    """Validate everything and evaluate all checks; print nothing.

    Returns the checks and the notes to print above the table.
    """
    results_arg = getattr(args, "results", None)
    min_values = getattr(args, "min", None)
    max_values = getattr(args, "max", None)
    baseline_arg = getattr(args, "baseline", None)
    max_drop = parse_max_drop(getattr(args, "max_drop", None))

    thresholds = parse_thresholds(min_values, "min") + parse_thresholds(max_values, "max")
    if results_arg is None:
        raise gate_error(
            "no RESULTS given; pass the results JSON or output directory first, "
            "e.g. introspect gate results/ --min TASK/METRIC=VALUE"
        )
    if max_drop is not None and baseline_arg is None:
        raise gate_error("--max-drop needs --baseline OLD.json to compare against")
    if baseline_arg is not None and max_drop is None:
        raise gate_error("--baseline needs --max-drop D (e.g. --max-drop 0.02)")
    if not thresholds and baseline_arg is None:
        raise gate_error(
            "nothing to check; give --min/--max TASK/METRIC=VALUE and/or "
            "--baseline OLD.json --max-drop D"
        )

    notes: list[str] = []
    results = load_results(results_arg)
    if Path(results_arg).is_dir():
        notes.append(f"introspect gate: using results file {results.path}")
    checks = evaluate_thresholds(results, thresholds)
    if baseline_arg is not None:
        assert max_drop is not None
        baseline = load_results(baseline_arg)
        if Path(baseline_arg).is_dir():
            notes.append(f"introspect gate: using baseline file {baseline.path}")
        checks += evaluate_baseline(results, baseline, max_drop, thresholds)
    return checks, notes


def run(args: argparse.Namespace) -> int:
    """Run the gate: print the table and summary; 0 if all checks pass, else 1.

    Bad input raises ``SystemExit("introspect gate: error: ...")`` before any
    output is printed.
    """
    checks, notes = _prepare(args)
    out = sys.stdout
    for note in notes:
        print(note, file=out)
    print(format_table(checks), file=out)
    print(summary_line(checks), file=out)
    return 0 if all(c.passed for c in checks) else 1
