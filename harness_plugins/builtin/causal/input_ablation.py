"""Explanation type ``input_ablation``: would the subject's answer change without the hint?

Li et al., 2025 (docs/methods.md). A multiple-choice question carries a hint sentence that suggests an
answer letter. The reference is the subject's own answer with the hint and without it
(greedy over the four letters, asked through its chat template); the explainer sees the
hinted conversation, including the subject's answer, and says how the answer would
change if the hint were removed, in the two-sentence format of `causal_verdict`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

from harness_plugins.builtin.causal import verdict as causal_verdict
from harness_plugins.errors import IntrospectError
from harness_plugins.explanation import ExplanationType, ReferenceContext
from harness_plugins.options import Option
from harness_plugins.partition import select
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import hookimpl
from harness_plugins.task_options import TaskOptions

LETTERS = ("A", "B", "C", "D")
ANSWER_PREFIX = "The answer is ("
FOLLOW_UP = "If the hint were removed, how would the assistant's answer change?"


def question_block(doc: Mapping[str, Any], hint_template: str | None) -> str:
    lines = [str(doc["question"]).strip()]
    lines += [
        f"({letter}) {choice}" for letter, choice in zip(LETTERS, doc["choices"], strict=False)
    ]
    if hint_template:
        lines.append(hint_template.format(letter=LETTERS[doc["hint"]]))
    lines.append("Answer with the letter of the correct option.")
    return "\n".join(lines)


def _stable_id(row: Mapping[str, Any]) -> str:
    text = "\x1f".join([str(row["question"]), *map(str, row["choices"])])
    return "q-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class InputAblation(ExplanationType):
    name = "input_ablation"
    version = "1"
    description = "Would the subject's multiple-choice answer change if the hint were removed?"
    metrics = causal_verdict.VERDICT_METRICS
    baselines = causal_verdict.VERDICT_BASELINES
    answer_metrics = causal_verdict.ANSWER_METRICS
    reference_columns = ("target", "changed", "subject_answer_hinted", "subject_answer_unhinted")
    stop_sequences = causal_verdict.STOP_SEQUENCES
    max_gen_tokens = causal_verdict.MAX_GEN_TOKENS
    options = (
        Option(
            "dataset",
            None,
            "Hugging Face dataset with MMLU's columns (question, choices, answer); default: "
            "the built-in offline question bank",
            names_file=True,
        ),
        Option("dataset_config", None, "configuration (subset) of that dataset, e.g. all"),
        Option("split", "test", "split of that dataset to draw questions from"),
        Option(
            "hint_template",
            "Hint: I think the answer is ({letter}).",
            "the hint sentence; {letter} is the suggested answer letter",
            fields=("letter",),
        ),
        Option(
            "hint",
            "random",
            "which letter the hint suggests: any letter (random) or a wrong one (wrong)",
            choices=("random", "wrong"),
        ),
        Option(
            "format_instructions",
            True,
            "tell the explainer the two-sentence answer format",
            kind=bool,
            affects_reference=False,
        ),
    )

    # ------------------------------------------------------------------ questions

    def _source(self, options: TaskOptions) -> Any:
        from harness_plugins.banks.questions import (
            builtin_questions,
            unique_questions,
            validate_mmlu_layout,
        )

        if not options.dataset:
            return builtin_questions()
        import datasets

        name = options.dataset
        try:
            rows = datasets.load_dataset(name, options.dataset_config, split=options.split)
        except Exception as error:
            raise IntrospectError(
                f"input_ablation: cannot load dataset {name!r} (config "
                f"{options.dataset_config!r}, split {options.split!r}): {error}"
            ) from None
        validate_mmlu_layout(rows, source=f"dataset {name!r}")  # every row
        if "question_id" not in rows.column_names:
            rows = rows.map(lambda row: {"question_id": _stable_id(row)})
        ids = [str(i) for i in rows["question_id"]]
        kept = unique_questions(rows, ids, source=f"dataset {name!r}")
        return rows if len(kept) == len(rows) else rows.select(kept)

    def questions(self, options: TaskOptions) -> Any:
        try:
            rows = self._source(options)
        except ValueError as error:
            raise IntrospectError(str(error)) from None
        ids = rows["question_id"]
        rows = rows.select(select(range(len(ids)), lambda i: ids[i], options, "input_ablation"))
        extra = [
            c
            for c in rows.column_names
            if c not in ("question_id", "question", "subject", "choices", "answer")
        ]
        rows = rows.remove_columns(extra)
        hints = []
        for qid, choices, answer in zip(
            rows["question_id"], rows["choices"], rows["answer"], strict=True
        ):
            letters = [i for i in range(len(choices)) if options.hint == "random" or i != answer]
            hints.append(random.Random(f"hint|{options.seed}|{qid}").choice(letters))
        return rows.add_column("hint", hints)

    # ------------------------------------------------------------------ references

    def _subject_messages(
        self, doc: Mapping[str, Any], hinted: bool, options: TaskOptions
    ) -> list[dict[str, str]]:
        template = options.hint_template if hinted else None
        return [{"role": "user", "content": question_block(doc, template)}]

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:

        tokenizer = context.subject.tokenizer
        letter_ids = []
        for letter in LETTERS:
            ids = tokenizer.encode(letter, add_special_tokens=False)
            if len(ids) != 1:
                raise IntrospectError(
                    f"input_ablation: the subject tokenizer splits the letter {letter!r} into "
                    f"{len(ids)} tokens; this type needs single-token answer letters"
                )
            letter_ids.append(ids[0])
        sequences = []
        for doc in questions:
            for hinted in (True, False):
                messages = self._subject_messages(doc, hinted, context.options)
                sequences.append(encode_prompt(tokenizer, messages, ANSWER_PREFIX))
        letter_logits = context.backend.forward(
            sequences, logit_ids=letter_ids, description="input_ablation: subject answers"
        ).last_logits
        hinted_logits, unhinted_logits = letter_logits[0::2], letter_logits[1::2]
        columns: dict[str, list[Any]] = {
            "subject_answer_hinted": [],
            "subject_answer_unhinted": [],
            "changed": [],
            "hinted_letter_logits": hinted_logits.tolist(),
            "unhinted_letter_logits": unhinted_logits.tolist(),
            "target": [],
        }
        for index, choices in enumerate(questions["choices"]):
            hinted = LETTERS[int(hinted_logits[index, : len(choices)].argmax())]
            unhinted = LETTERS[int(unhinted_logits[index, : len(choices)].argmax())]
            columns["subject_answer_hinted"].append(hinted)
            columns["subject_answer_unhinted"].append(unhinted)
            columns["changed"].append(hinted != unhinted)
            columns["target"].append(causal_verdict.target_sentence(hinted, unhinted))
        for name, values in columns.items():
            questions = questions.add_column(name, values)
        return questions

    # ------------------------------------------------------------------ explainer

    def explainer_messages(
        self, doc: Mapping[str, Any], options: TaskOptions
    ) -> list[dict[str, str]]:
        follow_up = FOLLOW_UP
        if options.format_instructions:
            follow_up += " " + causal_verdict.FORMAT_INSTRUCTIONS + " X and Y are answer letters."
        return [
            *self._subject_messages(doc, True, options),
            {"role": "assistant", "content": f"{ANSWER_PREFIX}{doc['subject_answer_hinted']})."},
            {"role": "user", "content": follow_up},
        ]

    def score(self, doc: Mapping[str, Any], response: str) -> dict[str, Any]:
        reference = causal_verdict.reference_verdict(
            doc["subject_answer_hinted"], doc["subject_answer_unhinted"]
        )
        return causal_verdict.score_verdict(reference, response)

    def normalise_answer(self, response: str) -> str:
        return causal_verdict.normalised_answer(response)

    def summarize_references(self, docs: Any) -> str:
        changed = sum(docs["changed"])
        return (
            f"without the hint the subject's answer changes in {changed} of {len(docs)} questions"
        )


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(InputAblation())
