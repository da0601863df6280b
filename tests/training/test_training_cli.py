"""``introspect train`` flags as an lm-eval user expects them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ground_truth.subject import ModelSpec
from harness_plugins.commands.cli import build_parser
from harness_plugins.commands.train import _training_config, parse_wandb_args
from harness_plugins.errors import IntrospectError
from harness_plugins.training.lora import Example, TrainingConfig, name_base_model, train_lora

BASE = ["train", "explainer", "--subject", "m", "--types", "input_ablation", "--out", "o"]


def test_help_shows_underscored_flags_with_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*BASE[:2], "--help"])
    text = capsys.readouterr().out
    for flag in ("--max_steps", "--batch_size", "--lora_alpha", "--target_modules"):
        assert flag in text
    for flag in ("--gradient_accumulation_steps", "--max_length", "--save_steps", "--wandb_args"):
        assert flag in text
    assert "--max-steps" not in text and "--wandb-project" not in text
    assert "(default: 8)" in text and "(default: all-linear)" in text


def test_dashed_forms_still_parse():
    args = build_parser().parse_args([*BASE, "--max-steps", "3", "--batch-size", "2"])
    assert (args.max_steps, args.batch_size) == (3, 2)


def test_wandb_is_opt_in_and_knobs_reach_the_config():
    config = _training_config(build_parser().parse_args(BASE))
    assert config.wandb_project is None and config.lora_alpha == 2 * config.lora_r
    assert config.warmup_ratio == 0.0 and config.save_steps == 0.25
    args = [*BASE, "--wandb_args", "project=p,name=n,entity=e", "--lora_alpha", "7"]
    args += ["--target_modules", "q_proj,v_proj", "--gradient_accumulation_steps", "4"]
    args += ["--max_length", "256", "--save_steps", "5"]
    config = _training_config(build_parser().parse_args(args))
    assert (config.wandb_project, config.run_name, config.wandb_args) == ("p", "n", {"entity": "e"})
    assert config.lora_alpha == 7 and config.target_modules == ["q_proj", "v_proj"]
    assert (config.gradient_accumulation, config.max_length, config.save_steps) == (4, 256, 5)


def test_memory_knobs_reach_the_config():
    config = _training_config(build_parser().parse_args(BASE))
    assert (config.gradient_checkpointing, config.bf16, config.full_logits) == (False, None, False)
    args = [*BASE, "--gradient_checkpointing", "--bf16", "false", "--full_logits"]
    config = _training_config(build_parser().parse_args(args))
    assert (config.gradient_checkpointing, config.bf16, config.full_logits) == (True, False, True)
    config = _training_config(build_parser().parse_args([*BASE, "--bf16", "true"]))
    assert config.bf16 is True


def test_bad_wandb_args_is_one_line_error():
    with pytest.raises(IntrospectError, match="--wandb_args: expected KEY=VALUE"):
        parse_wandb_args("project")


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    example = Example(({"role": "user", "content": "hi"},), "hello")
    with pytest.raises(IntrospectError, match="--resume: no checkpoint"):
        train_lora(
            ModelSpec("m"),
            [example],
            tmp_path / "out",
            TrainingConfig(),
            description={},
            resume=True,
        )


def test_adapter_names_its_base_as_the_user_did(tmp_path: Path):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "/root/.cache/introspect/models/x", "r": 4})
    )
    name_base_model(tmp_path, "smollm2-135m-instruct")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config == {"base_model_name_or_path": "smollm2-135m-instruct", "r": 4}
