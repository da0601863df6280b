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
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.prompts.chat import render
from harness_plugins.training.adapter_files import (  # noqa: F401  read_manifest: re-exported
    MANIFEST,
    name_base_model,
    read_manifest,
)

logger = logging.getLogger("introspect")


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
    save_steps: float = 0.25
    """Checkpoint every N steps; below 1, that share of the run (so short runs checkpoint)."""
    warmup_ratio: float = 0.0
    """Share of the steps that warm the learning rate up from 0; 0: full rate from step 1."""
    logging_steps: int = 10
    wandb_project: str | None = None
    """W&B is opt-in: None logs nowhere."""
    run_name: str | None = None
    wandb_args: dict[str, str] = field(default_factory=dict)
    gradient_checkpointing: bool = False
    """Recompute each block's activations in the backward pass instead of keeping them all
    (same gradients, ~30% more compute). Off by default; at batch 8 on SmolLM2-135M it
    halves the peak (benchmarks/training_memory.py)."""
    bf16: bool | None = None
    """bfloat16 autocast; None: where the hardware does it natively (recent GPUs, CPUs with
    AVX512-BF16 or AMX), which is ~2-3x faster on such CPUs and keeps bfloat16 activations
    (at batch 8 on SmolLM2-135M: 3.7 GB peak against 5.2 GB in float32)."""
    full_logits: bool = False
    """Logits at every position, as the model's own loss computes them: the same loss with
    batch x length x vocabulary floats more memory (kept to measure the saving against)."""
    group_by_length: bool = True
    """Batch rows of similar length (shuffled blocks of 50 batches, sorted within; the
    batches shuffled), so less of each batch is padding."""
    trim_tail: bool = True
    """Leave out the columns after the batch's last position that predicts a learned token."""
    share_prefix: bool = True
    """Run the tokens every row of a batch starts with once, not once per row. Same loss
    (`answer_loss`); off with ``lora_dropout`` (rows would share a dropout draw) and with
    gradient checkpointing (a recomputed block would extend the cache twice)."""
    extra: dict[str, Any] = field(default_factory=dict)


def encode_example(tokenizer: Any, example: Example, max_length: int) -> dict[str, Any]:
    """Token ids and labels (-100 on every prompt token, so only the reply is learned),
    and the vector slots of the prompt as positions and values."""
    from harness_plugins.prompts import vectors

    prompt_text, templated = render(tokenizer, list(example.messages))
    if templated:
        full = tokenizer.apply_chat_template(
            [*example.messages, {"role": "assistant", "content": example.answer}], tokenize=False
        )
        reply = full[len(prompt_text) :] if full.startswith(prompt_text) else example.answer
    else:  # a plain transcript ends "Assistant:"; the reply starts with its space, as generated
        reply = " " + example.answer + (tokenizer.eos_token or "")
    placeholder = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    prompt_ids, slots, blocks = vectors.encode(
        prompt_text,
        lambda piece, first: tokenizer(piece, add_special_tokens=first and not templated)[
            "input_ids"
        ],
        placeholder,
    )
    if blocks:
        raise IntrospectError(
            "training examples can carry vector slots, not writes at deeper blocks"
        )
    reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    cut = max(0, len(prompt_ids) + len(reply_ids) - max_length)
    if any(position < cut for position, _ in slots):
        raise IntrospectError(
            f"a training example is longer than max_length={max_length} and its vector would be cut"
        )
    return {
        "input_ids": (prompt_ids + reply_ids)[cut:],
        "labels": ([-100] * len(prompt_ids) + reply_ids)[cut:],
        "slot_positions": [position - cut for position, _ in slots],
        "slot_vectors": [vectors.vector(key).tolist() for _, key in slots],
        "slot_keys": [key for _, key in slots],
    }


class _Collator:
    """Right-pads a batch; vector slots become (row, position) pairs and their values."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        where, values, keys = [], [], []
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
            for position, vector in zip(row["slot_positions"], row["slot_vectors"], strict=True):
                where.append((i, position))
                values.append(vector)
            keys += row.get("slot_keys", [])
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask, "slot_keys": keys}
        batch["slot_positions"] = torch.tensor(where, dtype=torch.long).reshape(-1, 2)
        batch["slot_vectors"] = (
            torch.tensor(values, dtype=torch.float32) if values else torch.zeros((0, 0))
        )
        return batch


def _slot_trainer() -> type:
    from harness_plugins.training.slot_trainer import slot_trainer

    return slot_trainer()


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
    addons: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train a LoRA adapter on ``examples`` from the base model ``base`` (a `ModelSpec`).

    Writes the adapter, its tokenizer and a manifest to ``out`` and returns the manifest.
    ``addons``: Trainer callbacks that may also ``attach(trainer, tokenizer)`` before
    training and ``save(folder)`` into the adapter (learned projections, learning curve).
    """
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, TrainingArguments

    from ground_truth.subject import check_peft, load_tokenizer, resolve_source
    from harness_plugins.registry import get_registry
    from harness_plugins.training.answer_loss import Work
    from harness_plugins.training.slot_trainer import StepClock

    if not examples:
        raise IntrospectError("no training examples: check the scenarios or types selected")
    out = Path(out)
    staging = _staging(out)
    if staging.exists() and not resume:
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted(
        (staging / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])
    )
    if resume and not checkpoints:
        raise IntrospectError(
            f"--resume: no checkpoint of an interrupted run in {staging} (none was saved "
            "before it stopped; see --save_steps); run again without --resume"
        )

    aliases = get_registry().model_aliases
    source = resolve_source(base, aliases)
    check_peft(base)
    tokenizer = load_tokenizer(base, aliases)
    encoded = [encode_example(tokenizer, example, config.max_length) for example in examples]
    dataset = datasets.Dataset.from_list(
        [{**row, "length": len(row["input_ids"])} for row in encoded]
    )

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
        os.environ["WANDB_PROJECT"] = str(config.wandb_project)
        for key, value in config.wandb_args.items():  # entity=..., group=..., as lm-eval
            os.environ[f"WANDB_{key.upper()}"] = value
    arguments = TrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        logging_steps=_logging_steps(config, len(examples)),
        save_strategy="steps",
        save_steps=config.save_steps if config.save_steps < 1 else int(config.save_steps),
        save_total_limit=2,
        seed=config.seed,
        report_to=["wandb"] if use_wandb else [],
        run_name=config.run_name or out.name,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=native_bf16() if config.bf16 is None else config.bf16,
        gradient_checkpointing=config.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps
        dataloader_num_workers=0,  # collating a batch takes ~2 ms: workers would cost more
    )
    trainer = _slot_trainer()(
        model=model,
        args=arguments,
        train_dataset=dataset,
        data_collator=_Collator(tokenizer.pad_token_id),
    )
    trainer.full_logits = config.full_logits
    trainer.trim_tail = config.trim_tail
    trainer.group_by_length = config.group_by_length
    trainer.share_prefix = (
        config.share_prefix and not config.gradient_checkpointing and not config.lora_dropout
    )
    trainer.work = Work()
    clock = StepClock()
    trainer.add_callback(clock)
    for addon in addons:
        trainer.add_callback(addon)
        addon.attach(trainer, tokenizer, checkpoints[-1] if resume and checkpoints else None)
    started = time.perf_counter()
    result = trainer.train(
        resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None
    )
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    rates = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]

    final = staging / "adapter"
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    name_base_model(final, base.pretrained)
    extras = {key: value for addon in addons for key, value in addon.save(final).items()}
    manifest = {
        **description,
        "base": asdict(base),
        "examples": len(examples),
        "steps": int(result.global_step),
        "seconds": round(seconds, 1),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "first_learning_rate": rates[0] if rates else None,
        "config": asdict(config),
        "work": clock.summary(trainer.work),
        **extras,
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
        format_loss(manifest["first_loss"]),
        format_loss(manifest["final_loss"]),
    )
    return manifest


def native_bf16() -> bool:
    """Whether bfloat16 matrix work is native here (and so faster than float32)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _logging_steps(config: TrainingConfig, examples: int) -> int:
    """Log the loss a few times even in a short run (the manifest reports first and last)."""
    per_epoch = math.ceil(examples / (config.batch_size * config.gradient_accumulation))
    steps = config.max_steps if config.max_steps > 0 else math.ceil(per_epoch * config.epochs)
    return max(1, min(config.logging_steps, steps // 5))


def format_loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _finish_wandb() -> None:
    try:
        import wandb

        if wandb.run is not None:
            wandb.finish()
    except Exception:  # logging must never fail a finished training run
        pass
