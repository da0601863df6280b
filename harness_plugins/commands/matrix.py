"""``introspect matrix``: every (explainer, subject) pair through lm-eval, self vs cross.

The central comparison of the source work: does a model explain itself better than
another model explains it? Each explainer is loaded once and evaluated against every
subject (``--metadata subject=...`` under the hood); results go to a CSV and JSON of all
metrics with a 95% bootstrap interval per cell, a heatmap per metric, a W&B run, and a
printed self-minus-cross gap per subject with its paired bootstrap interval and p-value
(`harness_plugins.commands.matrix_statistics`). An adapter path may contain ``{subject}``:
the explainer then loads the adapter trained for each subject. A pair that cannot run
(say, widths that no map can bridge) is recorded with its error, never dropped.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness_plugins.calibration import degenerate_runs, is_calibration_metric
from harness_plugins.commands import matrix_statistics as stats
from harness_plugins.commands.matrix_outputs import (
    gap_lines,
    heatmaps,
    log_to_wandb,
    significance_summary,
    write_outputs,
)
from harness_plugins.errors import IntrospectError
from harness_plugins.results import RunResults

logger = logging.getLogger("introspect")

SUBJECT_PLACEHOLDER = "{subject}"

Documents = dict[tuple[str, str, str, str], stats.DocValues]
"""(explainer, subject, task, metric) -> per-document values, for the paired gap tests."""


@dataclass(frozen=True)
class ModelChoice:
    """A model as the matrix names it: ``NAME`` or ``NAME+ADAPTER`` (a PEFT folder).

    ``ADAPTER`` may contain ``{subject}``: one adapter per subject (`for_subject`).
    """

    name: str
    peft: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelChoice:
        name, _, peft = text.strip().partition("+")
        if not name:
            raise IntrospectError(f"empty model name in {text!r}; use NAME or NAME+ADAPTER")
        return cls(name, peft or None)

    @property
    def label(self) -> str:
        if not self.peft:
            return self.name
        path = Path(self.peft)
        tail = f"{path.parent.name}/{path.name}" if SUBJECT_PLACEHOLDER in path.name else path.name
        return f"{self.name}+{tail}"

    def for_subject(self, subject: ModelChoice) -> ModelChoice:
        """The explainer to run on ``subject``: ``{subject}`` in the adapter path becomes the
        subject's name (its last path part), so each subject gets the adapter trained on it."""
        if not self.peft or SUBJECT_PLACEHOLDER not in self.peft:
            return self
        return replace(self, peft=self.peft.replace(SUBJECT_PLACEHOLDER, Path(subject.name).name))


@dataclass
class Cell:
    """One (explainer, subject, task, metric) value with its 95% interval, or why it has none."""

    explainer: str
    subject: str
    mode: str
    task: str
    metric: str
    value: float | None
    stderr: float | None
    status: str
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None


def run_pair(
    lm: Any,
    explainer: ModelChoice,
    subject: ModelChoice,
    tasks: Sequence[str],
    limit: int | None,
    metadata: dict[str, Any],
    documents: Documents | None = None,
    resamples: int = stats.RESAMPLES,
    label: str | None = None,
    num_fewshot: int | None = None,
) -> list[Cell]:
    """Evaluate one pair with lm-eval's Python API on an already loaded explainer.

    Each cell gets a bootstrap interval from lm-eval's logged samples; the per-document
    values go into ``documents`` (under ``label``, the explainer's row) for the gap tests.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    label = label or explainer.label
    mode = pair_mode(explainer, subject)
    task_metadata = {**metadata, "pretrained": explainer.name}
    if explainer.peft:
        task_metadata["peft"] = explainer.peft
    if explainer != subject:
        task_metadata["subject"] = subject.name
        if subject.peft:
            task_metadata["subject_peft"] = subject.peft
    try:
        # introspect tasks only: building lm-eval's whole task index takes ~10 s per pair
        manager = TaskManager(include_defaults=False, metadata=task_metadata)
        results = simple_evaluate(
            model=lm,
            tasks=list(tasks),
            limit=limit,
            num_fewshot=num_fewshot,
            task_manager=manager,
            log_samples=True,
        )
    except Exception as error:  # a pair that cannot run is a result too
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        logger.warning("introspect: matrix pair %s -> %s failed: %s", label, subject.label, message)
        return [
            Cell(label, subject.label, mode, task, "", None, None, f"error: {message}")
            for task in tasks
        ]
    cells = []
    run = RunResults.from_dict(results)
    for task in (t for t in run if not t.group):
        task_mode = task.record.mode if task.record and task.record.mode else mode  # the run's
        samples = (results.get("samples") or {}).get(task.name) or []
        for metric in task.metrics:
            per_doc = stats.document_values(samples, metric.name, metric.filter)
            interval = stats.cell_interval(
                [v for _, v in per_doc.values()], metric.value, resamples=resamples
            )
            if documents is not None and per_doc:
                documents[(label, subject.label, task.name, metric.name)] = per_doc
            cells.append(
                Cell(
                    label,
                    subject.label,
                    task_mode,
                    task.name,
                    metric.name,
                    metric.value,
                    metric.stderr,
                    "ok",
                    *(interval or (None, None)),
                    len(per_doc) or None,
                )
            )
    return cells


def pair_mode(explainer: ModelChoice, subject: ModelChoice) -> str:
    """Self when the explainer runs on the subject's weights, adapters on top allowed."""
    from ground_truth.subject import ModelSpec
    from harness_plugins.identity import explanation_mode

    return explanation_mode(
        ModelSpec(explainer.name, peft=explainer.peft), ModelSpec(subject.name, peft=subject.peft)
    )


def reference_metrics(task: str) -> set[str]:
    """The task's baseline metrics (``unchanged_rate``, the logit lens): read off the
    references, so the same for every explainer of a subject; a self-minus-cross gap of
    them is 0 by construction and is not listed."""
    from harness_plugins.registry import get_registry

    types = get_registry().explanation_types
    explanation = types.get(task.removeprefix("introspect_"))
    if explanation is None:
        return set()
    return {value for value in explanation.baselines.values() if isinstance(value, str)}


def self_cross_gaps(
    cells: Sequence[Cell], documents: Documents | None = None, resamples: int = stats.RESAMPLES
) -> list[dict[str, Any]]:
    """Per subject, task, metric and self explainer: its value minus the mean cross value.

    A row whose self or cross run is degenerate (one answer to nearly everything, or no
    score above a constant answer's) says so in ``degenerate``: that gap is no finding.
    Like with like: each self explainer (the base, or base + adapter) gets its own row,
    against the cross explainers of the same subject, task and metric. With the
    per-document values (``documents``) each row also gets the paired bootstrap interval,
    p-value and number of shared documents (None where they cannot be computed).
    """
    table: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    baselines = {task: reference_metrics(task) for task in {cell.task for cell in cells}}
    degenerate = degenerate_runs(cells)
    for cell in cells:
        if (
            cell.value is None
            or cell.metric in baselines[cell.task]
            or is_calibration_metric(cell.metric)
        ):
            continue
        entry = table.setdefault((cell.subject, cell.task, cell.metric), {"self": {}, "cross": {}})
        entry[cell.mode][cell.explainer] = cell.value
    documents = documents or {}
    rows = []
    for (subject, task, metric), values in sorted(table.items()):
        if not values["cross"]:
            continue
        cross = sum(values["cross"].values()) / len(values["cross"])
        cross_docs = [documents.get((e, subject, task, metric)) for e in sorted(values["cross"])]
        for explainer, value in sorted(values["self"].items()):
            self_docs = documents.get((explainer, subject, task, metric))
            test = None
            present = [d for d in cross_docs if d]
            if self_docs and len(present) == len(cross_docs):
                test = stats.paired_gap(self_docs, present, resamples=resamples)
            flags = [
                f"{side} {name}: {degenerate[(name, subject, task)]}"
                for side, names in (("self", [explainer]), ("cross", sorted(values["cross"])))
                for name in names
                if (name, subject, task) in degenerate
            ]
            rows.append(
                {
                    "subject": subject,
                    "explainer": explainer,
                    "task": task,
                    "metric": metric,
                    "self": value,
                    "cross": cross,
                    "cross_explainers": len(values["cross"]),
                    "gap": value - cross,
                    "ci_low": test.ci_low if test else None,
                    "ci_high": test.ci_high if test else None,
                    "p_value": test.p_value if test else None,
                    "n": test.n if test else None,
                    "degenerate": "; ".join(flags),
                }
            )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--explainers",
        required=True,
        help="comma-separated models: NAME or NAME+ADAPTER; {subject} in ADAPTER is replaced "
        "by each subject's name (one adapter trained per subject)",
    )
    parser.add_argument(
        "--subjects", required=True, help="comma-separated models: NAME or NAME+ADAPTER"
    )
    parser.add_argument("--tasks", required=True, help="comma-separated introspect tasks")
    parser.add_argument("--limit", type=int, help="documents per task (lm-eval's --limit)")
    parser.add_argument("--metadata", help="task options as JSON, for every pair")
    parser.add_argument(
        "--num-fewshot",
        type=int,
        help="K solved train-partition examples before each question (lm-eval's --num_fewshot)",
    )
    parser.add_argument(
        "--out", default="matrix", help="folder for matrix.csv, matrix.json and heatmaps"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--bootstrap-iters",
        type=int,
        default=stats.RESAMPLES,
        help="bootstrap resamples for the intervals and p-values (0: none)",
    )
    parser.add_argument(
        "--device", default=None, help="cuda, cpu, ... (default: cuda when available)"
    )
    parser.add_argument(
        "--wandb-project", default="lm-eval-introspect", help="W&B project ('none' to disable)"
    )


def _evaluate(
    args: argparse.Namespace,
    explainers: Sequence[ModelChoice],
    subjects: Sequence[ModelChoice],
    tasks: Sequence[str],
    documents: Documents,
) -> list[Cell]:
    """Every pair; an explainer loads once per distinct adapter (once, without ``{subject}``)."""
    import torch

    from harness_plugins.lm_eval_adapter.model import IntrospectLM

    metadata = json.loads(args.metadata) if args.metadata else {}
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cells: list[Cell] = []
    for explainer in explainers:
        by_adapter: dict[ModelChoice, list[ModelChoice]] = {}
        for subject in subjects:
            by_adapter.setdefault(explainer.for_subject(subject), []).append(subject)
        for loaded, its_subjects in by_adapter.items():
            try:
                lm = IntrospectLM(
                    pretrained=loaded.name,
                    peft=loaded.peft,
                    device=device,
                    batch_size=args.batch_size,
                )
            except Exception as error:
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                cells += [
                    Cell(
                        explainer.label,
                        s.label,
                        pair_mode(loaded, s),
                        t,
                        "",
                        None,
                        None,
                        f"error: {message}",
                    )
                    for s in its_subjects
                    for t in tasks
                ]
                continue
            for subject in its_subjects:
                cells += run_pair(
                    lm,
                    loaded,
                    subject,
                    tasks,
                    args.limit,
                    metadata,
                    documents,
                    args.bootstrap_iters,
                    label=explainer.label,
                    num_fewshot=args.num_fewshot,
                )
            del lm
    return cells


def run(args: argparse.Namespace) -> int:
    from harness_plugins.lm_eval_adapter.task import TASK_PREFIX

    explainers = [ModelChoice.parse(t) for t in args.explainers.split(",") if t.strip()]
    subjects = [ModelChoice.parse(t) for t in args.subjects.split(",") if t.strip()]
    tasks = [
        t.strip() if t.strip().startswith(TASK_PREFIX) else TASK_PREFIX + t.strip()
        for t in args.tasks.split(",")
        if t.strip()
    ]
    if args.bootstrap_iters < 0:
        raise IntrospectError(f"--bootstrap-iters must be 0 or more, got {args.bootstrap_iters}")
    documents: Documents = {}
    cells = _evaluate(args, explainers, subjects, tasks, documents)
    out = Path(args.out)
    gaps = self_cross_gaps(cells, documents, args.bootstrap_iters)
    csv_path, json_path = write_outputs(cells, gaps, out)
    images = heatmaps(cells, [e.label for e in explainers], [s.label for s in subjects], out)
    wandb_dir = (
        None
        if args.wandb_project in ("", "none")
        else log_to_wandb(cells, gaps, images, args.wandb_project)
    )
    failed = sorted({(c.explainer, c.subject, c.status) for c in cells if c.status != "ok"})
    for explainer, subject, status in failed:
        print(f"pair {explainer} -> {subject}: {status}")
    print("\nself minus cross, per subject: (paired bootstrap 95% interval, two-sided p)")
    print("\n".join(gap_lines(gaps)))
    print(significance_summary(gaps))
    if not gaps:
        print("  (needs each subject also among the explainers, and at least one other explainer)")
    print(
        f"\nwrote {csv_path}, {json_path} and {len(images)} heatmaps"
        + (f"; W&B run in {wandb_dir}" if wandb_dir else "")
    )
    return 0
