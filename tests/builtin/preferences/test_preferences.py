"""Decision-weight self-reports: prompts, references, report parsing, instill and report training."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from results_helpers import metric_names, results_of

from ground_truth import subject as subject_module
from harness_plugins.builtin.preferences.reports import (
    INSTILLED_FILE,
    decision_messages,
    parse_report,
    pearson_r,
)
from harness_plugins.builtin.preferences.scenarios import builtin_scenarios
from harness_plugins.builtin.preferences.weight_reports import Preferences
from harness_plugins.builtin.preferences.weights_fit import instilled_choice, instilled_weights
from harness_plugins.lm_eval_adapter.task import IntrospectTask
from harness_plugins.options import resolve_options
from harness_plugins.prompts.chat import encode_prompt
from harness_plugins.registry import get_registry, reset_registry
from harness_plugins.training.lora import TrainingConfig, read_manifest
from harness_plugins.training.preferences import instill, instill_examples

NAMES = ["price", "distance to work", "rooms", "noise", "light"]


def make_task(metadata):
    return IntrospectTask(
        config={
            "task": "introspect_preferences",
            "dataset_name": "preferences",
            "metadata": metadata,
        }
    )


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_registry()
    yield
    reset_registry()


@pytest.mark.parametrize(
    "text",
    [
        '{"price": -80, "distance to work": -40, "rooms": 55.5, "noise": -10, "light": 100}',
        'Sure! {"Price": -80, "Distance to work": -40, "rooms": 55.5, "noise": -10, "light": 120} Done.',
        '{"price": -80, "distance to work": -40, "rooms": 55.5, "noise": -10, "light": 100',  # cut at "}"
        'price: -80\ndistance to work: -40\n- rooms: 55.5\nnoise = -10\n"light": 100',
    ],
)
def test_reports_parse_from_json_or_lines(text):
    assert parse_report(text, NAMES) == [-80.0, -40.0, 55.5, -10.0, 100.0]


@pytest.mark.parametrize(
    "text", ["", "I weighed price most.", '{"price": 10, "rooms": 5}', '{"price": "high"}']
)
def test_incomplete_reports_do_not_parse(text):
    assert parse_report(text, NAMES) is None


def test_pearson_r_is_over_all_points_of_the_run():
    docs = [[[1, 2], [2, 4], [3, 6]], [[10, 1], [20, 2], [30, 3]]]
    per_doc_mean = 1.0  # each document alone is perfectly correlated
    pooled = pearson_r(docs)
    assert pooled == pytest.approx(np.corrcoef([1, 2, 3, 10, 20, 30], [2, 4, 6, 1, 2, 3])[0, 1])
    assert pooled != pytest.approx(per_doc_mean)
    assert math.isnan(pearson_r([[[1, 1]]]))


def test_option_pairs_are_seeded_in_range_rounded_and_distinct():
    explanation = Preferences()
    options = resolve_options("preferences", explanation.all_options(), {"pairs": 30})
    scenario = builtin_scenarios()[0]
    doc = {
        "short_name": scenario.short_name,
        "attribute_names": [a.name for a in scenario.attributes],
        "attribute_units": [a.units for a in scenario.attributes],
        "low": [a.low for a in scenario.attributes],
        "high": [a.high for a in scenario.attributes],
    }
    a_values, b_values = explanation.option_pairs(doc, options)
    assert (a_values, b_values) == explanation.option_pairs(doc, options)
    assert len(a_values) == 30 and all(a != b for a, b in zip(a_values, b_values, strict=True))
    for values in a_values + b_values:
        for value, attribute in zip(values, scenario.attributes, strict=True):
            assert (
                attribute.low <= value <= attribute.high and attribute.round_value(value) == value
            )


def test_references_hold_the_subjects_probabilities_and_the_fit(tiny_llama):
    task = make_task({"pretrained": str(tiny_llama), "pairs": 12})
    doc = task.ensure_references(2)[0]
    assert len(doc["p_a"]) == 12 and len(doc["learned_weights"]) == 5
    assert max(abs(w) for w in doc["learned_weights"]) == pytest.approx(100.0) or doc["degenerate"]
    subject = subject_module.load_model(task.subject_spec, get_registry().model_aliases)
    ids = encode_prompt(
        subject.tokenizer, decision_messages(doc, doc["option_a"][3], doc["option_b"][3])
    )
    letters = [subject.tokenizer.encode(x, add_special_tokens=False)[0] for x in "AB"]
    with torch.inference_mode():
        logits = subject.model(torch.tensor([ids])).logits[0, -1, letters]
    assert torch.softmax(logits.double(), -1)[0].item() == pytest.approx(doc["p_a"][3], abs=1e-5)
    assert json.loads(doc["target"]) == {
        n: round(w) for n, w in zip(doc["attribute_names"], doc["reference_weights"], strict=True)
    }


def test_train_and_test_scenarios_are_disjoint(tiny_llama):
    test = make_task({"pretrained": str(tiny_llama)})._all_questions()
    train = make_task({"pretrained": str(tiny_llama), "partition": "train"})._all_questions()
    assert len(test) > 20 and len(train) > 20
    assert not set(test["short_name"]) & set(train["short_name"])


def test_several_reports_are_averaged():
    doc = {
        "attribute_names": NAMES,
        "reference_weights": [-100, -50, 50, 0, 100],
        "degenerate": False,
    }
    first = json.dumps(dict(zip(NAMES, [-100, -40, 40, 10, 100], strict=True)))
    second = json.dumps(dict(zip(NAMES, [-80, -60, 60, -10, 80], strict=True)))
    scores = Preferences().score_responses(doc, [first, second, "no idea"])
    assert scores["parse_rate"] == pytest.approx(2 / 3)
    assert [p[0] for p in scores["pearson_r"]] == [-90, -50, 50, 0, 90]
    assert scores["mean_abs_error"] == [10, 0, 0, 0, 10]


def test_lm_eval_prints_the_three_metrics(tiny_llama, tmp_path):
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_preferences",
        "--limit",
        "3",
        "--output_path",
        str(tmp_path),
        "--metadata",
        json.dumps({"pairs": 8, "reports": 2, "temperature": 0.7}),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path)
    assert metric_names(results["results"]["introspect_preferences"]) == {
        "pearson_r",
        "parse_rate",
        "mean_abs_error",
        "top_answer_share",
    }
    for metric in ("pearson_r", "parse_rate", "mean_abs_error"):
        assert f"|{metric}" in done.stdout.replace(" ", "")
    assert results["configs"]["introspect_preferences"]["repeats"] == 2


def test_instilled_examples_follow_the_instilled_utility():
    scenarios = builtin_scenarios()[:3]
    rng = np.random.default_rng(0)
    weights = {s.short_name: instilled_weights(rng) for s in scenarios}
    examples = instill_examples(scenarios, weights, per_scenario=20, seed=1)
    assert len(examples) == 60
    answers = {example.answer for example in examples}
    assert answers == {"A", "B"}
    by_name = {s.question: s for s in scenarios}
    for example in examples[:10]:
        text = example.messages[-1]["content"]
        scenario = next(s for q, s in by_name.items() if q in text)
        a_text, b_text = text.split("Option A:\n")[1].split("\n\nOption B:\n")

        def parse(block):
            return [float(line.split(": ")[1].split(" ")[0]) for line in block.strip().splitlines()]

        lows = [a.low for a in scenario.attributes]
        highs = [a.high for a in scenario.attributes]
        assert example.answer == instilled_choice(
            parse(a_text), parse(b_text), lows, highs, weights[scenario.short_name]
        )


def test_instill_then_evaluate_against_the_instilled_weights(tiny_llama, tmp_path):
    adapter = tmp_path / "instilled"
    config = TrainingConfig(
        max_steps=3, batch_size=4, lora_r=4, lora_alpha=8, wandb_project="introspect-tests"
    )
    manifest = instill(
        subject_module.ModelSpec(str(tiny_llama)),
        adapter,
        scenarios_file=None,
        num_scenarios=8,
        per_scenario=4,
        seed=0,
        config=config,
    )
    assert manifest["steps"] == 3 and (adapter / "adapter_config.json").is_file()
    record = json.loads((adapter / INSTILLED_FILE).read_text())
    assert len(record["scenarios"]) == 8 and set(record["weights"]) == {
        s["short_name"] for s in record["scenarios"]
    }
    assert read_manifest(adapter)["kind"] == "instill"
    assert not list(tmp_path.glob(".instilled.training"))

    task = make_task(
        {"pretrained": str(tiny_llama), "peft": str(adapter), "reference": "instilled", "pairs": 8}
    )
    docs = task.ensure_references(10)
    assert set(docs["short_name"]) <= set(record["weights"])
    for doc in docs:
        assert doc["reference_weights"] == pytest.approx(record["weights"][doc["short_name"]])
        assert doc["instilled_weights"] == doc["reference_weights"]
    summary = task.config.metadata["introspect"]["reference_summary"]
    assert "learned vs instilled r =" in summary and "choices as instilled" in summary


def test_reference_instilled_without_an_adapter_is_one_clear_error(tiny_llama):
    from harness_plugins.errors import IntrospectError

    with pytest.raises(
        IntrospectError, match="reference=instilled needs a model with an instilled adapter"
    ):
        make_task({"pretrained": str(tiny_llama), "reference": "instilled"})._all_questions()


def test_report_training_command_writes_an_adapter_and_a_wandb_run(tiny_llama, tmp_path):
    wandb_dir = tmp_path / "wandb"
    wandb_dir.mkdir()
    out = tmp_path / "reporter"
    done = run_cli(
        "introspect",
        "train",
        "report",
        "--explainer",
        str(tiny_llama),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--lora-r",
        "4",
        "--metadata",
        json.dumps({"pairs": 6, "max_docs": 6}),
        "--wandb_args",  # W&B is opt-in, as in lm-eval
        "project=introspect-test,mode=offline",
        env={"WANDB_DIR": str(wandb_dir)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "to report learned weights" in done.stdout
    manifest = read_manifest(out)
    assert (
        manifest["kind"] == "report" and manifest["train_scenarios"] == 6 and manifest["steps"] == 2
    )
    assert list(wandb_dir.rglob("offline-run-*"))


def test_fit_command_reads_the_papers_csv_layout(tmp_path):
    scenarios = builtin_scenarios()[:4]
    rng = np.random.default_rng(3)
    rows = []
    truth = {}
    for scenario in scenarios[:3]:  # the scenarios file holds one more than the choices use
        weights = instilled_weights(rng)
        truth[scenario.short_name] = weights
        lows = [a.low for a in scenario.attributes]
        highs = [a.high for a in scenario.attributes]
        for _ in range(300):
            a = [rng.uniform(lo, hi) for lo, hi in zip(lows, highs, strict=True)]
            b = [rng.uniform(lo, hi) for lo, hi in zip(lows, highs, strict=True)]
            row = {
                "scenario": scenario.short_name,
                "selection": instilled_choice(a, b, lows, highs, weights),
                "model": "sim",
            }
            row.update({f"A_attribute_{k + 1}": a[k] for k in range(5)})
            row.update({f"B_attribute_{k + 1}": b[k] for k in range(5)})
            rows.append(row)
    choices = tmp_path / "choices.csv"
    pd.DataFrame(rows).to_csv(choices, index=False)
    scenarios_file = tmp_path / "scenarios.json"
    scenarios_file.write_text(json.dumps([s.to_json() for s in scenarios]))
    out = tmp_path / "weights.csv"
    done = run_cli(
        "introspect",
        "preferences",
        "fit",
        "--scenarios",
        str(scenarios_file),
        "--choices",
        str(choices),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    fitted = pd.read_csv(out)
    assert list(fitted["scenario"]) == [s.short_name for s in scenarios[:3]]
    recovered = fitted[[f"weight_{k}" for k in range(1, 6)]].to_numpy().ravel()
    expected = np.array([truth[s.short_name] for s in scenarios[:3]]).ravel()
    assert np.corrcoef(recovered, expected)[0, 1] > 0.9


def test_corpus_level_metrics_have_a_bootstrapped_stderr():
    from lm_eval import evaluator_utils

    from harness_plugins.builtin.preferences.reports import mean_of_points
    from harness_plugins.lm_eval_adapter.patches import patch_stderr

    patch_stderr()
    docs = [[[i, i + (i % 3)], [i + 1, i * 2]] for i in range(12)]
    for aggregate in (pearson_r, mean_of_points):
        stderr = evaluator_utils.stderr_for_metric(aggregate, bootstrap_iters=100000)
        items = docs if aggregate is pearson_r else [[abs(a - b) for a, b in d] for d in docs]
        assert stderr is not None and stderr(items) > 0
