"""Inputs checked before the work that needs them: every row of a dataset, repeated
questions, prompts longer than the subject's context, PEFT adapters and SAEs that do not
fit, are corrupt or hold non-finite weights. Each case is one `introspect: error:` line
(exit 2), or one warning where the input is repaired; never a traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from sae_helpers import random_sae
from test_fault_inputs import mmlu_folder, no_weights, one_error_line

from ground_truth import subject as subject_module
from ground_truth.errors import IntrospectError
from ground_truth.sae_format import WEIGHTS, load_sae, read_config, save_sae
from harness_plugins.commands.cli import main
from harness_plugins.references import ReferencePipeline
from harness_plugins.registry import reset_registry


@pytest.fixture(autouse=True)
def fresh():
    reset_registry()
    subject_module.shared_models.clear()
    yield
    reset_registry()


def build_argv(model: Path, metadata: dict, *extra: str) -> list[str]:
    return [
        "ground-truth",
        "build",
        "input_ablation",
        "--subject",
        str(model),
        "--limit",
        "2",
        "--metadata",
        json.dumps({"split": "train", **metadata}),
        *extra,
    ]


def edit_rows(folder: Path, edit) -> Path:
    file = folder / "data.jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    edit(rows)
    file.write_text("\n".join(json.dumps(r) for r in rows))
    return folder


# ---------------------------------------------------------------- dataset rows


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda rows: rows[7].update(answer=9), "row 7: column 'answer' is 9"),
        (lambda rows: rows[5].update(choices=["a", "b"]), "row 5: column 'choices' has 2 items"),
        (lambda rows: rows[11].update(question="  "), "row 11: column 'question' is empty"),
        (lambda rows: rows[3].update(answer="B"), "row 3: column 'answer' is str"),
    ],
)
def test_every_row_of_a_dataset_is_checked_before_weights_load(
    tiny_llama, tmp_path, monkeypatch, capsys, edit, expected
):
    no_weights(monkeypatch)
    folder = edit_rows(mmlu_folder(tmp_path / "mmlu"), edit)
    assert main(build_argv(tiny_llama, {"dataset": str(folder)})) == 2
    assert expected in one_error_line(capsys)


def test_a_repeated_question_is_asked_once_with_one_warning(tiny_llama, tmp_path, caplog):
    def repeat(rows):
        rows.append(dict(rows[2]))
        rows.append({**rows[4], "question": "  " + rows[4]["question"]})  # whitespace only

    folder = edit_rows(mmlu_folder(tmp_path / "mmlu"), repeat)
    metadata = {"pretrained": str(tiny_llama), "dataset": str(folder), "split": "train"}
    with caplog.at_level(logging.WARNING, logger="introspect"):
        pipeline = ReferencePipeline("input_ablation", metadata, model_arguments=[])
        both = [*pipeline.questions("train")["question"], *pipeline.questions("test")["question"]]
    repeats = [r.getMessage() for r in caplog.records if "repeats" in r.getMessage()]
    assert len(repeats) == 1 and "repeats 2 question(s)" in repeats[0], repeats
    assert len(both) == 12 and len({" ".join(q.split()) for q in both}) == 12


def test_a_repeated_question_with_another_answer_is_refused(tiny_llama, tmp_path, capsys):
    folder = edit_rows(
        mmlu_folder(tmp_path / "mmlu"), lambda rows: rows.append({**rows[2], "answer": 3})
    )
    assert main(build_argv(tiny_llama, {"dataset": str(folder)})) == 2
    assert "rows 2 and 12 ask the same question with different answers" in one_error_line(capsys)


def test_a_prompt_longer_than_the_context_is_refused(tiny_llama, tmp_path, capsys):
    def lengthen(rows):
        for row in rows:
            row["question"] = "what is " * 1500 + row["question"]

    folder = edit_rows(mmlu_folder(tmp_path / "mmlu"), lengthen)
    assert main(build_argv(tiny_llama, {"dataset": str(folder)})) == 2
    line = one_error_line(capsys)
    assert "longer than the subject's context of 1024 tokens" in line
    assert "shorten or remove the long questions" in line


# ---------------------------------------------------------------- adapters


def lora_folder(model: Path, folder: Path, targets: list[str]) -> Path:
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model)
    config = peft.LoraConfig(r=2, target_modules=targets, init_lora_weights=False)
    peft.get_peft_model(base, config).save_pretrained(folder)
    return folder


@pytest.mark.filterwarnings("ignore")
def test_an_adapter_for_another_architecture_is_one_line(tiny_llama, tiny_gpt2, tmp_path, capsys):
    adapter = lora_folder(tiny_gpt2, tmp_path / "gpt2-lora", ["c_attn"])
    argv = build_argv(tiny_llama, {}, "--subject-peft", str(adapter))
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert f"PEFT adapter {adapter}" in line and "does not fit the subject" in line


BAD_ADAPTERS = {
    "a config that is not JSON": (
        lambda a: (a / "adapter_config.json").write_text("{not json"),
        "is not valid JSON",
    ),
    "a config without peft_type": (
        lambda a: (a / "adapter_config.json").write_text("[1, 2]"),
        "is not a PEFT config",
    ),
    "corrupt weights": (
        lambda a: (a / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 10),
        "cannot be read",
    ),
    "NaN weights": (
        lambda a: _nan_adapter(a / "adapter_model.safetensors"),
        "holds NaN or infinite values",
    ),
}


def _nan_adapter(file: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(file))
    name = sorted(tensors)[0]
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(file))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kind", BAD_ADAPTERS)
def test_a_bad_adapter_is_one_line_before_weights_load(
    tiny_llama, tmp_path, monkeypatch, capsys, kind
):
    adapter = lora_folder(tiny_llama, tmp_path / "lora", ["q_proj"])
    damage, expected = BAD_ADAPTERS[kind]
    damage(adapter)
    no_weights(monkeypatch)
    assert main(build_argv(tiny_llama, {}, "--subject-peft", str(adapter))) == 2
    assert expected in one_error_line(capsys)


# ---------------------------------------------------------------- SAEs


def test_an_sae_with_non_finite_weights_is_an_error(tmp_path):
    sae = random_sae()
    sae.W_dec[3, 2] = float("inf")
    folder = save_sae(tmp_path / "sae", sae)
    with pytest.raises(IntrospectError, match=r"tensor 'W_dec' holds NaN or infinite values"):
        load_sae(folder)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / WEIGHTS).write_bytes(b"\x10\x00\x00\x00"), "cannot be read"),
        (lambda f: (f / WEIGHTS).write_bytes((f / WEIGHTS).read_bytes()[:-40]), "cannot be read"),
        (lambda f: (f / "cfg.json").write_text("[]"), "is not a JSON object"),
        (lambda f: _cfg(f, d_in="8"), "d_in='8', not a positive integer"),
        (lambda f: (f / "cfg.json").write_bytes(b"\xff\xfe"), "is not valid JSON"),
    ],
)
def test_a_corrupt_sae_is_an_error_before_any_model_loads(tmp_path, damage, expected):
    folder = save_sae(tmp_path / "sae", random_sae())
    damage(folder)
    with pytest.raises(IntrospectError, match=expected):
        read_config(folder)  # what the features type checks before loading the subject


def _cfg(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, **changes}))


def test_a_corrupt_sae_through_the_command_is_one_line(tiny_llama, tmp_path, monkeypatch, capsys):
    folder = save_sae(tmp_path / "sae", random_sae(d_in=32))
    (folder / WEIGHTS).write_bytes(b"\x10\x00\x00\x00")
    no_weights(monkeypatch)
    argv = ["ground-truth", "build", "features", "--subject", str(tiny_llama), "--limit", "2"]
    assert main([*argv, "--metadata", json.dumps({"source": "sae", "sae": str(folder)})]) == 2
    assert "cannot be read" in one_error_line(capsys)
