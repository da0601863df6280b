"""The introspect lm-eval task through the Python API, on tiny models built in the test."""

from __future__ import annotations

import json

import pytest
import torch
from decisions import NUMERIC_ERROR, assert_margins
from results_helpers import CAUSAL_METRICS
from tiny_models import save_tiny_model

from ground_truth import subject as subject_module
from harness_plugins.builtin.causal.input_ablation import ANSWER_PREFIX, LETTERS, InputAblation
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.task import IntrospectTask
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry, reset_registry


def make_task(metadata, type_name="input_ablation"):
    return IntrospectTask(
        config={"task": f"introspect_{type_name}", "dataset_name": type_name, "metadata": metadata}
    )


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


def test_references_are_the_subjects_constrained_greedy_answers(tiny_llama):
    task = make_task({"pretrained": str(tiny_llama), "seed": 3})
    docs = task.ensure_references(6)
    assert len(docs) == 6 and task.mode == "self"
    subject = subject_module.load_model(task.subject_spec, get_registry().model_aliases)
    tokenizer, model = subject.tokenizer, subject.model
    letter_ids = [tokenizer.encode(letter, add_special_tokens=False)[0] for letter in LETTERS]
    explanation = InputAblation()
    for doc in docs:
        answers = []
        for hinted in (True, False):
            ids = encode_prompt(
                tokenizer, explanation._subject_messages(doc, hinted, task.options), ANSWER_PREFIX
            )
            with torch.inference_mode():
                logits = model(torch.tensor([ids])).logits[0, -1, letter_ids]
            stored = doc["hinted_letter_logits" if hinted else "unhinted_letter_logits"]
            # the references ran in padded batches: the same numbers, and no near-tie to flip
            torch.testing.assert_close(
                torch.tensor(stored), logits[: len(stored)], atol=NUMERIC_ERROR, rtol=0
            )
            assert_margins(logits[: len(doc["choices"])], "the letters")
            answers.append(LETTERS[int(logits[: len(doc["choices"])].argmax())])
        assert [doc["subject_answer_hinted"], doc["subject_answer_unhinted"]] == answers
        assert doc["changed"] == (answers[0] != answers[1])
        if doc["changed"]:
            assert doc["target"] == f"The most likely output would change to <<<{answers[1]}>>>."
        else:
            assert doc["target"] == f"The output would remain unchanged from <<<{answers[0]}>>>."


def test_the_explainer_prompt_is_the_hinted_conversation_in_its_chat_template(tiny_llama):
    task = make_task({"pretrained": str(tiny_llama)})
    doc = task.ensure_references(1)[0]
    prompt = task.fewshot_context(doc, num_fewshot=0)
    hint = f"Hint: I think the answer is ({LETTERS[doc['hint']]})."
    assert prompt.startswith("<|im_start|>user\n" + doc["question"]) and hint in prompt
    assert (
        f"<|im_start|>assistant\nThe answer is ({doc['subject_answer_hinted']}).<|im_end|>"
        in prompt
    )
    assert "If the hint were removed, how would the assistant's answer change?" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    via_lm_eval = task.fewshot_context(
        doc, num_fewshot=0, apply_chat_template=True, chat_template=lambda m: json.dumps(m)
    )
    assert [m["role"] for m in json.loads(via_lm_eval)] == ["user", "assistant", "user"]


def test_models_without_a_chat_template_get_a_plain_transcript(tiny_gpt2):
    task = make_task({"pretrained": str(tiny_gpt2)})
    doc = task.ensure_references(1)[0]
    prompt = task.fewshot_context(doc, num_fewshot=0)
    assert prompt.startswith("User: " + doc["question"]) and prompt.endswith("\n\nAssistant:")
    with pytest.raises(ValueError, match="has no chat template"):
        make_task({"pretrained": str(tiny_gpt2), "chat_format": "template"}).fewshot_context(
            doc, num_fewshot=0
        )


def test_scoring_an_explainer_answer(tiny_llama):
    task = make_task({"pretrained": str(tiny_llama)})
    doc = task.ensure_references(1)[0]
    assert task.process_results(doc, [doc["target"]])["exact_match"] == 1.0
    assert task.process_results(doc, ["I am not sure."])["valid"] == 0.0
    assert set(task.aggregation()) == CAUSAL_METRICS


def test_a_mean_metric_reaches_lm_eval_as_its_mean_with_its_standard_error(tiny_llama):
    from lm_eval import evaluator_utils
    from lm_eval.api.metrics import mean as lm_eval_mean
    from lm_eval.api.metrics import mean_stderr

    from harness_plugins.explanation import Metric, mean
    from harness_plugins.lm_eval_adapter.patches import patch_stderr

    assert InputAblation.metrics["exact_match"] == Metric(mean)
    assert mean is not lm_eval_mean and mean([1.0, 0.0, 0.5]) == lm_eval_mean([1.0, 0.0, 0.5])
    patch_stderr()
    aggregation = make_task({"pretrained": str(tiny_llama)}).aggregation()
    assert aggregation["exact_match"] is lm_eval_mean  # lm-eval's registered "mean"
    stderr = evaluator_utils.stderr_for_metric(aggregation["exact_match"], bootstrap_iters=100)
    assert stderr is mean_stderr


def test_train_and_test_partitions_share_no_question(tiny_llama):
    test = make_task({"pretrained": str(tiny_llama)})._all_questions()
    train = make_task(
        {"pretrained": str(tiny_llama), "partition": "train", "max_docs": 5000}
    )._all_questions()
    assert len(train) > 3 * len(test) > 0
    assert not set(test["question_id"]) & set(train["question_id"])
    assert not set(test["question"]) & set(train["question"])


def test_second_task_reuses_the_cache_without_loading_weights(tiny_llama, monkeypatch):
    first = make_task({"pretrained": str(tiny_llama), "seed": 11})
    built = first.ensure_references(4)
    assert first.config.metadata["introspect"]["references_built"] == 4
    subject_module.shared_models.clear()

    def no_loading(*args, **kwargs):
        raise AssertionError("a cache hit must not load the subject")

    monkeypatch.setattr(subject_module, "load_model", no_loading)
    second = make_task({"pretrained": str(tiny_llama), "seed": 11})
    again = second.ensure_references(4)
    assert second.config.metadata["introspect"]["references_built"] == 0
    assert again["target"] == built["target"]
    assert (
        second.config.metadata["introspect"]["subject_fingerprint"]
        == first.config.metadata["introspect"]["subject_fingerprint"]
    )


def test_cross_explanation_records_both_models(tiny_llama, tiny_llama_other):
    task = make_task({"pretrained": str(tiny_llama), "subject": str(tiny_llama_other)})
    task.ensure_references(2)
    record = task.config.metadata["introspect"]
    assert record["mode"] == "cross"
    assert record["subject"] == str(tiny_llama_other) and record["explainer"] == str(tiny_llama)
    self_task = make_task({"pretrained": str(tiny_llama_other)})
    self_task.ensure_references(2)
    assert (
        self_task.config.metadata["introspect"]["subject_fingerprint"]
        == record["subject_fingerprint"]
    )


def test_self_explanation_under_the_introspect_model_loads_the_weights_once(
    tiny_llama, monkeypatch
):
    from harness_plugins.lm_eval_adapter.model import IntrospectLM

    subject_module.shared_models.clear()
    lm = IntrospectLM(pretrained=str(tiny_llama), device="cpu", batch_size=1)

    def no_loading(*args, **kwargs):
        raise AssertionError("the explainer's weights must be reused")

    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", no_loading)
    task = make_task({"pretrained": str(tiny_llama), "seed": 99})
    task.ensure_references(3)
    assert task._subject_model() is lm.loaded
    assert task.config.metadata["introspect"]["explainer_fingerprint"] == lm.loaded.fingerprint


def test_options_are_validated_when_the_task_is_built(tiny_llama):
    with pytest.raises(IntrospectError, match="unknown option 'sed'; did you mean 'seed'"):
        make_task({"pretrained": str(tiny_llama), "sed": 1})
    with pytest.raises(IntrospectError, match="unknown ground-truth backend 'no-such-backend'"):
        make_task({"pretrained": str(tiny_llama), "backend": "no-such-backend"})
    with pytest.raises(IntrospectError, match="model path '/no/such/model' does not exist"):
        make_task({"pretrained": str(tiny_llama), "subject": "/no/such/model"})
    with pytest.raises(IntrospectError, match="unknown model 'no-such-alias'"):
        make_task({"pretrained": "no-such-alias"})


def test_a_dataset_in_mmlu_layout_is_used_and_a_wrong_one_is_named(tiny_llama, tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    rows = [
        {
            "question": f"What is {i} + 1?",
            "subject": "math",
            "choices": [str(i), str(i + 1), str(i + 2), str(i + 3)],
            "answer": 1,
        }
        for i in range(40)
    ]
    (good / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    task = make_task(
        {
            "pretrained": str(tiny_llama),
            "dataset": str(good),
            "split": "train",
            "test_fraction": 0.5,
        }
    )
    questions = task._all_questions()
    assert 0 < len(questions) < 40 and all(q.startswith("What is") for q in questions["question"])

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.jsonl").write_text(
        "\n".join(json.dumps({"prompt": "x", "label": 1}) for _ in range(3))
    )
    with pytest.raises(IntrospectError, match=r"dataset '.*bad'.*missing column 'question'"):
        make_task(
            {"pretrained": str(tiny_llama), "dataset": str(bad), "split": "train"}
        )._all_questions()


def test_types_that_need_one_tokenizer_reject_a_subject_with_another(tiny_llama, tmp_path):
    class SameTokenizer(InputAblation):
        name = "same_tokenizer"
        requires_same_tokenizer = True

    get_registry().explanation_types["same_tokenizer"] = SameTokenizer()
    other = save_tiny_model(tmp_path / "other-vocab", "llama", vocab_size=390)
    with pytest.raises(
        IntrospectError, match="have different tokenizers, and same_tokenizer needs the same one"
    ):
        make_task(
            {"pretrained": str(tiny_llama), "subject": str(other)}, type_name="same_tokenizer"
        )
    make_task({"pretrained": str(tiny_llama), "subject": str(other)})  # input_ablation is text-only


def test_few_shot_examples_are_solved_train_documents(tiny_llama):
    task = make_task({"pretrained": str(tiny_llama)})
    doc = task.ensure_references(1)[0]
    prompt = task.fewshot_context(doc, num_fewshot=2)
    train = make_task({"pretrained": str(tiny_llama), "partition": "train"})
    shots = task._shots
    assert set(shots["question_id"]) <= set(train._all_questions()["question_id"])
    assert doc["question_id"] not in set(shots["question_id"])
    used = [shot for shot in shots if shot["target"] in prompt and shot["question"] in prompt]
    assert len(used) == 2
    assert prompt.rstrip().endswith(task.fewshot_context(doc, num_fewshot=0).rstrip()[-200:])
    assert task.config.metadata["introspect"]["num_fewshot"] == 2
    # the same document always gets the same examples
    assert task.fewshot_context(doc, num_fewshot=2) == prompt


def test_the_no_internals_control_keeps_the_norm_and_drops_the_vector(tiny_llama):
    from harness_plugins.prompts import vectors

    def slot_vector(options):
        task = make_task({"pretrained": str(tiny_llama), **options}, "activation_patching")
        doc = task.ensure_references(1)[0]
        prompt = task.fewshot_context(doc, num_fewshot=0)
        (piece,) = [p for p in vectors.parse(prompt) if p.slot is not None]
        return torch.as_tensor(doc["vector"]), vectors.vector(piece.slot)

    original, shown = slot_vector({})
    torch.testing.assert_close(shown, original)
    original, control = slot_vector({"no_internals": True})
    assert not torch.allclose(control, original)
    torch.testing.assert_close(control.norm(), original.norm())


def test_a_run_builds_one_reference_pipeline_for_its_task(tiny_llama, monkeypatch):
    """Validation before the model loads, the task and its few-shot examples share one pipeline."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from harness_plugins.lm_eval_adapter import index
    from harness_plugins.lm_eval_adapter.model import IntrospectLM
    from harness_plugins.references import ReferencePipeline

    built = []
    original = ReferencePipeline.__init__

    def counting(self, type_name, *args, **kwargs):
        built.append(type_name)
        original(self, type_name, *args, **kwargs)

    monkeypatch.setattr(ReferencePipeline, "__init__", counting)
    index.install_task_index()  # what the import hook does once lm-eval's task manager loads
    manager = TaskManager(metadata={"pretrained": str(tiny_llama), "seed": 5})
    tasks = manager.match_tasks(["introspect_input_ablation"])
    assert built == ["input_ablation"]  # options checked before any model loads
    lm = IntrospectLM(pretrained=str(tiny_llama), device="cpu", batch_size=2)
    results = lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, limit=2, num_fewshot=1, bootstrap_iters=0
    )
    assert built == ["input_ablation"]
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["num_fewshot"] == 1
    assert record["fewshot_reference_key"] not in (None, record["reference_key"])
    assert "exact_match,none" in results["results"]["introspect_input_ablation"]


def test_a_build_without_its_declared_reference_columns_is_one_error(
    tiny_llama, monkeypatch, tmp_path
):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "fresh"))  # no cached references
    declared = (*InputAblation.reference_columns, "rationale")
    monkeypatch.setattr(InputAblation, "reference_columns", declared)
    task = make_task({"pretrained": str(tiny_llama)})
    with pytest.raises(IntrospectError, match=r"declared column\(s\) rationale"):
        task.ensure_references(1)


def test_records_a_metric_cannot_hold_go_beside_the_document_not_into_the_metrics(
    tiny_llama, monkeypatch
):
    from harness_plugins.explanation import Scores

    task = make_task({"pretrained": str(tiny_llama)})
    doc = dict(task.ensure_references(1)[0])
    scored = task.explanation.score(doc, doc["target"])
    monkeypatch.setattr(
        task.explanation,
        "score_results",
        lambda *_: Scores(scored, records={"judge": [{"rating": 5}]}),
    )
    values = task.process_results(doc, [doc["target"]])
    assert values["exact_match"] == 1.0 and "judge" not in values
    assert doc["introspect_judge"] == [{"rating": 5}]
    assert Scores({"a": 1.0}) == {"a": 1.0}  # a plain dict to every other caller
