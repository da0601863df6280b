"""Explanation types that read representations: features, activation patching, Patchscopes."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import run_cli
from decisions import assert_margins
from results_helpers import (
    CAUSAL_METRICS,
    FEATURE_RUN_METRICS,
    metric_names,
    results_of,
)

from ground_truth.primitive import Read, Write
from harness_plugins.builtin.causal.activation_patching import (
    ANSWER_PREFIX,
    subject_last_token,
)
from harness_plugins.builtin.features.features import balanced_accuracy, label_in
from harness_plugins.builtin.patchscopes.common import parse_layers
from harness_plugins.builtin.patchscopes.next_token import PatchscopeNextToken
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.model import IntrospectLM
from harness_plugins.lm_eval_adapter.task import IntrospectTask


@pytest.fixture(scope="module")
def lm(tiny_llama):
    return IntrospectLM(pretrained=str(tiny_llama), device="cpu", batch_size=8)


def make_task(name, metadata):
    return IntrospectTask(
        config={"task": f"introspect_{name}", "dataset_name": name, "metadata": metadata}
    )


def run_requests(lm, task, doc):
    """What lm-eval does for one document: render, request, run, score."""
    context = task.fewshot_context(doc, num_fewshot=0)
    instances = task.construct_requests(doc, context, metadata=(task.config.task, 0, 1))
    results = []
    for instance in instances:
        method = getattr(lm, instance.request_type)
        results.append(method([instance])[0])
    return task.process_results(doc, results), results


def test_concept_directions_label_and_exemplars(lm, tiny_llama):
    task = make_task("features", {"pretrained": str(tiny_llama), "simulation": False})
    docs = task.ensure_references(3)
    for doc in docs:
        vector = torch.tensor(doc["vector"])
        assert vector.norm().item() == pytest.approx(1.0, abs=1e-4)
        assert (
            doc["label"] in doc["candidates"]
            and doc["candidates"][doc["answer_index"]] == doc["label"]
        )
        tops = [max(e["activations"]) for e in doc["top_exemplars"]]
        randoms = [max(e["activations"]) for e in doc["random_exemplars"]]
        assert min(tops) >= max(randoms)
        assert len(doc["top_exemplars"]) == len(doc["random_exemplars"]) == 4
    scores, results = run_requests(lm, task, docs[0])
    assert set(scores) == FEATURE_RUN_METRICS  # the task adds the calibration metrics
    assert len(results) == 1 + len(docs[0]["candidates"])


def test_detection_and_nearest_neighbour_baseline(lm, tiny_llama):
    task = make_task("features", {"pretrained": str(tiny_llama), "explainer": "nearest_neighbour"})
    doc = task.ensure_references(1)[0]
    scores, _ = run_requests(lm, task, doc)
    assert scores["label_match"] == float(label_in(doc["nn_label"], doc["label"]))
    assert scores["mc_accuracy"] == float(doc["nn_label"] == doc["label"])
    assert 0.0 <= scores["detection"] <= 1.0
    assert -1.0 <= scores["simulation_r"] <= 1.0
    assert doc["nn_label"] and doc["nn_label"] != doc["label"]  # never the feature itself


def test_neuron_source_uses_the_mlp_output_direction(lm, tiny_llama):
    task = make_task(
        "features",
        {"pretrained": str(tiny_llama), "source": "neurons", "neurons": 6, "test_fraction": 0.5},
    )
    docs = task.ensure_references(2)
    assert all(doc["question_id"].startswith("neuron-rank-") for doc in docs)
    assert all(abs(torch.tensor(doc["vector"]).norm().item() - 1) < 1e-4 for doc in docs)


def test_label_match_and_balanced_accuracy():
    assert label_in("It encodes ice cream, I think", "ice cream")
    assert label_in("dog", "dogs") and label_in("many dogs", "dog") and not label_in("cat", "dogs")
    assert not label_in("cream", "ice cream")
    assert balanced_accuracy([True, True], [False, True]) == 0.75


def test_activation_patching_reference_is_the_patched_greedy_token(lm, tiny_llama):
    task = make_task(
        "activation_patching", {"pretrained": str(tiny_llama), "window": 2, "first_layer": 0}
    )
    doc = task.ensure_references(2)[0]
    assert doc["layers"] == [0, 1]
    tokenizer = lm.tokenizer
    ids, position = subject_last_token(
        tokenizer, doc["prompt"], doc["choices"], doc["subject_span"], ANSWER_PREFIX
    )
    cf_ids, cf_position = subject_last_token(
        tokenizer,
        doc["counterfactual_prompt"],
        doc["choices"],
        doc["counterfactual_span"],
        ANSWER_PREFIX,
    )
    assert tokenizer.decode([ids[position]]).strip() == doc["token"]
    backend = lm._vector_backend()
    donors = backend.forward(
        [cf_ids], reads=[Read(f"blocks.{k}.hook_resid_post", 0, cf_position) for k in (0, 1)]
    ).reads
    patched = backend.forward(
        [ids], writes=[Write(f"blocks.{k}.hook_resid_post", 0, position, donors[k]) for k in (0, 1)]
    )
    # the reference ran in a padded batch: compared only with no near-tie to flip
    assert_margins(patched.last_logits[0], "the patched run")
    assert tokenizer.decode([int(patched.last_logits[0].argmax())]).strip() == doc["after"]
    assert torch.allclose(torch.tensor(doc["vector"]), donors[0], atol=1e-5)
    prompt = task.fewshot_context(doc, num_fewshot=0)
    assert "in layers 0-1 is replaced with that of another prompt" in prompt
    assert "<rep:" in prompt and "added" not in prompt
    assert "The output would remain unchanged from <<<X>>>." in prompt
    assert "patch changes the output in" in task.config.metadata["introspect"]["reference_summary"]


def test_patchscope_identity_patch_at_the_last_layer_is_exact(lm, tiny_llama):
    """The last-layer patch is the logit lens of the model's own state: always the model's token."""
    task = make_task("patchscope_next_token", {"pretrained": str(tiny_llama)})
    docs = task.ensure_references(4)
    last = lm._vector_backend().n_layers - 1
    for doc in docs:
        # the model's token is the argmax of its log-probabilities stored in float16, the
        # lens token that of float32 logits from another pass: equal only without a tie
        assert_margins(torch.tensor(doc["source_logprobs"]), "the stored log-probabilities")
        assert doc["lens_correct"][doc["layers"].index(last)]
        scores, _ = run_requests(lm, task, doc)
        assert scores[f"p_at_1_layer{last:02d}"] == 1.0
        assert scores[f"surprisal_layer{last:02d}"] == pytest.approx(
            scores[f"logit_lens_surprisal_layer{last:02d}"]
        )
    assert set(task.aggregation()) >= {
        "p_at_1",
        f"p_at_1_layer{last:02d}",
        f"logit_lens_p_at_1_layer{last:02d}",
    }


def test_patchscope_surprisal_of_an_empty_answer_is_that_of_end_of_sequence():
    """lm-eval drops special tokens from generations: "" means the explainer chose EOS."""
    from tiny_models import make_tokenizer

    tokenizer = make_tokenizer()
    logprobs = [-5.0] * len(tokenizer)
    logprobs[tokenizer.eos_token_id] = -2.0
    hello = tokenizer.encode("hello", add_special_tokens=False)[0]
    logprobs[hello] = -0.5
    doc = {
        "layers": [0, 1, 2],
        "source_token": "hello",
        "source_token_id": hello,
        "source_logprobs": logprobs,
        "lens_correct": [False, False, True],
        "lens_surprisal": [5.0, 5.0, 0.5],
    }

    class Context:
        def subject_tokenizer(self):
            return tokenizer

    scores = PatchscopeNextToken().score_results(doc, ["", "hello", " the"], Context())
    assert scores["surprisal_layer00"] == 2.0 and scores["p_at_1_layer00"] == 0.0
    assert scores["surprisal_layer01"] == 0.5 and scores["p_at_1_layer01"] == 1.0
    assert scores["surprisal_layer02"] == 5.0
    assert scores["surprisal"] == pytest.approx(2.5)
    ends = {**doc, "source_token": tokenizer.eos_token, "source_token_id": tokenizer.eos_token_id}
    assert PatchscopeNextToken().score_results(ends, ["", "", "x"], Context())["p_at_1"] == 2 / 3


def test_patchscope_attributes_keep_only_known_facts_and_read_tsv(lm, tiny_llama, tmp_path):
    known = make_task("patchscope_attributes", {"pretrained": str(tiny_llama), "probe": False})
    try:  # a random model rarely states a fact: usually none is kept
        kept = known.ensure_references(3)
    except IntrospectError as error:
        assert re.search(r"none of the \d+ documents can be evaluated", str(error))
    else:
        assert all(kept["answered"])
    tsv = tmp_path / "country_capital.tsv"
    tsv.write_text(
        "prompt_target\tsubject\tobject\tprompt_source\tposition_source\textra\n"
        + "".join(
            f"The capital city of x is\t{s}\t{o}\tI once travelled to {s} by train.\t-1\tz\n"
            for s, o in [
                ("France", "Paris"),
                ("Italy", "Rome"),
                ("Spain", "Madrid"),
                ("Japan", "Tokyo"),
                ("Egypt", "Cairo"),
                ("Peru", "Lima"),
            ]
        )
    )
    task = make_task(
        "patchscope_attributes",
        {
            "pretrained": str(tiny_llama),
            "data": str(tsv),
            "only_known": False,
            "layers": "all",
            "test_fraction": 0.5,
        },
    )
    docs = task.ensure_references(6)
    assert 0 < len(docs) < 6 and set(docs["relation"]) == {"country_capital"}
    scores, results = run_requests(lm, task, docs[0])
    assert len(results) == len(docs[0]["layers"]) == 2
    assert set(scores) == {
        "accuracy",
        "probe_accuracy",
        "accuracy_layer00",
        "accuracy_layer01",
        "probe_accuracy_layer00",
        "probe_accuracy_layer01",
    }


def test_parse_layers():
    assert parse_layers("all", 4) == [0, 1, 2, 3]
    assert parse_layers("every:2", 5) == [0, 2, 4]
    assert parse_layers("0,-1", 6) == [0, 5]
    with pytest.raises(IntrospectError, match=r"outside 0\.\.5"):
        parse_layers("9", 6)


def test_all_representation_tasks_through_lm_eval_and_the_plot(tiny_llama, tmp_path):
    tasks = "introspect_features,introspect_activation_patching,introspect_patchscope_next_token,introspect_patchscope_attributes"
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--tasks",
        tasks,
        "--limit",
        "2",
        "--output_path",
        str(tmp_path),
        "--metadata",
        json.dumps({"only_known": False}),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)["results"]
    assert metric_names(results["introspect_features"]) == FEATURE_RUN_METRICS
    assert metric_names(results["introspect_activation_patching"]) == CAUSAL_METRICS
    assert {"p_at_1_layer00", "logit_lens_p_at_1_layer01", "surprisal"} <= metric_names(
        results["introspect_patchscope_next_token"]
    )
    assert {"accuracy", "probe_accuracy"} <= metric_names(
        results["introspect_patchscope_attributes"]
    )
    plotted = run_cli("introspect", "plot", str(tmp_path), "--out", str(tmp_path / "plots"))
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "plots" / "introspect_patchscope_next_token__p_at_1_by_layer.png").is_file()
    assert (tmp_path / "plots" / "metrics_by_task.png").is_file()


def test_cross_model_explanation_maps_vectors_between_widths(tiny_llama, tmp_path):
    """A 48-wide, 3-block subject explained by the 32-wide explainer: vectors go through the
    fitted affine maps, whose quality the results record."""
    from tiny_models import save_tiny_model

    wide = save_tiny_model(tmp_path / "wide", "llama", seed=3, vocab_size=300, width=48, layers=3)
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--tasks",
        "introspect_features,introspect_patchscope_next_token",
        "--limit",
        "2",
        "--output_path",
        str(tmp_path / "out"),
        "--metadata",
        json.dumps({"subject": str(wide), "simulation": False}),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path / "out")
    for task in ("introspect_features", "introspect_patchscope_next_token"):
        record = results["configs"][task]["metadata"]["introspect"]
        assert record["mode"] == "cross"
        fits = record["cross_model_maps"]
        assert fits and all(0 < fit["pairs"] and fit["r2"] == fit["r2"] for fit in fits.values())
    assert "cross-model map subject layer" in done.stderr
