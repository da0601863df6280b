"""The one LoRA training loop: instilled preferences, report training, trained explainers.

Every training command turns its data into `Example`s (a conversation and the assistant
reply to learn) and calls `train_lora`. The loss covers the reply tokens only; the model
sees the conversation through its own chat template, as it will at evaluation. Training
runs in a staging folder with checkpoints (``--resume`` continues an interrupted run);
only a finished adapter is moved to the output folder, with a manifest beside it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness_plugins.chat import encode_prompt, render
from harness_plugins.errors import IntrospectError

logger = logging.getLogger("introspect")

MANIFEST = "introspect_training.json"


@dataclass(frozen=True)
class Example:
    """A conversation (its last message is the user's) and the reply the model should give."""

    messages: tuple[Mapping[str, str], ...]
    answer: str


@dataclass
class TrainingConfig:
    """Hyper-parameters with defaults that train a LoRA adapter on CPU in minutes."""

    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    batch_size: int = 8
    gradient_accumulation: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"
    max_length: int = 1024
    seed: int = 0
    save_steps: int = 200
    logging_steps: int = 10
    wandb_project: str | None = "lm-eval-introspect"
    run_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def encode_example(tokenizer: Any, example: Example, max_length: int) -> dict[str, list[int]]:
    """Token ids and labels, with -100 on every prompt token so only the reply is learned."""
    prompt_ids = encode_prompt(tokenizer, list(example.messages))
    prompt_text, templated = render(tokenizer, list(example.messages))
    if templated:
        full = tokenizer.apply_chat_template(
            [*example.messages, {"role": "assistant", "content": example.answer}], tokenize=False
        )
        reply = full[len(prompt_text) :] if full.startswith(prompt_text) else example.answer
    else:
        reply = " " + example.answer + (tokenizer.eos_token or "")
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + reply_ids)[-max_length:]
    labels = ([-100] * len(prompt_ids) + reply_ids)[-max_length:]
    return {"input_ids": ids, "labels": labels}


class _Collator:
    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _staging(out: Path) -> Path:
    return out.parent / f".{out.name}.training"


def train_lora(
    base: Any,
    examples: Sequence[Example],
    out: Path,
    config: TrainingConfig,
    *,
    description: Mapping[str, Any],
    resume: bool = False,
) -> dict[str, Any]:
    """Train a LoRA adapter on ``examples`` from the base model ``base`` (a `ModelSpec`).

    Writes the adapter, its tokenizer and a manifest to ``out`` and returns the manifest.
    """
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from ground_truth.subject import check_peft, load_tokenizer, resolve_source
    from harness_plugins.plugins import get_registry

    if not examples:
        raise IntrospectError("no training examples: check the scenarios or types selected")
    out = Path(out)
    staging = _staging(out)
    if staging.exists() and not resume:
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)

    aliases = get_registry().model_aliases
    source = resolve_source(base, aliases)
    check_peft(base)
    tokenizer = load_tokenizer(base, aliases)
    encoded = [encode_example(tokenizer, example, config.max_length) for example in examples]
    dataset = datasets.Dataset.from_list(encoded)

    model = AutoModelForCausalLM.from_pretrained(
        source.path, gguf_file=source.gguf_file, dtype=torch.float32
    )
    if (
        base.peft
    ):  # continue training an existing adapter (e.g. report training on an instilled subject)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, base.peft, is_trainable=True)
    else:
        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=config.lora_dropout,
                target_modules=config.target_modules,
            ),
        )
    use_wandb = bool(config.wandb_project)
    if use_wandb:
        os.environ.setdefault("WANDB_PROJECT", config.wandb_project)
    arguments = TrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        report_to=["wandb"] if use_wandb else [],
        run_name=config.run_name or out.name,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        lr_scheduler_type="cosine",
        warmup_steps=0.05,  # a float below 1 is a share of the steps
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=dataset,
        data_collator=_Collator(tokenizer.pad_token_id),
    )
    started = time.perf_counter()
    checkpoints = sorted((staging / "checkpoints").glob("checkpoint-*"))
    result = trainer.train(
        resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None
    )
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    final = staging / "adapter"
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    manifest = {
        **description,
        "base": asdict(base),
        "examples": len(examples),
        "steps": int(result.global_step),
        "seconds": round(seconds, 1),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "config": asdict(config),
    }
    (final / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    if use_wandb:
        _finish_wandb()
    if out.exists():
        shutil.rmtree(out)
    os.replace(final, out)
    shutil.rmtree(staging, ignore_errors=True)
    logger.warning(
        "introspect: trained %s on %d examples: %d steps in %.0f s, loss %s -> %s",
        out,
        len(examples),
        manifest["steps"],
        seconds,
        _fmt(manifest["first_loss"]),
        _fmt(manifest["final_loss"]),
    )
    return manifest


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _finish_wandb() -> None:
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception:  # logging must never fail a finished training run
        pass


def read_manifest(adapter: str | Path) -> dict[str, Any]:
    """The manifest `train_lora` wrote beside an adapter ({} when there is none)."""
    path = Path(adapter) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
