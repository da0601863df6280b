"""``introspect report``: a report card of an lm-eval run, every score beside its baseline.

One row per summary metric of every introspect task in a results file: the score with
its standard error, the number of documents, the mode (self or cross), and what the
explanation type says to compare it with (a trivial answer, chance, the logit lens, a
probe), read from the same run. A score means something only beside its baseline.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Any

from harness_plugins.commands.common import number_or_none, table
from harness_plugins.commands.results_files import find_results_file
from harness_plugins.errors import IntrospectError

_LAYER_METRIC = re.compile(r"_layer\d+$")


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


def _metrics(task_results: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """``{metric: (value, stderr)}`` of one task, lm-eval's ``name,filter`` keys unpacked."""
    found: dict[str, tuple[float | None, float | None]] = {}
    for key, raw in task_results.items():
        name, _, filt = key.partition(",")
        if not filt or name.endswith("_stderr") or _LAYER_METRIC.search(name):
            continue
        stderr = task_results.get(f"{name}_stderr,{filt}")
        found[name] = (number_or_none(raw), number_or_none(stderr))
    return found


def report_rows(results: dict[str, Any]) -> list[Row]:
    """The card's rows for every introspect task of one lm-eval results dict."""
    from harness_plugins.registry import get_registry

    types = get_registry().explanation_types
    rows: list[Row] = []
    for task, task_results in sorted(results.get("results", {}).items()):
        record = results.get("configs", {}).get(task, {}).get("metadata", {}).get("introspect")
        if not record:
            continue  # not an introspect task (or a group)
        explanation = types.get(record.get("explanation_type", ""))
        baselines = explanation.baselines if explanation is not None else {}
        metrics = _metrics(task_results)
        n = results.get("n-samples", {}).get(task, {}).get("effective")
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
                    task,
                    str(record.get("mode", "?")),
                    n,
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
    path = find_results_file(args.results, IntrospectError)
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise IntrospectError(f"{path}: not an lm-eval results file ({error})") from None
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
