"""Options checked before lm-eval loads any model, and the pipelines that check built,
handed to their tasks: one reference pipeline per task per run.

lm-eval matches the tasks of a run (then `validate` builds each introspect task's
pipeline, so every option, model name and tokenizer check runs before the ~45 s model
load), loads the model, and only then builds the tasks, which take their pipeline back
with `pipeline_for`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness_plugins.models import model_arguments
from harness_plugins.options import LM_EVAL_METADATA_KEYS
from harness_plugins.references import ReferencePipeline

# (task, options in the metadata) -> the pipeline validation built, until its task takes it
_validated: dict[tuple[str, str], ReferencePipeline] = {}


def _key(task: str, metadata: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies a task's pipeline: lm-eval adds its own keys to a task's metadata."""
    ours = {k: v for k, v in metadata.items() if k not in LM_EVAL_METADATA_KEYS}
    return task, json.dumps(ours, sort_keys=True, default=str)


def validate(task_types: Mapping[str, str], metadata: Mapping[str, Any] | None) -> None:
    """Build the pipeline of each task (task name -> explanation type) now, keeping it for
    the task lm-eval builds after loading the model."""
    exact = model_arguments().exact
    for task, type_name in task_types.items():
        pipeline = ReferencePipeline(
            type_name, metadata or {}, task=task, known_model_arguments=exact
        )
        _validated[_key(task, metadata or {})] = pipeline


def pipeline_for(task: str, type_name: str, metadata: Mapping[str, Any]) -> ReferencePipeline:
    """The pipeline validation built for this task and metadata (taken, so a later run
    builds afresh), else a new one, validated now."""
    pipeline = _validated.pop(_key(task, metadata), None)
    if pipeline is not None and pipeline.explanation.name == type_name:
        return pipeline
    return ReferencePipeline(
        type_name, metadata, task=task, known_model_arguments=model_arguments().exact
    )
