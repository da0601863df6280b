"""Scoring the control explainers on exactly the documents of a finished run.

The run's record holds its options and subject, and its ``n`` the documents it scored:
the same task with the same options and ``--limit n`` gives the same documents, and the
references come from the cache. Each control (`harness_plugins.lm_eval_adapter.control`)
is evaluated through lm-eval's own `simple_evaluate`, so its scores are computed by the
very scorer that scored the run.
"""

from __future__ import annotations

import logging
from typing import Any

from harness_plugins.results import RunRecord, RunResults, TaskResult

logger = logging.getLogger("introspect")


def subject_arguments(record: RunRecord) -> dict[str, Any]:
    """The subject of a run as task options (``subject``, ``subject_peft``).

    A cross run names them in its options; a self run's subject is its explainer, whose
    description (`ModelSpec.describe`: ``NAME [GGUF] + peft ADAPTER``) the record keeps.
    """
    options = record.options or {}
    if options.get("subject"):
        return {"subject": options["subject"], "subject_peft": options.get("subject_peft")}
    described = record.subject or ""
    name, _, peft = described.partition(" + peft ")
    name = name.split(" [", 1)[0]
    return {"subject": name, "subject_peft": peft or None}


def control_result(task: TaskResult, kind: str, seed: int = 0) -> TaskResult | None:
    """The control ``kind`` (oracle, shuffled, constant) scored on ``task``'s documents."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from harness_plugins.lm_eval_adapter.control import ControlLM

    if task.record is None or not task.n:
        return None
    metadata = {
        **(task.record.options or {}),
        **subject_arguments(task.record),
        "control": kind,
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    model = ControlLM(control=kind, control_seed=seed)
    manager = TaskManager(include_defaults=False, metadata=metadata)
    results = simple_evaluate(
        model=model,
        tasks=[task.name],
        limit=task.n,
        num_fewshot=0,
        task_manager=manager,
        verbosity="WARNING",
    )
    return RunResults.from_dict(results).task(task.name)
