"""``introspect gate``: pass/fail a model release on lm-eval results (for CI).

Usage (wired up as a subcommand by the ``introspect`` CLI)::

    introspect gate RESULTS.json --min TASK/METRIC=VALUE ... [--max TASK/METRIC=VALUE ...]
        [--baseline OLD.json --max-drop 0.02 [--alpha 0.05] [--allow-different]]

Exit status: 0 every check passed; 1 a check failed; 2 bad input (missing file,
unknown task or metric, malformed threshold, runs that cannot be compared).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness_plugins.commands.gate import comparability
from harness_plugins.commands.gate.checks import (
    Check,
    evaluate_baseline,
    evaluate_thresholds,
    format_table,
    summary_line,
)
from harness_plugins.commands.gate.results import (
    GateInputError,
    gate_error,
    load_results,
    parse_max_drop,
    parse_thresholds,
    resolve_metric,
)
from harness_plugins.results import RunResults


def parse_alpha(value: str | float | None) -> float | None:
    """Parse ``--alpha``: a significance level strictly between 0 and 1, or None."""
    if value is None:
        return None
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        raise gate_error(f"--alpha: expected a level such as 0.05, got {value!r}") from None
    if not math.isfinite(alpha) or not 0 < alpha < 1:
        raise gate_error(f"--alpha: expected a level between 0 and 1 such as 0.05, got {value!r}")
    return alpha


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
    parser.add_argument(
        "--alpha",
        dest="alpha",
        default=None,
        metavar="A",
        help="fail only on a drop significantly larger than --max-drop at level A (e.g. "
        "0.05), using lm-eval's stderr or, with --log_samples files, a paired bootstrap",
    )
    parser.add_argument(
        "--allow-different",
        dest="allow_different",
        action="store_true",
        help="compare runs whose task version, references, subject, options or n differ "
        "(refused otherwise, exit 2); the differences are printed",
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
    alpha = parse_alpha(getattr(args, "alpha", None))

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
    if alpha is not None and baseline_arg is None:
        raise gate_error("--alpha tests a drop against --baseline OLD.json; give --baseline")
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
        if thresholds:
            tasks = [t.task for t in thresholds]
            for t in thresholds:
                resolve_metric(results, t.task, t.metric, t.filter)
        else:
            tasks = sorted(set(results.tasks) & set(baseline.tasks))
        differ = comparability.differences(results, baseline, tasks)
        if differ and not getattr(args, "allow_different", False):
            raise gate_error(
                "the runs cannot be compared: "
                + "; ".join(differ)
                + " (pass --allow-different to compare anyway)"
            )
        notes += [f"introspect gate: warning: runs differ: {d}" for d in differ]
        new_checks = evaluate_baseline(results, baseline, max_drop, thresholds, alpha)
        notes += [c.warning for c in new_checks if c.warning]
        checks += new_checks
    notes += calibration_notes(results, checks)
    return checks, notes


def calibration_notes(results: RunResults, checks: list[Check]) -> list[str]:
    """What the gated scores are worth: each checked metric beside the best a constant
    answer reaches, and each task whose run is degenerate (its scores are no finding)."""
    from harness_plugins.calibration import ceiling_name, task_verdict
    from harness_plugins.metric_names import split_result_key

    notes = []
    for name in dict.fromkeys(c.task for c in checks):
        task = results.tasks.get(name)
        if task is None or task.record is None:
            continue
        scores = {m.name: m.value for m in task.summary_metrics}
        for check in (c for c in checks if c.task == name):
            metric = split_result_key(check.key)[0]
            ceiling = scores.get(ceiling_name(metric))
            if ceiling is not None:
                notes.append(
                    f"introspect gate: {name}/{metric}: {scores.get(metric)} against a "
                    f"constant-answer ceiling of {ceiling:.4g}"
                )
        share, reason = task_verdict(task)
        if reason:
            notes.append(
                f"introspect gate: warning: {name} is DEGENERATE ({reason}): its scores are no finding"
            )
        elif share is not None:
            notes.append(f"introspect gate: {name}: top answer share {share:.2f}")
    return notes


def run(args: argparse.Namespace) -> int:
    """Run the gate: print the table and summary; 0 if all checks pass, 1 if one failed.

    Bad input prints one ``introspect gate: error: ...`` line to stderr, before any
    other output, and returns 2.
    """
    try:
        checks, notes = _prepare(args)
    except GateInputError as error:
        print(error.message, file=sys.stderr)
        return 2
    out = sys.stdout
    for note in notes:
        print(note, file=out)
    print(format_table(checks), file=out)
    print(summary_line(checks), file=out)
    return 0 if all(c.passed for c in checks) else 1
