"""Calibration: constant-answer ceilings, top answer share, degenerate runs, and the control
explainers, on hand-made documents of the causal types (no model: the references are given)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from lm_eval.api.instance import Instance

from harness_plugins.builtin.causal.activation_patching import ActivationPatching
from harness_plugins.builtin.causal.input_ablation import InputAblation
from harness_plugins.builtin.causal.verdict import ANSWER_METRICS, target_sentence
from harness_plugins.calibration import (
    DEGENERATE_SHARE,
    best_constant,
    calibration_metrics,
    calibration_values,
    ceiling_name,
    constant_scores,
    degenerate_reason,
    reference_view,
    top_answer_share,
)
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.control import ControlLM

# (hinted, unhinted): 6 unchanged "A", 2 unchanged "B", 3 changed to "C", 1 changed to "D"
PAIRS = [("A", "A")] * 6 + [("B", "B")] * 2 + [("A", "C")] * 3 + [("B", "D")]
ABLATION = InputAblation()


def _docs(pairs=PAIRS):
    return [
        {
            "question_id": f"q{i}",
            "subject_answer_hinted": hinted,
            "subject_answer_unhinted": unhinted,
            "changed": hinted != unhinted,
            "target": target_sentence(hinted, unhinted),
        }
        for i, (hinted, unhinted) in enumerate(pairs)
    ]


def _aggregate(explanation, docs, answers):
    """Score answers as lm-eval would: the type's score, then each metric's aggregation."""
    rows = [explanation.score(doc, answer) for doc, answer in zip(docs, answers, strict=True)]
    return {m: explanation.metrics[m].aggregate([r[m] for r in rows]) for m in rows[0]}


def _requests(docs, task="introspect_input_ablation"):
    return [
        Instance("generate_until", doc, ("prompt", {}), 0, metadata=(task, i, 1))
        for i, doc in enumerate(docs)
    ]


def test_the_constant_ceiling_is_the_best_score_of_any_single_reference_answer():
    docs = _docs()
    views = [reference_view(ABLATION, d) for d in docs]
    assert set(views[0]) == set(ABLATION.reference_columns)
    scored = dict(constant_scores(ABLATION, views, "content_match"))
    # "unchanged from A" matches the content of the 6 "A" documents only
    assert scored[target_sentence("A", "A")] == pytest.approx(6 / 12)
    assert scored[target_sentence("A", "C")] == pytest.approx(3 / 12)
    answer, ceiling = best_constant(ABLATION, views, "content_match")
    assert answer == target_sentence("A", "A") and ceiling == pytest.approx(0.5)
    # changed_f1 of a constant "changed" verdict: precision 4/12, recall 1
    _, f1 = best_constant(ABLATION, views, "changed_f1")
    assert f1 == pytest.approx(2 * (4 / 12) / (1 + 4 / 12))
    # within a stratum a constant can be perfect: the stratified metrics alone prove nothing
    assert best_constant(ABLATION, views, "unchanged_exact_match")[1] == pytest.approx(6 / 8)


def test_the_ceiling_metric_aggregates_the_views_lm_eval_collects():
    docs = _docs()
    metrics = calibration_metrics(ABLATION, ABLATION.metrics)
    assert set(metrics) == {"top_answer_share", *(ceiling_name(m) for m in ANSWER_METRICS)}
    values = [calibration_values(ABLATION, d, ["anything"], ABLATION.metrics) for d in docs]
    name = ceiling_name("exact_match")
    assert metrics[name].aggregate([v[name] for v in values]) == pytest.approx(0.5)
    assert values[0]["top_answer_share"] == ["anything"]


def test_top_answer_share_counts_normalised_answers():
    same = [
        "The output would remain unchanged from <<<A>>>.",
        "the output would remain unchanged from <<<A",
    ]
    assert ABLATION.normalise_answer(same[0]) == ABLATION.normalise_answer(same[1])
    answers = [[ABLATION.normalise_answer(a)] for a in [*same, "x", "y"]]
    assert top_answer_share(answers) == pytest.approx(0.5)
    assert math.isnan(top_answer_share([[], []]))


def test_a_one_sentence_explainer_is_degenerate_and_an_informed_one_is_not():
    docs = _docs()
    constant = target_sentence("A", "A")
    scores = _aggregate(ABLATION, docs, [constant] * len(docs))
    views = [reference_view(ABLATION, d) for d in docs]
    scores |= {ceiling_name(m): best_constant(ABLATION, views, m)[1] for m in ANSWER_METRICS}
    scores["top_answer_share"] = 1.0
    assert degenerate_reason(ABLATION, scores) == f"top answer share 1.00 >= {DEGENERATE_SHARE}"
    # below the share threshold but no metric above its ceiling: still degenerate
    scores["top_answer_share"] = 0.5
    assert degenerate_reason(ABLATION, scores) == "no answer metric beats its constant ceiling"
    # the references themselves beat every constant
    oracle = _aggregate(ABLATION, docs, [d["target"] for d in docs])
    oracle |= {k: v for k, v in scores.items() if k.endswith("_constant_ceiling")}
    oracle["top_answer_share"] = 0.5
    assert degenerate_reason(ABLATION, oracle) is None


def test_the_oracle_control_scores_one_on_every_answer_metric():
    docs = _docs()
    answers = ControlLM(control="oracle").generate_until(_requests(docs))
    scores = _aggregate(ABLATION, docs, answers)
    assert {m: scores[m] for m in ANSWER_METRICS} == {m: 1.0 for m in ANSWER_METRICS}


def test_the_shuffled_oracle_keeps_the_answer_distribution_and_its_expectation():
    docs = _docs() * 5  # 60 documents
    answers = ControlLM(control="shuffled", control_seed=3).generate_until(_requests(docs))
    assert Counter(answers) == Counter(d["target"] for d in docs)
    assert answers != [d["target"] for d in docs]
    scores = _aggregate(ABLATION, docs, answers)
    # a uniform permutation gives document i the content of document j with probability 1/n
    contents = Counter(d["subject_answer_unhinted"] for d in docs)
    expected = sum(c * c for c in contents.values()) / len(docs) ** 2
    values = [ABLATION.score(d, a)["content_match"] for d, a in zip(docs, answers, strict=True)]
    stderr = math.sqrt(expected * (1 - expected) / len(docs))
    assert abs(scores["content_match"] - expected) <= 2 * stderr, (values, expected)
    # another seed, another permutation
    other = ControlLM(control="shuffled", control_seed=4).generate_until(_requests(docs))
    assert other != answers


def test_the_constant_control_answers_the_best_constant_and_scores_the_ceiling():
    docs = _docs()
    views = [reference_view(ABLATION, d) for d in docs]
    for metric in ("exact_match", "content_match", "changed_f1"):
        model = ControlLM(control="constant", control_metric=metric)
        answers = model.generate_until(_requests(docs))
        assert len(set(answers)) == 1
        measured = _aggregate(ABLATION, docs, answers)[metric]
        assert measured == pytest.approx(best_constant(ABLATION, views, metric)[1])


def test_the_control_model_refuses_what_it_cannot_answer():
    with pytest.raises(IntrospectError, match="control='nope'"):
        ControlLM(control="nope")
    docs = _docs()
    with pytest.raises(IntrospectError, match="control_metric='valid'"):
        ControlLM(control="constant", control_metric="valid").generate_until(_requests(docs))
    with pytest.raises(IntrospectError, match="no single reference answer"):
        ControlLM().generate_until(_requests(docs, task="introspect_patchscope_next_token"))
    with pytest.raises(IntrospectError, match="not an introspect task"):
        ControlLM().generate_until(_requests(docs, task="hellaswag"))


def test_activation_patching_scores_from_its_before_and_after_columns():
    patching = ActivationPatching()
    doc = {"before": "Paris", "after": "Rome", "changed": True, "target": "ignored"}
    # the structured columns define the reference, not the sentence in `target`
    scores = patching.score(doc, "The most likely output would change to <<<Rome>>>.")
    assert scores["exact_match"] == 1.0 and scores["changed_content_match"] == 1.0
