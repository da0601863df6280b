"""Trained explainers: LoRA on the train partitions of chosen explanation types.

``introspect train explainer --subject S [--explainer E] --types a,b --out ADAPTER``
builds (or reuses) the train-partition references of each type for subject S, phrases
every document as the explainer prompt the evaluation uses (vectors included, mapped
into E's space when E differs from S), and trains E to give the reference answer.
Partitions are disjoint by question, fact or concept, never by row, so the evaluation
``lm_eval --model introspect --model_args pretrained=E,peft=ADAPTER --metadata
'{"subject": "S"}'`` only sees held-out ones. The loop is `harness_plugins.training.lora`.

Two addons ride on it: learned projections (`harness_plugins.prompts.projections`, on
unless ``learn_projection=False``) and, with ``EvalConfig.every``, a learning curve on a
held-out slice of the train partition (`harness_plugins.training.watch`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.vectors import VectorTable
from harness_plugins.training.lora import Example, TrainingConfig, train_lora


@dataclass
class TypeData:
    """One type's train documents, their examples, and what reads and scores them."""

    name: str
    docs: list[dict[str, Any]]
    examples: list[Example]
    stats: dict[str, Any]
    explanation: Any
    options: Mapping[str, Any]
    mapper: Any


@dataclass
class EvalConfig:
    """The learning curve: every ``every`` steps (0: none), on ``examples`` held-out
    documents per type; stop after ``patience`` evaluations without a better ``metric``."""

    every: int = 0
    examples: int = 16
    patience: int | None = None
    metric: str | None = None
    max_new_tokens: int = 16


def load_type(
    type_name: str,
    explainer: Any,
    metadata: Mapping[str, Any],
    limit: int | None,
    table: VectorTable,
) -> TypeData:
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
    docs = list(pipeline.ensure(limit or len(pipeline.questions())))
    examples = []
    with table.active():
        table.mapper = mapper_for_pipeline(pipeline)
        for doc in docs:
            messages = explanation.explainer_messages(doc, pipeline.options)
            examples.append(Example(tuple(messages), explanation.target(doc)))
    record = pipeline.record
    stats = {
        "documents": len(examples),
        "subject_fingerprint": record.subject_fingerprint,
        "reference_key": record.reference_key,
        "summary": record.reference_summary,
    }
    return TypeData(type_name, docs, examples, stats, explanation, pipeline.options, table.mapper)


def examples_for_type(
    type_name: str,
    explainer: Any,
    metadata: Mapping[str, Any],
    limit: int | None,
    table: VectorTable,
) -> tuple[list[Example], dict[str, Any]]:
    """`load_type`'s examples and statistics."""
    data = load_type(type_name, explainer, metadata, limit, table)
    return data.examples, data.stats


def split_heldout(data: TypeData, size: int, seed: int) -> tuple[list[int], list[int]]:
    """(training, held-out) indices: ``size`` documents held out, the same for a seed."""
    order = list(range(len(data.examples)))
    random.Random(f"{seed}:{data.name}").shuffle(order)
    if size and len(order) <= size:
        raise IntrospectError(
            f"{data.name}: --eval_examples {size} leaves no training documents out of "
            f"{len(order)}; lower --eval_examples or raise --limit"
        )
    return sorted(order[size:]), sorted(order[:size])


def slot_sources(examples: Sequence[Example], mapper: Any) -> list[tuple[Any, ...]]:
    """(subject vector, layer, scale, mapper) of every vector slot in the examples."""
    keys = [key for example in examples for key in vectors.slot_keys(example.messages)]
    return [(*vectors.source(key), mapper) for key in keys]


def train_explainer(
    explainer: Any,
    types: Sequence[str],
    out: Path,
    *,
    metadata: Mapping[str, Any],
    limit: int | None,
    config: TrainingConfig,
    resume: bool = False,
    evaluation: EvalConfig | None = None,
    learn_projection: bool = True,
    projection_learning_rate: float | None = None,
    projection_init: str = "fixed",
) -> dict[str, Any]:
    """Train ``explainer`` (a `ModelSpec`) on a shuffled mix of the types' train documents."""
    from harness_plugins.training.watch import HeldOut, LearningCurve

    evaluation = evaluation or EvalConfig()
    held = evaluation.examples if evaluation.every else 0
    examples: list[Example] = []
    heldout: list[HeldOut] = []
    sources: list[tuple[Any, ...]] = []
    per_type: dict[str, Any] = {}
    table = VectorTable()  # the prompts' vectors, for as long as this training runs
    for type_name in types:
        data = load_type(type_name, explainer, metadata, limit and limit + held, table)
        train, kept = split_heldout(data, held, config.seed)
        examples += [data.examples[i] for i in train]
        sources += slot_sources(data.examples, data.mapper)
        if held:
            heldout.append(
                HeldOut(
                    type_name,
                    data.explanation,
                    data.options,
                    [data.docs[i] for i in kept],
                    [data.examples[i] for i in kept],
                    table,
                )
            )
        per_type[type_name] = {**data.stats, "documents": len(train), "heldout": len(kept)}
    random.Random(config.seed).shuffle(examples)
    addons: list[Any] = []
    if learn_projection and sources:
        from harness_plugins.prompts.projections import SlotProjections
        from harness_plugins.training.projection_addon import ProjectionTraining

        subject = metadata.get("subject") or explainer.pretrained
        addons.append(
            ProjectionTraining(
                SlotProjections.initial(sources),
                learning_rate=projection_learning_rate,
                warm_start=(examples, config.seed) if projection_init == "answer_probe" else None,
                subject=subject,
            )
        )
    if held:
        addons.append(
            LearningCurve(
                heldout,
                evaluation.every,
                patience=evaluation.patience,
                metric=evaluation.metric,
                max_new_tokens=evaluation.max_new_tokens,
                batch_size=config.batch_size,
                max_length=config.max_length,
            )
        )
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
            "projection": {"kind": "fixed"},
        },
        resume=resume,
        addons=addons,
    )
    table.clear()
    return manifest
