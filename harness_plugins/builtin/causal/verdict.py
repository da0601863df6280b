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

from lm_eval.api.metrics import f1_score as lm_eval_f1

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
        # (gold, predicted) for lm-eval's f1 (bootstrapped stderr); unparsed counts as unchanged
        "changed_f1": [reference.changed, predicted is not None and predicted.changed],
        "valid": float(predicted is not None),
        "unchanged_rate": float(not reference.changed),
    }


def _f1_of_resamples(golds: Any, preds: Any, axis: int = -1) -> Any:
    """F1 of the "changed" class along ``axis`` (vectorised, for the bootstrap)."""
    import numpy as np

    tp = np.sum(golds & preds, axis=axis)
    wrong = np.sum(golds ^ preds, axis=axis)
    denominator = 2 * tp + wrong
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def changed_f1_stderr(pairs: Sequence[Sequence[Any]], iters: int = 1000) -> float:
    """Bootstrapped standard error of `changed_f1` (scipy's paired bootstrap, vectorised)."""
    import numpy as np
    from scipy.stats import bootstrap

    golds = np.array([bool(g) for g, _ in pairs])
    preds = np.array([bool(p) for _, p in pairs])
    result = bootstrap(
        (golds, preds),
        _f1_of_resamples,
        paired=True,
        vectorized=True,
        n_resamples=iters,
        method="percentile",
        random_state=1234,
    )
    return float(result.standard_error)


def changed_f1(pairs: Sequence[Sequence[Any]]) -> float:
    """F1 of the "changed" class over the run (lm-eval's ``f1_score``).

    Unparsed answers count as not "changed". lm-eval would bootstrap its f1 100,000
    times with scikit-learn (minutes); ``introspect_stderr`` gives it a vectorised
    bootstrap instead (see `harness_plugins.lm_eval_adapter.index.patch_stderr`).
    """
    if not pairs:
        return float("nan")
    return float(lm_eval_f1([(bool(g), bool(p)) for g, p in pairs]))


changed_f1.introspect_stderr = changed_f1_stderr  # type: ignore[attr-defined]


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
