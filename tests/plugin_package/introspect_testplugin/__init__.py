"""Explanation type ``next_token``: which token would the subject say next after a text?

Small on purpose: it shows the whole contract of an explanation type (questions,
references through the backend primitive, explainer messages, scoring) in one page.
"""

from __future__ import annotations

import hashlib
from typing import Any

from harness_plugins import hookimpl
from harness_plugins.explanation import ExplanationType, Metric, ReferenceContext, mean
from harness_plugins.options import Option

TEXTS = [
    "The capital of France is",
    "One, two, three,",
    "Monday, Tuesday,",
    "The sun rises in the",
    "Water is made of hydrogen and",
    "A, B, C,",
    "Red, green and",
    "The opposite of hot is",
    "Ten minus three equals",
    "The first month of the year is",
    "Cats and",
    "Once upon a",
]


class NextToken(ExplanationType):
    name = "next_token"
    version = "1"
    description = "Which token would the subject produce right after a short text?"
    options = (
        Option(
            "style", "brackets", "answer format the explainer is asked for", affects_reference=False
        ),
    )
    metrics = {"token_match": Metric(mean), "answered": Metric(mean)}
    stop_sequences = ("\n",)
    max_gen_tokens = 12

    def questions(self, options: dict[str, Any]) -> Any:
        import datasets

        rows = [
            {"question_id": f"text-{i}", "text": text}
            for i, text in enumerate(TEXTS)
            if (int(hashlib.sha256(f"text-{i}".encode()).hexdigest(), 16) % 100 < 50)
            == (options["partition"] == "test")
        ]
        return datasets.Dataset.from_list(rows[: options["max_docs"]])

    def build_references(self, questions: Any, context: ReferenceContext) -> Any:
        tokenizer = context.subject.tokenizer
        sequences = [tokenizer(text)["input_ids"] for text in questions["text"]]
        result = context.backend.forward(sequences, description="next_token: subject")
        tokens = [tokenizer.decode([int(i)]).strip() for i in result.last_logits.argmax(-1)]
        return questions.add_column("next_token", tokens).add_column(
            "target", [f"<<<{t}>>>" for t in tokens]
        )

    def explainer_messages(
        self, doc: dict[str, Any], options: dict[str, Any]
    ) -> list[dict[str, str]]:
        return [
            {
                "role": "user",
                "content": f"Which word comes right after this text: {doc['text']}\n"
                "Answer as <<<word>>>.",
            }
        ]

    def score(self, doc: dict[str, Any], response: str) -> dict[str, Any]:
        answered = "<<<" in response
        guess = response.split("<<<", 1)[-1].split(">>>", 1)[0].strip() if answered else ""
        return {"token_match": float(guess == doc["next_token"]), "answered": float(answered)}


@hookimpl
def introspect_register_explanation_types(register: Any) -> None:
    register(NextToken())
