"""Trained explainers: LoRA on the train partitions of chosen explanation types.

``introspect train explainer --subject S [--explainer E] --types a,b --out ADAPTER``
builds (or reuses) the train-partition references of each type for subject S, phrases
every document as the explainer prompt the evaluation uses (vectors included, mapped
into E's space when E differs from S), and trains E to give the reference answer.
Partitions are disjoint by question, fact or concept, never by row, so the evaluation
``lm_eval --model introspect --model_args pretrained=E,peft=ADAPTER --metadata
'{"subject": "S"}'`` only sees held-out ones. The loop is `harness_plugins.training.lora`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.prompts.vectors import VectorTable
from harness_plugins.training.lora import Example, TrainingConfig, train_lora


def examples_for_type(
    type_name: str,
    explainer: Any,
    metadata: Mapping[str, Any],
    limit: int | None,
    table: VectorTable,
) -> tuple[list[Example], dict[str, Any]]:
    """The train-partition documents of one type as explainer conversations with answers.

    ``metadata`` names the subject (``subject``, ``subject_peft``) and further options;
    the prompts' vectors go into ``table``, which the caller keeps until training ends.
    """
    from harness_plugins.prompts.cross_model import mapper_for_pipeline
    from harness_plugins.references import ReferencePipeline

    model_arguments = {"pretrained": explainer.pretrained}
    if explainer.peft:
        model_arguments["peft"] = explainer.peft
    pipeline = ReferencePipeline(type_name, {**metadata, **model_arguments, "partition": "train"})
    explanation = pipeline.explanation
    if not explanation.uses_chat:
        raise IntrospectError(
            f"{type_name} has no single answer to train on (it is scored per layer)"
        )
    docs = pipeline.ensure(limit or len(pipeline.questions()))
    examples = []
    with table.active():
        table.mapper = mapper_for_pipeline(pipeline)
        for doc in docs:
            messages = explanation.explainer_messages(doc, pipeline.options)
            examples.append(Example(tuple(messages), explanation.target(doc)))
    record = pipeline.record
    return examples, {
        "documents": len(examples),
        "subject_fingerprint": record.subject_fingerprint,
        "reference_key": record.reference_key,
        "summary": record.reference_summary,
    }


def train_explainer(
    explainer: Any,
    types: Sequence[str],
    out: Path,
    *,
    metadata: Mapping[str, Any],
    limit: int | None,
    config: TrainingConfig,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``explainer`` (a `ModelSpec`) on a shuffled mix of the types' train documents."""
    examples: list[Example] = []
    per_type: dict[str, Any] = {}
    table = VectorTable()  # the prompts' vectors, for as long as this training runs
    for type_name in types:
        found, stats = examples_for_type(type_name, explainer, metadata, limit, table)
        examples += found
        per_type[type_name] = stats
    random.Random(config.seed).shuffle(examples)
    manifest = train_lora(
        explainer,
        examples,
        out,
        config,
        description={
            "kind": "explainer",
            "subject": metadata.get("subject") or explainer.pretrained,
            "subject_peft": metadata.get("subject_peft"),
            "types": per_type,
        },
        resume=resume,
    )
    table.clear()
    return manifest
