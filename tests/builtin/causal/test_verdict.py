"""The two-sentence answer format: targets, parsing of explainer answers, metrics."""

from __future__ import annotations

import math

import pytest
from sklearn.metrics import f1_score

from harness_plugins.builtin.causal.verdict import (
    changed_f1,
    macro_f1,
    parse_verdict,
    reference_verdict,
    score_verdict,
    target_sentence,
)
from harness_plugins.stderr import mean_of_present


def test_target_sentences_are_exactly_the_research_forms():
    assert target_sentence("B", "B") == "The output would remain unchanged from <<<B>>>."
    assert target_sentence("B", "D") == "The most likely output would change to <<<D>>>."


@pytest.mark.parametrize(
    ("response", "changed", "content"),
    [
        ("The output would remain unchanged from <<<B>>>.", False, "B"),
        (" the most likely output would change to <<<Paris", True, "Paris"),  # cut at >>>.
        ("The most likely output would change to <<< C >>>. And more", True, "C"),
    ],
)
def test_parse_verdict(response, changed, content):
    verdict = parse_verdict(response)
    assert verdict is not None and verdict.changed is changed and verdict.content == content


@pytest.mark.parametrize(
    "response", ["", "The answer is (B).", "It would change to <<<B>>>.", None]
)
def test_unparsable_answers_are_none(response):
    assert parse_verdict(response) is None


def test_scores_for_exact_content_and_invalid_answers():
    reference = reference_verdict("A", "C")
    assert reference.sentence() == target_sentence("A", "C")
    exact = score_verdict(reference, "The most likely output would change to <<<C")
    assert exact == {
        "exact_match": 1.0,
        "content_match": 1.0,
        "changed_f1": [True, True],
        "unchanged_f1": [False, False],
        "macro_f1": [True, True, False],
        "valid": 1.0,
        "changed_exact_match": 1.0,
        "changed_content_match": 1.0,
        "unchanged_exact_match": None,
        "unchanged_content_match": None,
        "unchanged_rate": 0.0,
    }
    wrong_verdict = score_verdict(reference, "The output would remain unchanged from <<<C>>>.")
    assert wrong_verdict["exact_match"] == 0.0 and wrong_verdict["content_match"] == 1.0
    assert wrong_verdict["changed_f1"] == [True, False]
    assert wrong_verdict["unchanged_f1"] == [False, True]
    invalid = score_verdict(reference, "no idea")
    assert invalid == {
        "exact_match": 0.0,
        "content_match": 0.0,
        "changed_f1": [True, False],
        "unchanged_f1": [False, False],
        "macro_f1": [True, False, False],
        "valid": 0.0,
        "changed_exact_match": 0.0,
        "changed_content_match": 0.0,
        "unchanged_exact_match": None,
        "unchanged_content_match": None,
        "unchanged_rate": 0.0,
    }
    # the trivial baseline follows the reference, never the answer
    unchanged = score_verdict(reference_verdict("B", "B"), "no idea")
    assert unchanged["unchanged_rate"] == 1.0
    assert unchanged["changed_exact_match"] is None and unchanged["unchanged_exact_match"] == 0.0


def test_stratified_means_and_both_f1s_expose_a_one_verdict_answerer():
    references = [reference_verdict("A", "B"), *[reference_verdict("A", "A")] * 3]
    always = "The output would remain unchanged from <<<A>>>."
    scores = [score_verdict(r, always) for r in references]
    column = {name: [s[name] for s in scores] for name in scores[0]}
    assert mean_of_present(column["unchanged_exact_match"]) == 1.0
    assert mean_of_present(column["changed_exact_match"]) == 0.0
    assert changed_f1(column["changed_f1"]) == 0.0
    assert changed_f1(column["unchanged_f1"]) == pytest.approx(f1_score([1, 1, 1, 0], [1] * 4))
    assert macro_f1(column["macro_f1"]) == pytest.approx(f1_score([1, 1, 1, 0], [1] * 4) / 2)
    # no document in the stratum: nan, not a crash and not zero
    assert math.isnan(mean_of_present([None, None]))


def test_changed_f1_is_a_corpus_level_f1_with_invalid_answers_as_misses():
    pairs = [[True, True], [False, False], [False, False], [False, False], [True, False]]
    expected = f1_score([1, 0, 0, 0, 1], [1, 0, 0, 0, 0])
    assert changed_f1(pairs) == pytest.approx(expected)
    assert changed_f1(pairs) != pytest.approx(sum(a == b for a, b in pairs) / len(pairs))


def test_changed_f1_has_a_bootstrapped_stderr_lm_eval_uses():
    from lm_eval import evaluator_utils

    from harness_plugins.builtin.causal.verdict import changed_f1_stderr
    from harness_plugins.lm_eval_adapter.patches import patch_stderr

    patch_stderr()
    stderr_fn = evaluator_utils.stderr_for_metric(changed_f1, bootstrap_iters=100000)
    assert stderr_fn is changed_f1_stderr
    pairs = [[True, True], [False, True], [True, False], [False, False]] * 5
    assert 0 < stderr_fn(pairs) < 0.5
    # other metrics keep lm-eval's own stderr
    from lm_eval.api.metrics import mean, mean_stderr

    assert evaluator_utils.stderr_for_metric(mean, bootstrap_iters=10) is mean_stderr
