"""Evaluating the gate's checks: thresholds, regressions against a baseline, the table.

With ``--alpha`` a regression fails only when it exceeds ``--max-drop`` significantly
(one-sided test on the noise of the difference, see `statistics`); without it, any
regression beyond ``--max-drop`` fails, and the table still shows the noise.
Comparisons allow a tiny float tolerance so that ``0.62 - 0.60`` is not reported as a
drop larger than ``0.02``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness_plugins.commands.gate import statistics
from harness_plugins.commands.gate.results import (
    CheckKind,
    Results,
    Threshold,
    _higher_is_better,
    gate_error,
    metric_value,
    resolve_metric,
)
from harness_plugins.metric_names import display_name, split_result_key

# Relative/absolute tolerance for float comparisons.
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


@dataclass(frozen=True)
class Check:
    """One evaluated row of the gate table.

    ``limit`` is the threshold for ``min``/``max`` checks and the baseline
    value for ``drop``/``rise`` checks (where ``max_change`` is the allowed
    regression), ``stderr`` the noise of the difference and ``p_value`` the
    chance of a regression that large beyond the margin by noise alone (with
    ``--alpha``).
    """

    kind: CheckKind
    task: str
    key: str
    value: float
    limit: float
    passed: bool
    max_change: float | None = None
    stderr: float | None = None
    p_value: float | None = None
    warning: str | None = None


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
    task: str,
    key: str,
    new: float,
    old: float,
    max_change: float,
    higher: bool,
    noise: statistics.Noise | None = None,
    alpha: float | None = None,
) -> Check:
    change = (old - new) if higher else (new - old)
    beyond = change <= max_change or _close(change, max_change)
    passed, p_value, warning = beyond, None, None
    if noise is not None:
        warning = statistics.noise_warning(task, key, noise, max_change, alpha or 0.05)
    if alpha is not None and noise is not None and not beyond:
        p_value = statistics.one_sided_p(change - max_change, noise.stderr)
        passed = p_value >= alpha
    kind: CheckKind = "drop" if higher else "rise"
    stderr = noise.stderr if noise is not None else None
    return Check(kind, task, key, new, old, passed, max_change, stderr, p_value, warning)


def _noise(
    results: Results, baseline: Results, task: str, key: str, alpha: float | None
) -> statistics.Noise | None:
    noise = statistics.difference_noise(results, baseline, task, key)
    if noise is None and alpha is not None:
        metric = split_result_key(key)[0]
        raise gate_error(
            f"--alpha: {task}/{metric} has no standard error in {results.path} or "
            f"{baseline.path} and no --log_samples files beside them; rerun lm_eval with "
            "--log_samples, or drop --alpha"
        )
    return noise


def evaluate_baseline(
    results: Results,
    baseline: Results,
    max_drop: float,
    thresholds: list[Threshold] | None = None,
    alpha: float | None = None,
) -> list[Check]:
    """Compare against an older results file and flag regressions > max_drop.

    With thresholds, only the metrics they name are compared; ``--max``
    metrics are lower-is-better (a rise fails), ``--min`` ones higher-is-better
    (a drop fails).  Without thresholds, every numeric non-stderr metric the
    two files share is compared, using lm-eval's ``higher_is_better`` (default:
    higher is better).  ``alpha``: fail only on a significant regression.
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
            noise = _noise(results, baseline, task, key, alpha)
            checks.append(_regression_check(task, key, new, old, max_drop, higher, noise, alpha))
        return checks

    for task in sorted(set(results.tasks) & set(baseline.tasks)):
        old_metrics = {m.key: m for m in baseline.tasks[task].metrics}
        for metric in sorted(results.tasks[task].metrics, key=lambda m: m.key):
            key = metric.key
            if key not in old_metrics:
                continue
            new, old = metric.value, old_metrics[key].value
            if new is None or old is None:
                continue
            hib = _higher_is_better(results, task, key)
            if hib is None:
                hib = _higher_is_better(baseline, task, key)
            higher = True if hib is None else hib
            noise = _noise(results, baseline, task, key, alpha)
            checks.append(_regression_check(task, key, new, old, max_drop, higher, noise, alpha))
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
    return f"{task}/{display_name(*split_result_key(key))}"


def _row(check: Check) -> list[str]:
    if check.kind == "min":
        value, limit = _fmt(check.value), f">= {_fmt(check.limit)}"
    elif check.kind == "max":
        value, limit = _fmt(check.value), f"<= {_fmt(check.limit)}"
    else:
        delta = check.value - check.limit
        noise = f" ± {check.stderr:.2g}" if check.stderr is not None else ""
        value = f"{_fmt(check.value)} ({delta:+.4g}{noise})"
        word = "max drop" if check.kind == "drop" else "max rise"
        limit = f"baseline {_fmt(check.limit)} ({word} {_fmt(check.max_change or 0.0)})"
        if check.p_value is not None:
            limit += f" p={check.p_value:.3g}"
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
