"""``introspect report``: a report card of an lm-eval run, every score beside its baseline.

One row per summary metric of every introspect task in a results file: the score with
its standard error, the number of documents, the mode (self or cross), and what the
explanation type says to compare it with (a trivial answer, chance, the logit lens, a
probe), read from the same run. A score means something only beside its baseline.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness_plugins.commands.common import table
from harness_plugins.errors import IntrospectError
from harness_plugins.results import RunResults, TaskResult


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


def _metrics(task: TaskResult) -> dict[str, tuple[float | None, float | None]]:
    """``{metric: (value, stderr)}`` of one task's summary metrics (breakdowns left out)."""
    return {m.name: (m.value, m.stderr) for m in task.summary_metrics}


def report_rows(results: RunResults | Mapping[str, Any]) -> list[Row]:
    """The card's rows for every introspect task of one lm-eval run."""
    from harness_plugins.registry import get_registry

    if not isinstance(results, RunResults):
        results = RunResults.from_dict(results)
    types = get_registry().explanation_types
    rows: list[Row] = []
    for task in results.introspect_tasks:
        assert task.record is not None
        explanation = types.get(task.record.explanation_type or "")
        baselines = explanation.baselines if explanation is not None else {}
        metrics = _metrics(task)
        baseline_metrics = {b for b in baselines.values() if isinstance(b, str)}
        for metric, (value, stderr) in metrics.items():
            if metric in baseline_metrics:
                continue
            baseline = baselines.get(metric)
            if isinstance(baseline, str):
                base_value, base_stderr = metrics.get(baseline, (None, None))
                label = baseline
            elif baseline is not None:
                base_value, base_stderr, label = float(baseline), None, "chance/none"
            else:
                base_value, base_stderr, label = None, None, ""
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
                )
            )
    return rows


def _with_error(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if stderr is None else f"{value:.3f} ± {stderr:.3f}"


def format_card(rows: list[Row]) -> str:
    body = [
        (
            row.task,
            row.mode,
            "?" if row.n is None else row.n,
            row.metric,
            _with_error(row.value, row.stderr),
            _with_error(row.baseline_value, row.baseline_stderr),
            row.baseline,
        )
        for row in rows
    ]
    return table(("task", "mode", "n", "metric", "score", "baseline", "baseline is"), body)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", help="an lm-eval results_*.json, or the folder given to --output_path"
    )


def run(args: argparse.Namespace) -> int:
    results = RunResults.load(args.results, IntrospectError, require_results=False)
    path = results.path
    rows = report_rows(results)
    if not rows:
        raise IntrospectError(f"{path}: no introspect task in these results")
    print(f"report card of {path}\n")
    print(format_card(rows))
    print(
        "\nstderr: lm-eval's (bootstrapped where the metric is not a mean); "
        "'baseline is' names the metric of the same run, or chance."
    )
    return 0
