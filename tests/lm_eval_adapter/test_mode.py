"""Self vs cross is decided by the base weights: an adapter on top keeps a run self-explanation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from ground_truth.subject import ModelSpec
from harness_plugins.references import ReferenceRecord, explanation_mode, mode_summary


def test_mode_is_decided_by_the_base_weights():
    base, adapter = ModelSpec("m"), ModelSpec("m", peft="/a")
    assert explanation_mode(base, base) == "self"
    assert explanation_mode(adapter, base) == "self"  # an adapter explaining its own base
    assert explanation_mode(adapter, adapter) == "self"
    assert explanation_mode(base, adapter) == "cross"  # the subject carries weights we lack
    assert explanation_mode(ModelSpec("other"), base) == "cross"
    assert explanation_mode(None, base) == "self"


def test_mode_summary_names_the_mode_and_adapter():
    record = ReferenceRecord("self", "t", "1", "m", "m + peft /a", {}, explainer_adapter="/a")
    assert mode_summary(record) == "mode self: m explains itself through adapter /a"
    cross = ReferenceRecord("cross", "t", "1", "m", "o", {})
    assert mode_summary(cross) == "mode cross: o explains subject m"


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = peft.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    peft.get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.mark.filterwarnings("ignore")
def test_adapter_on_the_subject_base_is_self_with_both_fingerprints(tiny_llama, adapter, tmp_path):
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama},peft={adapter}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "2",
        "--metadata",
        json.dumps({"subject": str(tiny_llama)}),
        "--output_path",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mode self:" in done.stderr and "through adapter" in done.stderr
    assert "introspect_input_ablation: mode self (explainer" in done.stdout  # under the table
    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())
    record = results["configs"]["introspect_input_ablation"]["metadata"]["introspect"]
    assert record["mode"] == "self"
    assert record["explainer_base_fingerprint"] == record["subject_fingerprint"]
    assert record["explainer_adapter_fingerprint"]
    assert record["explainer_fingerprint"] != record["subject_fingerprint"]
    assert record["reference_fingerprint"]
    # every metric has a standard error, the corpus-level changed_f1 included
    metrics = results["results"]["introspect_input_ablation"]
    assert isinstance(metrics["changed_f1_stderr,none"], float)
