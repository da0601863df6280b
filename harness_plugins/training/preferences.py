"""Training for decision-weight self-reports: instilling preferences, and learning to report them.

``introspect train instill`` fine-tunes a subject to choose by random weights, so that its
true decision weights are known; ``introspect train report`` fine-tunes an explainer to
state weights (instilled, or learned from the subject's choices) on the train half of
the scenarios, leaving the test half for ``lm_eval --tasks introspect_preferences``.
Both build `harness_plugins.training.lora.Example`s and call the one training loop.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.builtin.preferences.reports import (
    INSTILLED_FILE,
    _seed,
    decision_messages,
    introspection_messages,
    scenario_doc,
    weights_answer,
)
from harness_plugins.errors import IntrospectError
from harness_plugins.training.lora import Example, TrainingConfig, train_lora


def instill_examples(
    scenarios: Sequence[Any], weights: Mapping[str, Sequence[float]], per_scenario: int, seed: int
) -> list[Example]:
    """Decision prompts answered by the option with the higher instilled utility."""
    from harness_plugins.builtin.preferences.weights_fit import instilled_choice

    examples = []
    for scenario in scenarios:
        doc = scenario_doc(scenario)
        rng = random.Random(_seed("instill", seed, scenario.short_name))
        for _ in range(per_scenario):
            a = [attr.round_value(rng.uniform(attr.low, attr.high)) for attr in scenario.attributes]
            b = [attr.round_value(rng.uniform(attr.low, attr.high)) for attr in scenario.attributes]
            choice = instilled_choice(a, b, doc["low"], doc["high"], weights[scenario.short_name])
            examples.append(Example(tuple(decision_messages(doc, a, b)), choice))
    random.Random(seed).shuffle(examples)
    return examples


def instill(
    subject: Any,
    out: Path,
    *,
    scenarios_file: str | None,
    num_scenarios: int | None,
    per_scenario: int,
    seed: int,
    config: TrainingConfig,
    resume: bool = False,
    weights_file: str | None = None,
) -> dict[str, Any]:
    """Train ``subject`` to choose by random weights (or those of ``weights_file``, a CSV of
    ``scenario, attr1..5``); save scenarios and weights beside the adapter."""
    import numpy as np

    from harness_plugins.builtin.preferences.scenarios import load_scenarios
    from harness_plugins.builtin.preferences.weights_fit import instilled_weights

    scenarios = load_scenarios(scenarios_file)
    if num_scenarios:
        scenarios = scenarios[:num_scenarios]
    rng = np.random.default_rng(seed)
    weights = {s.short_name: [float(w) for w in instilled_weights(rng)] for s in scenarios}
    if weights_file:
        from harness_plugins.builtin.preferences.report_scoring import read_weights_csv

        given = {scenario: w for (_, scenario), w in read_weights_csv(weights_file).items()}
        missing = [s.short_name for s in scenarios if s.short_name not in given]
        if missing:
            raise IntrospectError(
                f"{weights_file}: no weights for scenario(s) {', '.join(missing[:3])}; add "
                "rows for them or pass --num-scenarios/--scenarios to use fewer"
            )
        weights = {s.short_name: given[s.short_name] for s in scenarios}
    examples = instill_examples(scenarios, weights, per_scenario, seed)
    manifest = train_lora(
        subject,
        examples,
        out,
        config,
        description={
            "kind": "instill",
            "scenarios": len(scenarios),
            "per_scenario": per_scenario,
            "seed": seed,
        },
        resume=resume,
    )
    record = {"seed": seed, "scenarios": [s.to_json() for s in scenarios], "weights": weights}
    (Path(out) / INSTILLED_FILE).write_text(json.dumps(record, indent=2))
    return manifest


def report_examples(docs: Any) -> list[Example]:
    """Introspection prompts answered with each scenario's reference weights."""
    return [
        Example(tuple(introspection_messages(doc)), weights_answer(doc, doc["reference_weights"]))
        for doc in docs
        if not doc["degenerate"]
    ]


def train_reports(
    explainer: Any,
    out: Path,
    *,
    metadata: Mapping[str, Any],
    repeats: int,
    config: TrainingConfig,
    resume: bool = False,
) -> dict[str, Any]:
    """Train ``explainer`` to state the reference weights of the train-partition scenarios."""
    from harness_plugins.references import ReferencePipeline

    pipeline = ReferencePipeline("preferences", {**metadata, "partition": "train"})
    docs = pipeline.ensure(len(pipeline.questions()))
    examples = report_examples(docs) * repeats
    if not examples:
        raise IntrospectError(
            "train report: every train scenario had a degenerate fit; nothing to learn from"
        )
    record = pipeline.record
    manifest = train_lora(
        explainer,
        examples,
        out,
        config,
        description={
            "kind": "report",
            "reference": pipeline.options["reference"],
            "subject": record.subject,
            "subject_fingerprint": record.subject_fingerprint,
            "train_scenarios": len(docs),
            "repeats": repeats,
        },
        resume=resume,
    )
    adapter = explainer.peft or (
        pipeline.subject_spec.peft if pipeline.options["reference"] == "instilled" else None
    )
    if adapter and (Path(adapter) / INSTILLED_FILE).is_file():
        (Path(out) / INSTILLED_FILE).write_text((Path(adapter) / INSTILLED_FILE).read_text())
    return manifest
