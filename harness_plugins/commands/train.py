"""``introspect train``: LoRA training of subjects (instilled preferences) and explainers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness_plugins.commands.common import metadata_option
from harness_plugins.commands.train_arguments import (
    add_explainer_arguments,
    add_option,
    add_training_arguments,
)
from harness_plugins.errors import IntrospectError


def parse_wandb_args(text: str | None) -> dict[str, str]:
    """lm-eval's ``--wandb_args project=P,name=N,...`` as a dict ({} when not given: no W&B)."""
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise IntrospectError(
                f"--wandb_args: expected KEY=VALUE[,KEY=VALUE], got {part!r} "
                "(example: --wandb_args project=introspect,name=run1)"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def _training_config(args: argparse.Namespace) -> Any:
    from harness_plugins.training.lora import TrainingConfig

    wandb = parse_wandb_args(args.wandb_args)
    legacy = getattr(args, "wandb_project", None)  # the hidden --wandb-project alias
    if legacy and legacy not in ("", "none"):
        wandb.setdefault("project", legacy)
    if wandb:
        wandb.setdefault("project", "lm-eval-introspect")
    modules = args.target_modules
    return TrainingConfig(
        epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        gradient_accumulation=args.gradient_accumulation_steps,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha if args.lora_alpha is not None else 2 * args.lora_r,
        lora_dropout=args.lora_dropout,
        target_modules=modules if modules == "all-linear" else modules.split(","),
        max_length=args.max_length,
        save_steps=args.save_steps,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        wandb_project=wandb.pop("project", None),
        run_name=wandb.pop("name", None),
        wandb_args=wandb,
        gradient_checkpointing=args.gradient_checkpointing,
        bf16={"auto": None, "true": True, "false": False}[args.bf16],
        full_logits=args.full_logits,
    )


def _spec(name: str, peft: str | None) -> Any:
    from ground_truth.subject import ModelSpec

    return ModelSpec.from_arguments({"pretrained": name, "peft": peft})


def cmd_train_instill(args: argparse.Namespace) -> int:
    from harness_plugins.training.preferences import instill

    manifest = instill(
        _spec(args.subject, None),
        Path(args.out),
        scenarios_file=args.scenarios,
        num_scenarios=args.num_scenarios,
        per_scenario=args.examples_per_scenario,
        seed=args.seed,
        config=_training_config(args),
        resume=args.resume,
        weights_file=args.weights,
    )
    print(
        f"instilled {'given' if args.weights else 'random'} weights into {args.subject}: {manifest['scenarios']} scenarios x "
        f"{manifest['per_scenario']} examples, {manifest['steps']} steps in {manifest['seconds']:.0f} s; "
        f"adapter, scenarios and weights in {args.out}"
    )
    print(
        f"evaluate: lm_eval --model introspect --model_args pretrained={args.subject},peft={args.out} "
        '--tasks introspect_preferences --metadata \'{"reference": "instilled"}\''
    )
    return 0


def cmd_train_report(args: argparse.Namespace) -> int:
    from harness_plugins.training.preferences import train_reports

    metadata = {
        **metadata_option(args.metadata),
        "pretrained": args.explainer,
        "reference": args.reference,
    }
    if args.explainer_peft:
        metadata["peft"] = args.explainer_peft
    if args.subject:
        metadata["subject"] = args.subject
    if args.subject_peft:
        metadata["subject_peft"] = args.subject_peft
    manifest = train_reports(
        _spec(args.explainer, args.explainer_peft),
        Path(args.out),
        metadata=metadata,
        repeats=args.repeats,
        config=_training_config(args),
        resume=args.resume,
    )
    print(
        f"trained {args.explainer} to report {args.reference} weights of {manifest['subject']} on "
        f"{manifest['train_scenarios']} train scenarios: {manifest['steps']} steps in "
        f"{manifest['seconds']:.0f} s; adapter in {args.out}"
    )
    return 0


def _evaluation(args: argparse.Namespace) -> Any:
    from harness_plugins.training.explainer import EvalConfig

    if args.eval_steps < 0 or args.eval_examples < 1:
        raise IntrospectError(
            f"--eval_steps must be >= 0 and --eval_examples >= 1 (got {args.eval_steps} and "
            f"{args.eval_examples}); --eval_steps 0 turns the learning curve off"
        )
    if args.early_stop_patience and not args.eval_steps:
        raise IntrospectError("--early_stop_patience needs --eval_steps N (the held-out metric)")
    return EvalConfig(
        every=args.eval_steps,
        examples=args.eval_examples,
        patience=args.early_stop_patience,
        metric=args.eval_metric,
        max_new_tokens=args.eval_max_tokens,
    )


def cmd_train_explainer(args: argparse.Namespace) -> int:
    from harness_plugins.training.explainer import train_explainer
    from harness_plugins.training.lora import format_loss

    explainer = args.explainer or args.subject
    metadata = {**metadata_option(args.metadata), "subject": args.subject}
    if args.subject_peft:
        metadata["subject_peft"] = args.subject_peft
    types = [t.strip().removeprefix("introspect_") for t in args.types.split(",") if t.strip()]
    manifest = train_explainer(
        _spec(explainer, args.explainer_peft),
        types,
        Path(args.out),
        metadata=metadata,
        limit=args.limit,
        config=_training_config(args),
        resume=args.resume,
        evaluation=_evaluation(args),
        learn_projection=args.learn_projection == "true",
        projection_learning_rate=args.projection_learning_rate,
        projection_init=args.projection_init,
    )
    counts = ", ".join(f"{name} {stats['documents']}" for name, stats in manifest["types"].items())
    print(
        f"trained explainer {explainer} on {args.subject} ({counts} train documents): "
        f"{manifest['steps']} steps in {manifest['seconds']:.0f} s, loss "
        f"{format_loss(manifest['first_loss'])} -> {format_loss(manifest['final_loss'])}; adapter in {args.out}"
    )
    print(
        f"evaluate: lm_eval --model introspect --model_args pretrained={explainer},peft={args.out} "
        f'--tasks {",".join("introspect_" + t for t in types)} --metadata \'{{"subject": "{args.subject}"}}\''
    )
    return 0


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after each help line that has a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def add_commands(sub: Any) -> None:
    train = sub.add_parser("train", help="LoRA training: instill preferences, train reports")
    tr = train.add_subparsers(dest="action", metavar="ACTION", required=True)
    formatter = DefaultsHelpFormatter
    instill = tr.add_parser(
        "instill",
        help="fine-tune a subject to choose by random instilled weights",
        formatter_class=formatter,
    )
    instill.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    instill.add_argument("--out", required=True, help="adapter folder to write")
    instill.add_argument("--scenarios", help="scenarios JSON (default: the built-in set)")
    add_option(instill, "num_scenarios", type=int, help="use only the first N scenarios")
    instill.add_argument(
        "--weights", help="CSV of weights to instill (scenario, attr1..5); default: random"
    )
    add_option(instill, "examples_per_scenario", type=int, default=50, help="examples per scenario")
    add_training_arguments(instill)
    instill.set_defaults(func=cmd_train_instill)
    report = tr.add_parser(
        "report",
        help="fine-tune an explainer to report decision weights",
        formatter_class=formatter,
    )
    report.add_argument("--explainer", required=True, help="model alias, local folder or Hub id")
    add_option(
        report,
        "explainer_peft",
        help="adapter of the explainer to continue from (e.g. an instilled one)",
    )
    report.add_argument("--subject", help="whose weights to report (default: the explainer itself)")
    add_option(report, "subject_peft", help="adapter of the subject")
    report.add_argument(
        "--reference",
        choices=("learned", "instilled"),
        default="learned",
        help="which weights to report",
    )
    report.add_argument("--repeats", type=int, default=1, help="copies of each train example")
    report.add_argument("--metadata", help="further introspect_preferences options as JSON")
    report.add_argument("--out", required=True, help="adapter folder to write")
    add_training_arguments(report)
    report.set_defaults(func=cmd_train_report)
    explainer = tr.add_parser(
        "explainer",
        help="fine-tune an explainer on the train partitions of explanation types",
        formatter_class=formatter,
    )
    explainer.add_argument("--subject", required=True, help="model whose internals are explained")
    add_option(explainer, "subject_peft", help="adapter of the subject")
    explainer.add_argument(
        "--explainer", help="model to train (default: the subject: self-explanation)"
    )
    add_option(explainer, "explainer_peft", help="adapter of the explainer to continue from")
    explainer.add_argument(
        "--types",
        required=True,
        help="comma-separated types, e.g. input_ablation,activation_patching,features",
    )
    explainer.add_argument("--limit", type=int, help="at most N train documents per type")
    explainer.add_argument("--metadata", help="task options as JSON, shared by every type")
    explainer.add_argument("--out", required=True, help="adapter folder to write")
    add_training_arguments(explainer)
    add_explainer_arguments(explainer)
    explainer.set_defaults(func=cmd_train_explainer)
    from harness_plugins.commands.plots import learning

    learning.add_command(tr, formatter)
