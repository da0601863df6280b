"""Trained explainers (vector slots in the training loop) and the self-vs-cross matrix."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import run_cli

from ground_truth.subject import ModelSpec
from harness_plugins.prompts import vectors
from harness_plugins.training.explainer import examples_for_type
from harness_plugins.training.lora import (
    Example,
    _Collator,
    _slot_trainer,
    encode_example,
    read_manifest,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llama))


def test_an_example_with_a_vector_slot_learns_only_the_reply(tokenizer, table):
    vector = torch.arange(32, dtype=torch.float32)
    messages = ({"role": "user", "content": "At layer 1, " + vectors.slot(vector) + " encodes"},)
    row = encode_example(tokenizer, Example(messages, "music"), max_length=512)
    (position,) = row["slot_positions"]
    assert row["input_ids"][position] == tokenizer.pad_token_id
    assert torch.equal(torch.tensor(row["slot_vectors"][0]), vector)
    reply = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tokenizer.decode(reply).startswith("music")
    assert all(label == -100 for label in row["labels"][: position + 1])


def test_the_trainer_writes_the_vectors_over_the_embeddings(tiny_llama, tokenizer, table):
    from transformers import AutoModelForCausalLM, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    vector = torch.randn(32)
    messages = ({"role": "user", "content": "Describe " + vectors.slot(vector) + " briefly"},)
    rows = [
        encode_example(tokenizer, Example(messages, "a dog"), 512),
        encode_example(tokenizer, Example(({"role": "user", "content": "hi"},), "hello"), 512),
    ]
    batch = _Collator(tokenizer.pad_token_id)(rows)
    arguments = TrainingArguments(
        output_dir="/tmp/unused-introspect-trainer", report_to=[], use_cpu=True
    )
    trainer = _slot_trainer()(model=model, args=arguments)
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        embeds = model.get_input_embeddings()(batch["input_ids"]).clone()
        embeds[0, rows[0]["slot_positions"][0]] = vector
        expected = model(
            inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_examples_come_from_the_train_partition_with_targets(tiny_llama):
    examples, stats = examples_for_type(
        "features",
        ModelSpec(str(tiny_llama)),
        {"subject": str(tiny_llama)},
        limit=3,
        table=vectors.VectorTable(),
    )
    assert len(examples) == 3 and stats["documents"] == 3
    assert all("<rep:" in e.messages[-1]["content"] and e.answer for e in examples)


def test_train_explainer_command_then_evaluate_the_adapter(tiny_llama, tmp_path):
    out = tmp_path / "explainer"
    done = run_cli(
        "introspect",
        "train",
        "explainer",
        "--subject",
        str(tiny_llama),
        "--types",
        "input_ablation,features",
        "--limit",
        "4",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--lora-r",
        "4",
        "--out",
        str(out),
        env={"WANDB_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = read_manifest(out)
    assert manifest["kind"] == "explainer" and set(manifest["types"]) == {
        "input_ablation",
        "features",
    }
    assert manifest["examples"] == 8 and manifest["steps"] == 2
    assert manifest["first_learning_rate"] > 0  # no warm-up unless --warmup_ratio asks
    assert manifest["config"]["wandb_project"] is None  # W&B is opt-in
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_llama)
    evaluated = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama},peft={out}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "2",
        "--metadata",
        json.dumps({"subject": str(tiny_llama)}),
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]


def test_matrix_runs_every_pair_and_reports_failures(tiny_llama, tiny_gpt2, tmp_path):
    out = tmp_path / "matrix"
    done = run_cli(
        "introspect",
        "matrix",
        "--explainers",
        f"{tiny_llama},{tiny_gpt2}",
        "--subjects",
        f"{tiny_llama},{tiny_gpt2},/no/such/model",
        "--tasks",
        "input_ablation",
        "--limit",
        "3",
        "--bootstrap-iters",
        "200",
        "--out",
        str(out),
        env={"WANDB_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "matrix.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    ok = {(r["explainer"], r["subject"]) for r in rows if r["status"] == "ok"}
    assert ok == {
        (str(a), str(b)) for a in (tiny_llama, tiny_gpt2) for b in (tiny_llama, tiny_gpt2)
    }
    failed = [r for r in rows if r["status"] != "ok"]
    assert failed and all(
        r["subject"] == "/no/such/model" and "does not exist" in r["status"] for r in failed
    )
    assert {r["mode"] for r in rows if r["explainer"] == r["subject"]} == {"self"}
    scored = [r for r in rows if r["status"] == "ok"]
    assert {r["n"] for r in scored} == {"3"}  # documents read back from lm-eval's samples
    for row in scored:
        if row["ci_low"]:  # a 95% interval around the cell's value
            assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
    # a mean and a corpus-level F1 each get an interval (these tiny subjects never change
    # their answer, so the "changed" F1 is undefined here and the "unchanged" one is used)
    assert {r["metric"] for r in scored if r["ci_low"]} >= {"valid", "unchanged_f1"}
    data = json.loads((out / "matrix.json").read_text())
    assert {g["subject"] for g in data["self_minus_cross"]} == {str(tiny_llama), str(tiny_gpt2)}
    assert all(g["n"] == 3 and 0 < g["p_value"] <= 1 for g in data["self_minus_cross"])
    assert (out / "heatmap__introspect_input_ablation__content_match.png").is_file()
    assert "self minus cross, per subject:" in done.stdout and "does not exist" in done.stdout
    assert list(tmp_path.rglob("offline-run-*"))
