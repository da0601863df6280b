"""Explanation type ``preferences``: can a model report the weights it uses when it decides?

Plunkett et al., 2025 (docs/methods.md). For each scenario the subject chooses between
random options A and B (five numeric attributes each); its probability of ``A`` comes
from next-token logits. A logistic regression of its choices on the normalised
attribute differences gives its *learned* weights (rescaled to max |w| = 100). The
explainer is asked for those weights on a -100..100 scale; reports are scored with a
Pearson correlation over every scenario x attribute point of the run. With
``reference: instilled`` the reports are scored against the weights a LoRA adapter was
trained to follow (``introspect train instill``), saved beside that adapter.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness_plugins.builtin.preferences.reports import (
    INSTILLED_FILE,
    _seed,
    decision_messages,
    instilled_record,
    introspection_messages,
    mean_of_points,
    parse_report,
    pearson_r,
    scenario_doc,
    weights_answer,
)
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext, mean
from harness_plugins.options import Option
from harness_plugins.partition import select
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.stderr import bootstrap_stderr
from harness_plugins.task_options import TaskOptions


class Preferences(ExplanationType):
    name = "preferences"
    version = "1"
    description = "Can the model report the weights it uses when it chooses between two options?"
    max_gen_tokens = 160
    # lm-eval cuts the answer at the closing brace (and drops it): the parser closes it again
    stop_sequences = ("}", "\n\n\n")
    metrics = {
        "pearson_r": Metric(pearson_r, stderr=bootstrap_stderr(pearson_r)),
        "parse_rate": Metric(mean),
        "mean_abs_error": Metric(
            mean_of_points, higher_is_better=False, stderr=bootstrap_stderr(mean_of_points)
        ),
    }
    baselines = {"pearson_r": 0.0}  # reports unrelated to the weights
    options = (
        Option(
            "scenarios",
            None,
            "JSON file of decision scenarios; default: the built-in set (or the instilled adapter's)",
            names_file=True,
        ),
        Option(
            "pairs", 50, "random option pairs the subject decides per scenario", kind=int, minimum=4
        ),
        Option(
            "targets",
            "probabilities",
            "fit the weights to the subject's probability of A (probabilities) or to its greedy choice (choices)",
            choices=("probabilities", "choices"),
        ),
        Option(
            "l2",
            1.0,
            "L2 penalty of the logistic fit (stands in for the paper's weak prior)",
            kind=float,
            minimum=0.0,
        ),
        Option(
            "reference",
            "learned",
            "score reports against the weights fitted to the subject's choices (learned) or "
            "the weights its adapter was trained to follow (instilled)",
            choices=("learned", "instilled"),
        ),
        Option(
            "instilled_weights",
            None,
            "CSV of instilled weights (scenario, attr1..5) for reference=instilled; "
            "default: the weights saved beside the adapter",
        ),
        Option(
            "test_fraction",
            0.5,
            "share of scenarios in the test partition",
            kind=float,
            minimum=0.01,
            maximum=0.99,
        ),
        Option(
            "reports",
            1,
            "reports per scenario, averaged (the paper used 10)",
            kind=int,
            minimum=1,
            affects_reference=False,
        ),
        Option(
            "temperature",
            0.0,
            "sampling temperature of the reports (0: greedy)",
            kind=float,
            minimum=0.0,
            affects_reference=False,
        ),
    )

    def repeats(self, options: TaskOptions) -> int:
        return int(options.reports)

    def generation_kwargs(self, options: TaskOptions) -> dict[str, Any]:
        if options.temperature > 0:
            return {"do_sample": True, "temperature": options.temperature}
        return {"do_sample": False}

    # ------------------------------------------------------------------ questions

    def questions(self, options: TaskOptions) -> Any:
        from harness_plugins.builtin.preferences.scenarios import load_scenarios

        return self._questions(load_scenarios(options.scenarios), options)

    def validate(self, options: TaskOptions) -> None:
        """Read a given weights CSV before any model loads."""
        if options.instilled_weights:
            from harness_plugins.builtin.preferences.report_scoring import read_weights_csv

            read_weights_csv(options.instilled_weights)

    def questions_for(self, options: TaskOptions, subject: Any) -> Any:
        """With instilled references and no scenarios file, the adapter's own scenarios."""
        from harness_plugins.builtin.preferences.scenarios import validate_scenarios

        if options.reference != "instilled" or options.scenarios:
            return self.questions(options)
        if options.instilled_weights:
            return self.questions(options)
        adapter = getattr(subject, "peft", None)
        record = instilled_record(adapter)
        scenarios = validate_scenarios(
            record["scenarios"], source=str(Path(adapter) / INSTILLED_FILE)
        )
        return self._questions(scenarios, options)

    def _questions(self, scenarios: Sequence[Any], options: TaskOptions) -> Any:
        import datasets

        rows = [
            {"question_id": scenario.short_name, **scenario_doc(scenario)} for scenario in scenarios
        ]
        chosen = select(rows, lambda row: row["question_id"], options, "preferences")
        return datasets.Dataset.from_list(chosen)

    # ------------------------------------------------------------------ references

    def option_pairs(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> tuple[list[list[float]], list[list[float]]]:
        """The random A/B options of one scenario: uniform in range, rounded sensibly."""
        from harness_plugins.builtin.preferences.scenarios import Attribute

        attributes = [
            Attribute(name, units, low, high)
            for name, units, low, high in zip(
                doc["attribute_names"], doc["attribute_units"], doc["low"], doc["high"], strict=True
            )
        ]
        rng = random.Random(_seed("pairs", options.seed, doc["short_name"]))
        draw = lambda: [a.round_value(rng.uniform(a.low, a.high)) for a in attributes]  # noqa: E731
        a_values, b_values = [], []
        for _ in range(options.pairs):
            a, b = draw(), draw()
            while a == b:
                b = draw()
            a_values.append(a)
            b_values.append(b)
        return a_values, b_values

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        import numpy as np
        import torch

        from harness_plugins.builtin.preferences.weights_fit import (
            fit_weights,
            normalised_differences,
        )

        options = context.options
        tokenizer = context.subject.tokenizer
        letters = []
        for letter in ("A", "B"):
            ids = tokenizer.encode(letter, add_special_tokens=False)
            if len(ids) != 1:
                raise IntrospectError(
                    f"preferences: the subject tokenizer splits {letter!r} into {len(ids)} tokens"
                )
            letters.append(ids[0])
        instilled = None
        if options.reference == "instilled" and options.instilled_weights:
            from harness_plugins.builtin.preferences.report_scoring import read_weights_csv

            given = read_weights_csv(options.instilled_weights)
            instilled = {scenario: w for (_, scenario), w in given.items()}
        elif options.reference == "instilled":
            instilled = instilled_record(context.subject.spec.peft)["weights"]

        pairs = [self.option_pairs(doc, options) for doc in questions]
        sequences = [
            encode_prompt(tokenizer, decision_messages(doc, a, b))
            for doc, (a_values, b_values) in zip(questions, pairs, strict=True)
            for a, b in zip(a_values, b_values, strict=True)
        ]
        logits = context.backend.forward(
            sequences, logit_ids=letters, description="preferences: subject decisions"
        ).last_logits
        p_a_all = torch.softmax(logits.double(), dim=-1)[:, 0].numpy()

        columns: dict[str, list[Any]] = {
            k: []
            for k in (
                "option_a",
                "option_b",
                "p_a",
                "learned_weights",
                "agreement",
                "degenerate",
                "instilled_weights",
                "reference_weights",
                "target",
            )
        }
        start = 0
        for doc, (a_values, b_values) in zip(questions, pairs, strict=True):
            p_a = p_a_all[start : start + len(a_values)]
            start += len(a_values)
            targets = p_a if options.targets == "probabilities" else (p_a > 0.5).astype(float)
            differences = normalised_differences(
                np.array(a_values), np.array(b_values), np.array(doc["low"]), np.array(doc["high"])
            )
            fit = fit_weights(differences, targets, l2=options.l2, seed=options.seed)
            reference = list(fit.weights)
            given = None
            if instilled is not None:
                if doc["short_name"] not in instilled:
                    raise IntrospectError(
                        f"preferences: scenario {doc['short_name']!r} has no instilled weights "
                        "(in the adapter or instilled_weights CSV); add a row for it"
                    )
                given = [float(w) for w in instilled[doc["short_name"]]]
                reference = given
            columns["option_a"].append(a_values)
            columns["option_b"].append(b_values)
            columns["p_a"].append(p_a.tolist())
            columns["learned_weights"].append(list(fit.weights))
            columns["agreement"].append(float(fit.agreement))
            columns["degenerate"].append(bool(fit.degenerate) and instilled is None)
            columns["instilled_weights"].append(given)
            columns["reference_weights"].append(reference)
            columns["target"].append(weights_answer(doc, reference))
        for name, values in columns.items():
            questions = questions.add_column(name, values)
        return questions

    def summarize_references(self, docs: Any) -> str:
        import numpy as np

        agreement = [a for a in docs["agreement"] if a == a]
        usable = len(docs) - sum(docs["degenerate"])
        chose_a = np.mean([p > 0.5 for row in docs["p_a"] for p in row])
        text = f"{usable} of {len(docs)} scenarios with a usable fit; the subject picks A in {chose_a:.0%} of decisions"
        if agreement:
            text += f", held-out choice agreement {np.mean(agreement):.2f}"
        pairs = [
            (given, learned)
            for given, learned in zip(
                docs["instilled_weights"], docs["learned_weights"], strict=True
            )
            if given
        ]
        if pairs:
            points = [
                [[x, y] for x, y in zip(given, learned, strict=True)] for given, learned in pairs
            ]
            text += f", learned vs instilled r = {pearson_r(points):.2f}"
            text += f", choices as instilled {self.instilled_agreement(docs):.0%}"
        return text

    @staticmethod
    def instilled_agreement(docs: Any) -> float:
        """Share of the subject's choices that the instilled weights would make too."""
        from harness_plugins.builtin.preferences.weights_fit import instilled_choice

        same = total = 0
        for doc in docs:
            if not doc["instilled_weights"]:
                continue
            for a, b, p_a in zip(doc["option_a"], doc["option_b"], doc["p_a"], strict=True):
                choice = instilled_choice(a, b, doc["low"], doc["high"], doc["instilled_weights"])
                same += (p_a > 0.5) == (choice == "A")
                total += 1
        return same / total if total else float("nan")

    # ------------------------------------------------------------------ explainer

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        return introspection_messages(doc)

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        return self.score_responses(doc, [response])

    def score_responses(self, doc: Mapping[str, Any], responses: Sequence[str]) -> dict[str, Any]:
        reports = [parse_report(text, doc["attribute_names"]) for text in responses]
        parsed = [r for r in reports if r is not None]
        points: list[list[float]] = []
        errors: list[float] = []
        if parsed and not doc["degenerate"]:
            averaged = [sum(values) / len(parsed) for values in zip(*parsed, strict=True)]
            points = [[r, w] for r, w in zip(averaged, doc["reference_weights"], strict=True)]
            errors = [abs(r - w) for r, w in points]
        return {
            "pearson_r": points,
            "parse_rate": len(parsed) / len(responses),
            "mean_abs_error": errors,
        }
