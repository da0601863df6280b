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
from harness_plugins.stderr import (
    bootstrap_stderr,
    mean_of_present,
    mean_of_present_stderr,
)

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


@dataclass(frozen=True)
class Verdict:
    changed: bool
    content: str

    def sentence(self) -> str:
        """The one sentence that states this verdict."""
        return (CHANGED if self.changed else UNCHANGED).format(self.content)


def target_sentence(before: str, after: str) -> str:
    """The reference answer for an output that goes from ``before`` to ``after``."""
    return reference_verdict(before, after).sentence()


def reference_verdict(before: str, after: str) -> Verdict:
    """The reference for an output that goes from ``before`` to ``after``, from those columns."""
    return Verdict(changed=before != after, content=after)


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


def normalised_answer(response: str) -> str:
    """The answer as exact match compares it: what `top_answer_share` counts."""
    return _normalise(response)


def _in_stratum(value: float, applies: bool) -> float | None:
    return value if applies else None


def score_verdict(reference: Verdict, response: str) -> dict[str, Any]:
    """Per-document values of every causal metric for ``response`` against ``reference``.

    exact_match, content_match and valid; the (reference, predicted) pairs of the F1 of
    each verdict; the match metrics again on the stratum the document belongs to
    (``changed_*`` when the reference output changes, ``unchanged_*`` when it stays; None
    outside it), which is what exposes an explainer that gives one verdict to everything;
    and ``unchanged_rate``, 1 when the reference says "unchanged" (the mean is what always
    answering "unchanged" with the right X scores on exact and content match).
    """
    predicted = parse_verdict(response)
    exact = float(_normalise(response) == _normalise(reference.sentence()))
    content = float(
        predicted is not None and predicted.content.lower() == reference.content.lower()
    )
    said_changed = predicted is not None and predicted.changed
    said_unchanged = predicted is not None and not predicted.changed
    return {
        "exact_match": exact,
        "content_match": content,
        # (gold, predicted) for lm-eval's f1 (bootstrapped stderr); unparsed is neither verdict
        "changed_f1": [reference.changed, said_changed],
        "unchanged_f1": [not reference.changed, said_unchanged],
        "macro_f1": [reference.changed, said_changed, said_unchanged],
        "valid": float(predicted is not None),
        "changed_exact_match": _in_stratum(exact, reference.changed),
        "changed_content_match": _in_stratum(content, reference.changed),
        "unchanged_exact_match": _in_stratum(exact, not reference.changed),
        "unchanged_content_match": _in_stratum(content, not reference.changed),
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

    Unparsed answers count as not "changed"; with no document in the class, neither among
    the references nor among the answers, F1 is undefined (nan). lm-eval would bootstrap its f1 100,000
    times with scikit-learn (minutes); the metric declares a vectorised bootstrap instead.
    """
    if not any(bool(g) or bool(p) for g, p in pairs):
        return float("nan")  # no reference and no answer in the class: F1 is undefined
    return float(lm_eval_f1([(bool(g), bool(p)) for g, p in pairs]))


def macro_f1(triples: Sequence[Sequence[Any]]) -> float:
    """Mean of the F1 of "changed" and of "unchanged" (each over the run)."""
    if not triples:
        return float("nan")
    changed = [(g, c) for g, c, _ in triples]
    unchanged = [(not g, u) for g, _, u in triples]
    return (changed_f1(changed) + changed_f1(unchanged)) / 2


# What always answering "unchanged" scores; changed_f1's trivial value is 0.
VERDICT_BASELINES: dict[str, str | float] = {
    "exact_match": "unchanged_rate",
    "content_match": "unchanged_rate",
    "changed_f1": 0.0,
}

VERDICT_METRICS = {
    "exact_match": Metric(mean),
    "content_match": Metric(mean),
    "changed_f1": Metric(changed_f1, stderr=changed_f1_stderr),
    "valid": Metric(mean),
    "unchanged_f1": Metric(changed_f1, stderr=changed_f1_stderr),
    "macro_f1": Metric(macro_f1, stderr=bootstrap_stderr(macro_f1)),
    "changed_exact_match": Metric(mean_of_present, stderr=mean_of_present_stderr),
    "changed_content_match": Metric(mean_of_present, stderr=mean_of_present_stderr),
    "unchanged_exact_match": Metric(mean_of_present, stderr=mean_of_present_stderr),
    "unchanged_content_match": Metric(mean_of_present, stderr=mean_of_present_stderr),
    "unchanged_rate": Metric(mean, higher_is_better=False),
}

ANSWER_METRICS = (
    "exact_match",
    "content_match",
    "changed_f1",
    "unchanged_f1",
    "macro_f1",
    "changed_exact_match",
    "changed_content_match",
    "unchanged_exact_match",
    "unchanged_content_match",
)
"""The metrics of the written answer alone: what a constant answer can be scored on."""
