"""The flags of ``introspect train``: lm-eval's ``--name_with_underscores`` style, grouped."""

from __future__ import annotations

import argparse
from typing import Any


def add_option(parser: Any, name: str, **kwargs: Any) -> None:
    """``--name_with_underscores`` (lm-eval's style), plus ``--name-with-dashes`` hidden."""
    parser.add_argument(f"--{name}", **kwargs)
    if "_" in name:
        hidden = {k: v for k, v in kwargs.items() if k in ("type", "action", "choices")}
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
            **hidden,
        )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (LoRA)")
    add_option(group, "epochs", type=float, default=1.0, help="passes over the examples")
    add_option(
        group, "max_steps", type=int, default=-1, help="stop after N steps (overrides --epochs)"
    )
    add_option(group, "learning_rate", type=float, default=2e-4, help="peak learning rate")
    add_option(
        group,
        "warmup_ratio",
        type=float,
        default=0.0,
        help="share of the steps to warm the learning rate up from 0 (0: full rate from step 1)",
    )
    add_option(group, "batch_size", type=int, default=8, help="examples per device step")
    add_option(
        group,
        "gradient_accumulation_steps",
        type=int,
        default=1,
        help="device steps per optimizer step",
    )
    add_option(group, "max_length", type=int, default=1024, help="tokens per example (cut left)")
    add_option(group, "lora_r", type=int, default=16, help="LoRA rank")
    add_option(group, "lora_alpha", type=int, default=None, help="LoRA alpha (default: 2 r)")
    add_option(group, "lora_dropout", type=float, default=0.0, help="LoRA dropout")
    add_option(
        group,
        "target_modules",
        default="all-linear",
        help="comma-separated module names to adapt, e.g. q_proj,v_proj",
    )
    add_option(
        group,
        "save_steps",
        type=float,
        default=0.25,
        help="checkpoint every N steps (below 1: that share of the run), for --resume",
    )
    add_option(group, "seed", type=int, default=0, help="random seed")
    add_option(
        group,
        "gradient_checkpointing",
        action="store_true",
        default=False,
        help="recompute each block's activations in the backward pass: less memory, "
        "~30%% more compute, same gradients",
    )
    add_option(
        group,
        "bf16",
        choices=("auto", "true", "false"),
        default="auto",
        help="bfloat16 autocast (approximate); auto: where the GPU or CPU does it natively",
    )
    add_option(
        group,
        "full_logits",
        action="store_true",
        default=False,
        help="compute logits at every position, not only where the reply is learned "
        "(same loss, more memory; for comparison)",
    )
    add_option(
        group,
        "wandb_args",
        default=None,
        help="log to W&B, as lm-eval: project=P,name=N,... (default: no W&B)",
    )
    group.add_argument("--wandb-project", help=argparse.SUPPRESS)  # the old opt-out form
    add_option(
        group,
        "resume",
        action="store_true",
        default=False,
        help="continue an interrupted run from its last checkpoint (error if it has none)",
    )


def add_explainer_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("learning curve and projections")
    add_option(
        group,
        "eval_steps",
        type=int,
        default=0,
        help="every N steps (and before the first, after the last) compute the held-out loss "
        "and the type's metrics on a held-out slice of the TRAIN partition; console, "
        "learning_curve.json beside the adapter, W&B when --wandb_args; 0: off",
    )
    add_option(
        group,
        "eval_examples",
        type=int,
        default=16,
        help="held-out documents per type, drawn by --seed from the train documents and "
        "never trained on (with --limit, fetched on top of it)",
    )
    add_option(
        group,
        "eval_metric",
        default=None,
        help="metric for the console line and early stop (default: the type's first metric "
        "with a value, e.g. label_match)",
    )
    add_option(
        group,
        "eval_max_tokens",
        type=int,
        default=16,
        help="at most N generated tokens per held-out answer",
    )
    add_option(
        group,
        "early_stop_patience",
        type=int,
        default=None,
        help="stop once the held-out metric has not improved for N evaluations "
        "(default: never; the adapter kept is the last one)",
    )
    add_option(
        group,
        "learn_projection",
        choices=("true", "false"),
        default="true",
        help="train a linear projection per subject layer (subject width -> explainer width, "
        "no bias) with the adapter, starting from the fitted map (cross) or scale * I (self), "
        "saved as projections.safetensors; false: slots keep the fixed map",
    )
    add_option(
        group,
        "projection_learning_rate",
        type=float,
        default=None,
        help="the projections' own peak learning rate (default: --learning_rate)",
    )
    add_option(
        group,
        "projection_init",
        choices=("fixed", "answer_probe"),
        default="fixed",
        help="where the projections start: the fixed path (scale * I, or the fitted map), or "
        "answer_probe: a ridge map from each training slot's vector to its answer's token "
        "embeddings (ridge by cross-validation on the training examples)",
    )
