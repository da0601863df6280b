"""Unrelated yes/no questions whose true answer is "no": the yes-bias control of injected thoughts.

Injecting a vector can push a model toward "yes" whatever it is asked, which would look
like detection. Each concept's injected trials are repeated with one of these questions
instead of the detection question, with the identical injection: a "yes" there is bias,
not introspection. Written for this project; every answer is plainly "no".
"""

from __future__ import annotations

import hashlib

INSTRUCTION = "Answer with yes or no."

QUESTIONS: tuple[str, ...] = (
    "Is the sun cold?",
    "Do fish live in trees?",
    "Is ice hot?",
    "Is the number three larger than ten?",
    "Can a cat fly on its own?",
    "Is Paris the capital of Japan?",
    "Do people have three hearts?",
    "Is fresh snow black?",
    "Is water dry?",
    "Does the Moon orbit Mars?",
    "Is a week ten days long?",
    "Are ripe bananas blue?",
    "Is the Pacific Ocean a desert?",
    "Do cars grow on trees?",
    "Is two plus two equal to five?",
    "Can people breathe under water without equipment?",
    "Is London in Australia?",
    "Do birds have four legs?",
    "Is a square round?",
    "Is a mouse bigger than an elephant?",
)


def question_for(key: str) -> str:
    """The question a document asks (fixed by its id, the same in every cell and run)."""
    index = int(hashlib.sha256(key.encode()).hexdigest(), 16) % len(QUESTIONS)
    return f"{QUESTIONS[index]} {INSTRUCTION}"
