"""The two-sentence answer format of causal explanations, its parser and its metrics.

Input ablation and activation patching ask the same thing: after an intervention, does
the subject's output stay the same or change, and to what? The reference answer is one
of exactly two sentences (docs/methods.md, causal types):

    The output would remain unchanged from <<<X>>>.
    The most likely output would change to <<<Y>>>.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness_plugins.explanation import Metric, mean

UNCHANGED = "The output would remain unchanged from <<<{}>>>."
CHANGED = "The most likely output would change to <<<{}>>>."

# Greedy, at most 50 tokens, stop at a newline or at the end of the answer.
STOP_SEQUENCES = ("\n", ">>>.")
MAX_GEN_TOKENS = 50

FORMAT_INSTRUCTIONS = (
    'Answer with exactly one sentence: "The output would remain unchanged from <<<X>>>." '
    'if it would stay X, or "The most likely output would change to <<<Y>>>." if it would '
    "become Y."
)

_VERDICT = re.compile(
    r"^\s*the\s+(?P<form>output\s+would\s+remain\s+unchanged\s+from|most\s+likely\s+output"
    r"\s+would\s+change\s+to)\s*<<<(?P<content>.*?)(?:>>>\.?|$)",
    re.IGNORECASE | re.DOTALL,
)


def target_sentence(before: str, after: str) -> str:
    """The reference answer for an output that goes from ``before`` to ``after``."""
    return UNCHANGED.format(before) if before == after else CHANGED.format(after)


@dataclass(frozen=True)
class Verdict:
    changed: bool
    content: str


def parse_verdict(response: str) -> Verdict | None:
    """The verdict in an explainer answer, or None when it is not in the two-sentence form.

    lm-eval cuts generations at the stop sequence ``>>>.``, so an answer that ends right
    after ``<<<X`` is complete.
    """
    match = _VERDICT.match(response or "")
    if match is None:
        return None
    changed = match.group("form").lower().startswith("most")
    return Verdict(changed=changed, content=match.group("content").strip())


def _normalise(text: str) -> str:
    text = " ".join((text or "").split()).lower()
    for tail in (">>>.", ">>>"):
        if text.endswith(tail):
            text = text[: -len(tail)]
    return text


def score_verdict(target: str, response: str) -> dict[str, Any]:
    """exact_match, content_match, valid, the (reference, predicted) changed pair, and the
    trivial baseline ``unchanged_rate``: 1 when the reference says "unchanged", so its mean
    is what always answering "unchanged" (with the right X) scores on exact and content
    match (its changed_f1 is 0). Skill is what a score adds to it."""
    reference = parse_verdict(target)
    if reference is None:
        raise ValueError(f"reference {target!r} is not in the two-sentence form")
    predicted = parse_verdict(response)
    return {
        "exact_match": float(_normalise(response) == _normalise(target)),
        "content_match": float(
            predicted is not None and predicted.content.lower() == reference.content.lower()
        ),
        "changed_f1": [reference.changed, None if predicted is None else predicted.changed],
        "valid": float(predicted is not None),
        "unchanged_rate": float(not reference.changed),
    }


def changed_f1(pairs: Sequence[Sequence[Any]]) -> float:
    """F1 of the "changed" class over the run; unparsed answers count as not "changed"."""
    from sklearn.metrics import f1_score

    if not pairs:
        return float("nan")
    truth = [bool(reference) for reference, _ in pairs]
    predicted = [bool(guess) for _, guess in pairs]
    return float(f1_score(truth, predicted, pos_label=True, zero_division=0.0))


# What always answering "unchanged" scores; changed_f1's trivial value is 0.
VERDICT_BASELINES: dict[str, str | float] = {
    "exact_match": "unchanged_rate",
    "content_match": "unchanged_rate",
    "changed_f1": 0.0,
}

VERDICT_METRICS = {
    "exact_match": Metric(mean),
    "content_match": Metric(mean),
    "changed_f1": Metric(changed_f1),
    "valid": Metric(mean),
    "unchanged_rate": Metric(mean, higher_is_better=False),
}
