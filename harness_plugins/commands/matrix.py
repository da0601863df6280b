"""``introspect matrix``: every (explainer, subject) pair through lm-eval, self vs cross.

The central comparison of the source work: does a model explain itself better than
another model explains it? Each explainer is loaded once and evaluated against every
subject (``--metadata subject=...`` under the hood); results go to a CSV and JSON of all
metrics, a heatmap per metric, a W&B run, and a printed self-minus-cross gap per subject.
A pair that cannot run (say, widths that no map can bridge) is recorded with its error,
never dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError

logger = logging.getLogger("introspect")


@dataclass(frozen=True)
class ModelChoice:
    """A model as the matrix names it: ``NAME`` or ``NAME+ADAPTER`` (a PEFT folder)."""

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
        return self.name if not self.peft else f"{self.name}+{Path(self.peft).name}"


@dataclass
class Cell:
    """One (explainer, subject, task, metric) value, or why the pair has none."""

    explainer: str
    subject: str
    mode: str
    task: str
    metric: str
    value: float | None
    stderr: float | None
    status: str


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def run_pair(
    lm: Any,
    explainer: ModelChoice,
    subject: ModelChoice,
    tasks: Sequence[str],
    limit: int | None,
    metadata: dict[str, Any],
) -> list[Cell]:
    """Evaluate one pair with lm-eval's Python API on an already loaded explainer."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

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
        results = simple_evaluate(model=lm, tasks=list(tasks), limit=limit, task_manager=manager)
    except Exception as error:  # a pair that cannot run is a result too
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        logger.warning(
            "introspect: matrix pair %s -> %s failed: %s", explainer.label, subject.label, message
        )
        return [
            Cell(explainer.label, subject.label, mode, task, "", None, None, f"error: {message}")
            for task in tasks
        ]
    cells = []
    for task, metrics in results["results"].items():
        record = (results.get("configs", {}).get(task, {}).get("metadata") or {}).get("introspect")
        task_mode = (record or {}).get("mode", mode)  # what the run itself decided
        for key, value in metrics.items():
            metric, _, _filter = key.partition(",")
            if not _filter or metric.endswith("_stderr"):
                continue
            stderr = _number(metrics.get(f"{metric}_stderr,{_filter}"))
            cells.append(
                Cell(
                    explainer.label,
                    subject.label,
                    task_mode,
                    task,
                    metric,
                    _number(value),
                    stderr,
                    "ok",
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


def self_cross_gaps(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Per subject, task, metric and self explainer: its value minus the mean cross value.

    Like with like: each self explainer (the base, or base + adapter) gets its own row,
    against the cross explainers of the same subject, task and metric.
    """
    table: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    for cell in cells:
        if cell.value is None:
            continue
        entry = table.setdefault((cell.subject, cell.task, cell.metric), {"self": {}, "cross": {}})
        entry[cell.mode][cell.explainer] = cell.value
    rows = []
    for (subject, task, metric), values in sorted(table.items()):
        if not values["cross"]:
            continue
        cross = sum(values["cross"].values()) / len(values["cross"])
        for explainer, value in sorted(values["self"].items()):
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
                }
            )
    return rows


def heatmaps(
    cells: Sequence[Cell], explainers: Sequence[str], subjects: Sequence[str], out: Path
) -> list[Path]:
    """One PNG per (task, metric): explainers down, subjects across, failures marked."""
    import numpy as np

    from harness_plugins.commands.plots import new_figure, save_figure

    written = []
    keys = sorted({(c.task, c.metric) for c in cells if c.metric})
    for task, metric in keys:
        grid = np.full((len(explainers), len(subjects)), np.nan)
        modes = np.full((len(explainers), len(subjects)), "", dtype=object)
        for cell in cells:
            if cell.task == task and cell.metric == metric and cell.value is not None:
                grid[explainers.index(cell.explainer), subjects.index(cell.subject)] = cell.value
                modes[explainers.index(cell.explainer), subjects.index(cell.subject)] = cell.mode
        finite = grid[np.isfinite(grid)]
        rate = finite.size > 0 and finite.min() >= 0 and finite.max() <= 1
        scale = {"vmin": 0.0, "vmax": 1.0} if rate else {}
        figure = new_figure(1.6 + 1.3 * len(subjects), 1.2 + 0.9 * len(explainers))
        axes = figure.add_subplot(1, 1, 1)
        image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis", **scale)
        axes.set_xticks(range(len(subjects)), subjects, rotation=30, ha="right")
        axes.set_yticks(range(len(explainers)), explainers)
        axes.set_xlabel("subject")
        axes.set_ylabel("explainer")
        axes.set_title(f"{task}: {metric} (self cells marked)")
        for i in range(len(explainers)):
            for j in range(len(subjects)):
                text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
                if modes[i, j] == "self":
                    text += "\nself"
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    color="white" if text == "n/a" or image.norm(grid[i, j]) < 0.5 else "black",
                    fontsize=9,
                )
        figure.colorbar(image, ax=axes)
        written.append(save_figure(figure, out / f"heatmap__{task}__{metric}.png"))
    return written


def log_to_wandb(
    cells: Sequence[Cell], gaps: Sequence[dict[str, Any]], images: Sequence[Path], project: str
) -> str | None:
    """One W&B run with the whole matrix as a table, the gaps and the heatmaps."""
    try:
        import wandb
    except ImportError:
        return None
    run = wandb.init(project=project, job_type="introspect-matrix", reinit=True)
    columns = list(asdict(cells[0])) if cells else ["explainer"]
    run.log(
        {
            "matrix/cells": wandb.Table(
                columns=columns, data=[list(asdict(c).values()) for c in cells]
            ),
            "matrix/self_minus_cross": wandb.Table(
                columns=["subject", "explainer", "task", "metric", "self", "cross", "gap"],
                data=[
                    [
                        g[k]
                        for k in ("subject", "explainer", "task", "metric", "self", "cross", "gap")
                    ]
                    for g in gaps
                ],
            ),
            **{f"matrix/{image.stem}": wandb.Image(str(image)) for image in images},
        }
    )
    directory = run.dir
    run.finish()
    return directory


def write_outputs(
    cells: Sequence[Cell], gaps: Sequence[dict[str, Any]], out: Path
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "matrix.csv", out / "matrix.json"
    rows = [asdict(c) for c in cells]
    staging = csv_path.with_suffix(".csv.tmp")
    with staging.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["explainer"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(staging, csv_path)
    staging = json_path.with_suffix(".json.tmp")
    staging.write_text(json.dumps({"cells": rows, "self_minus_cross": list(gaps)}, indent=2))
    os.replace(staging, json_path)
    return csv_path, json_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--explainers", required=True, help="comma-separated models: NAME or NAME+ADAPTER"
    )
    parser.add_argument(
        "--subjects", required=True, help="comma-separated models: NAME or NAME+ADAPTER"
    )
    parser.add_argument("--tasks", required=True, help="comma-separated introspect tasks")
    parser.add_argument("--limit", type=int, help="documents per task (lm-eval's --limit)")
    parser.add_argument("--metadata", help="task options as JSON, for every pair")
    parser.add_argument(
        "--out", default="matrix", help="folder for matrix.csv, matrix.json and heatmaps"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--device", default=None, help="cuda, cpu, ... (default: cuda when available)"
    )
    parser.add_argument(
        "--wandb-project", default="lm-eval-introspect", help="W&B project ('none' to disable)"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from harness_plugins.lm_eval_adapter.model import IntrospectLM
    from harness_plugins.lm_eval_adapter.task import TASK_PREFIX

    explainers = [ModelChoice.parse(t) for t in args.explainers.split(",") if t.strip()]
    subjects = [ModelChoice.parse(t) for t in args.subjects.split(",") if t.strip()]
    tasks = [
        t.strip() if t.strip().startswith(TASK_PREFIX) else TASK_PREFIX + t.strip()
        for t in args.tasks.split(",")
        if t.strip()
    ]
    metadata = json.loads(args.metadata) if args.metadata else {}
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cells: list[Cell] = []
    for explainer in explainers:
        try:
            lm = IntrospectLM(
                pretrained=explainer.name,
                peft=explainer.peft,
                device=device,
                batch_size=args.batch_size,
            )
        except Exception as error:
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            cells += [
                Cell(
                    explainer.label,
                    s.label,
                    pair_mode(explainer, s),
                    t,
                    "",
                    None,
                    None,
                    f"error: {message}",
                )
                for s in subjects
                for t in tasks
            ]
            continue
        for subject in subjects:
            cells += run_pair(lm, explainer, subject, tasks, args.limit, metadata)
        del lm
    out = Path(args.out)
    gaps = self_cross_gaps(cells)
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
    print("\nself minus cross, per subject:")
    for gap in gaps:
        print(
            f"  {gap['subject']:<28} {gap['explainer']:<28} {gap['task']}/{gap['metric']:<16} self {gap['self']:.3f}  cross {gap['cross']:.3f}  gap {gap['gap']:+.3f}"
        )
    if not gaps:
        print("  (needs each subject also among the explainers, and at least one other explainer)")
    print(
        f"\nwrote {csv_path}, {json_path} and {len(images)} heatmaps"
        + (f"; W&B run in {wandb_dir}" if wandb_dir else "")
    )
    return 0
