"""``introspect report``: a report card of an lm-eval run, every score beside its floor and ceiling.

One row per summary score of every introspect task in a results file: the score with its
standard error and n, the mode (self, cross, control), the baseline its explanation type
names (a trivial answer, chance, the logit lens, a probe), the best score a constant
answer reaches on the same documents, and with ``--controls`` the shuffled-oracle floor
(the references permuted across documents: no information about the document) and the
oracle. Below the table, in words: which scores beat their floor, and which runs are
degenerate (one answer to nearly everything, or nothing above a constant).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness_plugins.calibration import (
    ceiling_name,
    is_calibration_metric,
    task_verdict,
)
from harness_plugins.commands.common import table
from harness_plugins.errors import IntrospectError
from harness_plugins.results import RunResults, TaskResult

Z_95 = 1.96


@dataclass(frozen=True)
class Row:
    """One line of the card."""

    task: str
    mode: str
    n: int | None
    metric: str
    value: float | None
    stderr: float | None
    baseline: str
    baseline_value: float | None
    baseline_stderr: float | None
    ceiling: float | None = None
    """The best a single fixed answer scores on these documents (answer metrics only)."""
    floor: float | None = None
    floor_stderr: float | None = None
    """The shuffled oracle's score (``--controls``)."""
    oracle: float | None = None


@dataclass(frozen=True)
class TaskVerdict:
    """What a task's run is worth: its top answer share and, if so, why it is degenerate."""

    task: str
    top_answer_share: float | None
    degenerate: str | None


def _metrics(task: TaskResult) -> dict[str, tuple[float | None, float | None]]:
    """``{metric: (value, stderr)}`` of one task's summary metrics (breakdowns left out)."""
    return {m.name: (m.value, m.stderr) for m in task.summary_metrics}


def _explanation(task: TaskResult) -> Any:
    from harness_plugins.registry import get_registry

    assert task.record is not None
    return get_registry().explanation_types.get(task.record.explanation_type or "")


def report_rows(
    results: RunResults | Mapping[str, Any],
    controls: Mapping[str, Mapping[str, TaskResult | None]] | None = None,
) -> list[Row]:
    """The card's rows for every introspect task of one lm-eval run (``controls``: task ->
    control kind -> that control's result on the same documents)."""
    if not isinstance(results, RunResults):
        results = RunResults.from_dict(results)
    rows: list[Row] = []
    for task in results.introspect_tasks:
        assert task.record is not None
        explanation = _explanation(task)
        baselines = explanation.baselines if explanation is not None else {}
        metrics = _metrics(task)
        baseline_metrics = {b for b in baselines.values() if isinstance(b, str)}
        mine = (controls or {}).get(task.name, {})
        shuffled, oracle = mine.get("shuffled"), mine.get("oracle")
        for metric, (value, stderr) in metrics.items():
            if metric in baseline_metrics or is_calibration_metric(metric):
                continue
            baseline = baselines.get(metric)
            if isinstance(baseline, str):
                base_value, base_stderr = metrics.get(baseline, (None, None))
                label = baseline
            elif baseline is not None:
                base_value, base_stderr, label = float(baseline), None, "chance/none"
            else:
                base_value, base_stderr, label = None, None, ""
            floor = shuffled.metric(metric) if shuffled is not None else None
            best = oracle.metric(metric) if oracle is not None else None
            rows.append(
                Row(
                    task.name,
                    task.record.mode or "?",
                    task.n,
                    metric,
                    value,
                    stderr,
                    label,
                    base_value,
                    base_stderr,
                    ceiling=metrics.get(ceiling_name(metric), (None, None))[0],
                    floor=floor.value if floor is not None else None,
                    floor_stderr=floor.stderr if floor is not None else None,
                    oracle=best.value if best is not None else None,
                )
            )
    return rows


def task_verdicts(results: RunResults) -> list[TaskVerdict]:
    """Per introspect task: its top answer share and whether the run is degenerate."""
    return [TaskVerdict(task.name, *task_verdict(task)) for task in results.introspect_tasks]


def beats_floor(row: Row) -> bool | None:
    """Whether the score is above its shuffled-oracle floor by more than 1.96 combined
    standard errors (None without a floor)."""
    if row.value is None or row.floor is None or math.isnan(row.value) or math.isnan(row.floor):
        return None
    spread = math.sqrt((row.stderr or 0.0) ** 2 + (row.floor_stderr or 0.0) ** 2)
    return row.value - row.floor > Z_95 * spread


def _with_error(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if stderr is None else f"{value:.3f} ± {stderr:.3f}"


def format_card(rows: list[Row]) -> str:
    with_controls = any(row.floor is not None or row.oracle is not None for row in rows)
    header = ["task", "mode", "n", "metric", "score", "baseline", "baseline is", "const. ceiling"]
    if with_controls:
        header += ["shuffled floor", "oracle"]
    body = []
    for row in rows:
        line = [
            row.task,
            row.mode,
            "?" if row.n is None else row.n,
            row.metric,
            _with_error(row.value, row.stderr),
            _with_error(row.baseline_value, row.baseline_stderr),
            row.baseline,
            _with_error(row.ceiling, None) if row.ceiling is not None else "",
        ]
        if with_controls:
            # the oracle is 1.0 on every match metric by construction: shown only otherwise
            oracle = "" if row.oracle in (None, 1.0) else _with_error(row.oracle, None)
            line += [
                _with_error(row.floor, row.floor_stderr) if row.floor is not None else "",
                oracle,
            ]
        body.append(tuple(line))
    return table(tuple(header), body)


def summary_lines(rows: list[Row], verdicts: list[TaskVerdict]) -> list[str]:
    """The card's conclusions in words."""
    lines = []
    for verdict in verdicts:
        share = "n/a" if verdict.top_answer_share is None else f"{verdict.top_answer_share:.2f}"
        state = f"DEGENERATE ({verdict.degenerate})" if verdict.degenerate else "not degenerate"
        lines.append(f"{verdict.task}: top answer share {share}; {state}")
    beaten = [f"{r.task}/{r.metric}" for r in rows if beats_floor(r)]
    not_beaten = [f"{r.task}/{r.metric}" for r in rows if beats_floor(r) is False]
    if beaten or not_beaten:
        lines.append("beat their shuffled floor: " + (", ".join(beaten) or "none"))
        lines.append("do not: " + (", ".join(not_beaten) or "none"))
    above = [
        f"{r.task}/{r.metric}"
        for r in rows
        if r.ceiling is not None and r.value is not None and r.value > r.ceiling
    ]
    if any(r.ceiling is not None for r in rows):
        lines.append("above their constant ceiling: " + (", ".join(above) or "none"))
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", help="an lm-eval results_*.json, or the folder given to --output_path"
    )
    parser.add_argument(
        "--controls",
        action="store_true",
        help="also score the shuffled oracle (the floor) and the oracle on the run's documents "
        "(references from the cache; types with a single reference answer)",
    )
    parser.add_argument(
        "--control_seed", type=int, default=0, help="seed of the shuffled oracle's permutation"
    )


def _controls(results: RunResults, seed: int) -> dict[str, dict[str, TaskResult | None]]:
    from harness_plugins.commands.controls import control_result

    found: dict[str, dict[str, TaskResult | None]] = {}
    for task in results.introspect_tasks:
        explanation = _explanation(task)
        if explanation is None or not explanation.answer_metrics:
            continue
        found[task.name] = {
            kind: control_result(task, kind, seed) for kind in ("shuffled", "oracle")
        }
    return found


def run(args: argparse.Namespace) -> int:
    results = RunResults.load(args.results, IntrospectError, require_results=False)
    path = results.path
    controls = _controls(results, args.control_seed) if args.controls else None
    rows = report_rows(results, controls)
    if not rows:
        raise IntrospectError(f"{path}: no introspect task in these results")
    print(f"report card of {path}\n")
    print(format_card(rows))
    print()
    print("\n".join(summary_lines(rows, task_verdicts(results))))
    print(
        "\nstderr: lm-eval's (bootstrapped where the metric is not a mean); 'baseline is' names "
        "the metric of the same run, or chance; const. ceiling: the best score of one fixed "
        "answer on these documents; shuffled floor: the references permuted across documents."
    )
    return 0
