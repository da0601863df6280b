"""What a score is worth: the best a constant answer reaches, and how often one answer repeats.

A score means something only beside what an explainer with no information about the
document would reach. Two such numbers come from the run itself:

- ``<metric>_constant_ceiling``: the best score any single fixed answer reaches on these
  documents, for each metric of the written answer (``ExplanationType.answer_metrics``).
  It is computed by scoring every distinct reference answer of the run, given to every
  document, through the type's own `score` and the metric's own aggregation: no metric is
  re-implemented here.
- ``top_answer_share``: the share of answers equal to the run's most common one (answers
  normalised as the type compares them). An explainer that writes one sentence to
  everything has a share near 1.

A run is *degenerate* when its top answer share is at least `DEGENERATE_SHARE`, or when no
answer metric beats its constant ceiling: its scores are then no finding, and neither is a
gap between it and another run.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from harness_plugins.explanation import ExplanationType, Metric
from harness_plugins.stderr import bootstrap_stderr

TOP_ANSWER_SHARE = "top_answer_share"
CEILING_SUFFIX = "_constant_ceiling"
DEGENERATE_SHARE = 0.9
"""A run whose most common answer is at least this share of all answers is degenerate."""


def ceiling_name(metric: str) -> str:
    return metric + CEILING_SUFFIX


def top_answer_share(answer_lists: list[list[str]]) -> float:
    """Share of all answers that equal the most common one (nan when there is none)."""
    answers = [answer for answers in answer_lists for answer in answers]
    if not answers:
        return math.nan
    return Counter(answers).most_common(1)[0][1] / len(answers)


def reference_view(explanation: ExplanationType, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The columns that define a document's reference answer (all `score` needs for the
    answer metrics): what a constant answer is scored against."""
    return {column: doc[column] for column in explanation.reference_columns if column in doc}


def _key(view: Mapping[str, Any]) -> str:
    return json.dumps(view, sort_keys=True, default=str)


def constant_scores(
    explanation: ExplanationType, views: Sequence[Mapping[str, Any]], metric: str
) -> list[tuple[str, float]]:
    """(answer, score on ``metric``) for every distinct reference answer given to every
    document, scored by the type's `score` and aggregated by the metric's aggregation.

    Identical references are scored once and weighted by their count, so the cost grows
    with the number of distinct references, not with the square of the documents.
    """
    aggregate = explanation.metrics[metric].aggregate
    groups: dict[str, tuple[Mapping[str, Any], int]] = {}
    for view in views:
        key = _key(view)
        first, count = groups.get(key, (view, 0))
        groups[key] = (first, count + 1)
    candidates = list(dict.fromkeys(explanation.target(view) for view in views))
    scored = []
    for answer in candidates:
        values = []
        for view, count in groups.values():
            scores = explanation.score(view, answer)
            if metric in scores:
                values += [scores[metric]] * count
        scored.append((answer, float(aggregate(values)) if values else math.nan))
    return scored


def best_constant(
    explanation: ExplanationType, views: Sequence[Mapping[str, Any]], metric: str
) -> tuple[str, float]:
    """The single answer that scores best on ``metric`` over these documents, and its score."""
    scored = [(a, s) for a, s in constant_scores(explanation, views, metric) if not math.isnan(s)]
    if not scored:
        return "", math.nan
    better = max if explanation.metrics[metric].higher_is_better else min
    return better(scored, key=lambda pair: pair[1])


def _ceiling(explanation: ExplanationType, metric: str) -> Metric:
    def aggregate(views: list[Mapping[str, Any]]) -> float:
        return best_constant(explanation, views, metric)[1]

    aggregate.__name__ = ceiling_name(metric)
    return Metric(aggregate, higher_is_better=explanation.metrics[metric].higher_is_better)


def _answer_metrics(explanation: ExplanationType, reported: Collection[str]) -> list[str]:
    return [m for m in explanation.answer_metrics if m in reported]


def calibration_metrics(
    explanation: ExplanationType, reported: Collection[str]
) -> dict[str, Metric]:
    """The calibration metrics a type's run reports beside its own (``reported``)."""
    metrics: dict[str, Metric] = {}
    if explanation.writes_answer:
        metrics[TOP_ANSWER_SHARE] = Metric(
            top_answer_share, higher_is_better=False, stderr=bootstrap_stderr(top_answer_share)
        )
    for metric in _answer_metrics(explanation, reported):
        metrics[ceiling_name(metric)] = _ceiling(explanation, metric)
    return metrics


def generated_answers(results: Sequence[Any]) -> list[str]:
    """The generated texts among one document's results (log-likelihoods are left out)."""
    answers: list[str] = []
    for result in results:
        if isinstance(result, str):
            answers.append(result)
        elif isinstance(result, list) and all(isinstance(r, str) for r in result):
            answers.extend(result)
    return answers


def calibration_values(
    explanation: ExplanationType,
    doc: Mapping[str, Any],
    results: Sequence[Any],
    reported: Collection[str],
) -> dict[str, Any]:
    """Per-document values of `calibration_metrics` (same ``reported`` metrics)."""
    values: dict[str, Any] = {}
    if explanation.writes_answer:
        values[TOP_ANSWER_SHARE] = [
            explanation.normalise_answer(a) for a in generated_answers(results)
        ]
    metrics = _answer_metrics(explanation, reported)
    if metrics:
        view = reference_view(explanation, doc)
        values.update({ceiling_name(metric): view for metric in metrics})
    return values


def degenerate_reason(
    explanation: ExplanationType | None, scores: Mapping[str, float | None]
) -> str | None:
    """Why a run's scores are no finding, or None: its answers are (nearly) all the same,
    or none of its answer metrics beats what a constant answer reaches."""
    share = scores.get(TOP_ANSWER_SHARE)
    if share is not None and not math.isnan(share) and share >= DEGENERATE_SHARE:
        return f"top answer share {share:.2f} >= {DEGENERATE_SHARE}"
    if explanation is None:
        return None
    compared = []
    for metric in explanation.answer_metrics:
        value, ceiling = scores.get(metric), scores.get(ceiling_name(metric))
        if value is None or ceiling is None or math.isnan(value) or math.isnan(ceiling):
            continue
        higher = explanation.metrics[metric].higher_is_better
        compared.append(value > ceiling if higher else value < ceiling)
    if compared and not any(compared):
        return "no answer metric beats its constant ceiling"
    return None


def is_calibration_metric(metric: str) -> bool:
    """A metric this module adds (a ceiling or the top answer share), not a score."""
    return metric == TOP_ANSWER_SHARE or metric.endswith(CEILING_SUFFIX)


def task_verdict(task: Any) -> tuple[float | None, str | None]:
    """A finished run's top answer share and why it is degenerate (or None), for a
    `harness_plugins.results.TaskResult` with a record."""
    from harness_plugins.registry import get_registry

    scores = {m.name: m.value for m in task.summary_metrics}
    explanation = get_registry().explanation_types.get(task.record.explanation_type or "")
    return scores.get(TOP_ANSWER_SHARE), degenerate_reason(explanation, scores)


def degenerate_runs(cells: Iterable[Any]) -> dict[tuple[str, str, str], str]:
    """(explainer, subject, task) -> why that run is degenerate, for matrix cells (objects
    with ``explainer``, ``subject``, ``task``, ``metric`` and ``value``)."""
    from harness_plugins.registry import get_registry

    types = get_registry().explanation_types
    scores: dict[tuple[str, str, str], dict[str, float | None]] = {}
    for cell in cells:
        scores.setdefault((cell.explainer, cell.subject, cell.task), {})[cell.metric] = cell.value
    found = {}
    for key, values in scores.items():
        reason = degenerate_reason(types.get(key[2].removeprefix("introspect_")), values)
        if reason:
            found[key] = reason
    return found
