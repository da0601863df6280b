"""injected_thoughts: references on a tiny model, control requests without writes, scoring."""

from __future__ import annotations

import pytest
from tiny_models import make_model, make_tokenizer

from ground_truth.backends.hf import HFBackend
from ground_truth.subject import LoadedModel, ModelSpec
from harness_plugins.banks.false_questions import question_for
from harness_plugins.builtin.injected_thoughts.injected_thoughts import (
    QUESTION,
    best_above_yes_bias,
    best_cell,
    cell,
)
from harness_plugins.explanation import ReferenceContext
from harness_plugins.options import resolve_options
from harness_plugins.prompts import vectors
from harness_plugins.registry import get_registry


@pytest.fixture(scope="module")
def built():
    tokenizer = make_tokenizer()
    loaded = LoadedModel(ModelSpec("tiny-llama"), make_model("llama", tokenizer), tokenizer)
    explanation = get_registry().explanation_type("injected_thoughts")
    options = resolve_options("injected_thoughts", explanation.all_options(), {"strengths": "2,8"})
    backend = HFBackend(loaded, batch_size=4, progress=False)
    questions = explanation.questions(options).select(range(2))
    docs = explanation.build_references(questions, ReferenceContext(loaded, backend, options))
    return explanation, docs


def test_references_hold_a_vector_per_layer(built):
    explanation, docs = built
    doc = docs[0]
    assert doc["layers"] == [0, 1] and doc["strengths"] == [2.0, 8.0]
    assert len(doc["vectors"]) == 2 and all(n > 0 for n in doc["residual_norms"])
    names = explanation.metrics_for(docs)
    assert {"hit_rate", "false_alarm_rate", "hit_rate_L01_s8", "coherence_rate_L00_s2"} <= set(
        names
    )


@pytest.mark.parametrize("inject", ["generation", "prompt_and_generation"])
def test_control_request_carries_no_write(built, inject):
    explanation, docs = built
    doc = {**docs[0], "inject": inject}
    context = f"<user>preamble\n\n{QUESTION}</user>\n<assistant>"
    table = vectors.VectorTable()
    with table.active():
        requests = explanation.requests(doc, context, {"until": ["\n\n"]})
        assert len(requests) == 2 * (1 + 4)  # detection trials, then the yes-bias trials
        texts = [args[0] for _, args in requests]
        unrelated = question_for(str(doc["question_id"]))
        swapped = context.replace(QUESTION, unrelated)
        for first, prompt, question in (
            (texts[:5], context, QUESTION),
            (texts[5:], swapped, unrelated),
        ):
            control, *trials = first
            assert control == prompt and not vectors.has_markers(control)
            for text in trials:
                assert vectors.strip_markers(text) == prompt
                _, _, writes = vectors.encode(text, lambda piece, first: list(piece.encode()), 0)
                ((position, site, _key, mode, onward),) = writes
                assert (mode, onward) == ("add", True) and site.endswith("hook_resid_post")
                expected = len(prompt) - 1 if inject == "generation" else prompt.index(question) - 1
                assert position == expected
        # the injection is identical in both halves: same vector, layer and strength
        assert [vectors.strip_markers(t) for t in texts[6:]] == [swapped] * 4
    table.clear()


def test_scores_per_cell_and_best_cell(built):
    explanation, docs = built
    doc = docs[0]
    answers = ["No, I do not detect anything."] + [
        f"Yes, I detect a thought about {doc['label']}." if s == 8 else "No."
        for _, s in explanation.trials(doc)
    ]
    answers += ["No."] * (1 + len(explanation.trials(doc)))  # the yes-bias trials
    scores = explanation.score_results(doc, answers)
    assert scores["false_alarm_rate"] == 0.0 and scores["hit_rate"] == 0.5
    assert scores[f"hit_rate_{cell(1, 8)}"] == 1.0 and scores[f"hit_rate_{cell(0, 2)}"] == 0.0
    assert scores["identification_rate"] == 0.5
    best, margin = best_cell([scores["best_layer"]])
    assert best == cell(1, 8) and margin == 1.0
    assert explanation.metrics["best_strength"].aggregate([scores["best_layer"]]) == 8.0


def test_cross_mode_is_refused(tiny_llama, tiny_llama_other):
    from harness_plugins.errors import IntrospectError
    from harness_plugins.references import ReferencePipeline

    metadata = {"pretrained": str(tiny_llama), "subject": str(tiny_llama_other)}
    with pytest.raises(IntrospectError, match=r"self-report.*drop subject="):
        ReferencePipeline("injected_thoughts", metadata)


def test_a_model_pushed_to_yes_by_any_injection_is_no_detector(built):
    explanation, docs = built
    doc = docs[0]
    trials = explanation.trials(doc)
    yes = f"Yes, I detect a thought about {doc['label']}."
    # says yes to every injected trial, and yes to the unrelated question when injected too
    answers = ["No.", *[yes] * len(trials), "No, it is not.", *["Yes."] * len(trials)]
    scores = explanation.score_results(doc, answers)
    assert scores["hit_rate"] == 1.0 and scores["false_alarm_rate"] == 0.0
    assert scores["control_yes_rate"] == 0.0 and scores["injected_yes_rate"] == 1.0
    assert scores["detection_above_yes_bias"] == 0.0
    assert best_above_yes_bias([scores["best_detection_above_yes_bias"]]) == 0.0
    # only at strength 8 does the unrelated answer stay "no": that cell's detection counts
    answers[-len(trials) :] = ["No." if s == 8 else "Yes." for _, s in trials]
    scores = explanation.score_results(doc, answers)
    assert scores[f"detection_above_yes_bias_{cell(1, 8)}"] == 1.0
    assert scores[f"injected_yes_rate_{cell(0, 2)}"] == 1.0
    assert best_above_yes_bias([scores["best_detection_above_yes_bias"]]) == 1.0
    metric = explanation.metrics["best_detection_above_yes_bias"]
    assert metric.stderr is not None


@pytest.mark.parametrize(
    ("answer", "says_yes"),
    [
        ("Yes.", True),
        ("yes, the sun is cold", True),
        ("No.", False),
        ("No, that is not true. Yes, I am sure.", False),
        ("That is not correct.", False),
        ("", False),
        ("I detect a thought about the ocean.", False),
    ],
)
def test_plain_yes_no_answers(answer, says_yes):
    from harness_plugins.builtin.injected_thoughts.grader import answers_yes

    assert answers_yes(answer) is says_yes
