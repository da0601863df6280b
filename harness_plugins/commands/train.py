"""``introspect train``: LoRA training of subjects (instilled preferences) and explainers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness_plugins.commands.common import metadata_option


def _training_config(args: argparse.Namespace) -> Any:
    from harness_plugins.training.lora import TrainingConfig

    return TrainingConfig(
        epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        seed=args.seed,
        wandb_project=None if args.wandb_project in ("", "none") else args.wandb_project,
    )


def _spec(name: str, peft: str | None) -> Any:
    from ground_truth.subject import ModelSpec

    return ModelSpec.from_arguments({"pretrained": name, "peft": peft})


def cmd_train_instill(args: argparse.Namespace) -> int:
    from harness_plugins.builtin.preferences.training import instill

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
    from harness_plugins.builtin.preferences.training import train_reports

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


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (LoRA)")
    group.add_argument("--epochs", type=float, default=1.0, help="passes over the examples")
    group.add_argument(
        "--max-steps",
        type=int,
        default=-1,
        help="stop after N optimizer steps (overrides --epochs)",
    )
    group.add_argument("--learning-rate", type=float, default=2e-4)
    group.add_argument("--batch-size", type=int, default=8)
    group.add_argument("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2 r)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--wandb-project", default="lm-eval-introspect", help="W&B project ('none' to disable)"
    )
    group.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )


def add_commands(sub: Any) -> None:
    train = sub.add_parser("train", help="LoRA training: instill preferences, train reports")
    tr = train.add_subparsers(dest="action", metavar="ACTION", required=True)
    instill = tr.add_parser(
        "instill", help="fine-tune a subject to choose by random instilled weights"
    )
    instill.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    instill.add_argument("--out", required=True, help="adapter folder to write")
    instill.add_argument("--scenarios", help="scenarios JSON (default: the built-in set)")
    instill.add_argument("--num-scenarios", type=int, help="use only the first N scenarios")
    instill.add_argument(
        "--weights", help="CSV of weights to instill (scenario, attr1..5); default: random"
    )
    instill.add_argument("--examples-per-scenario", type=int, default=50)
    _add_training_arguments(instill)
    instill.set_defaults(func=cmd_train_instill)
    report = tr.add_parser("report", help="fine-tune an explainer to report decision weights")
    report.add_argument("--explainer", required=True, help="model alias, local folder or Hub id")
    report.add_argument(
        "--explainer-peft", help="adapter of the explainer to continue from (e.g. an instilled one)"
    )
    report.add_argument("--subject", help="whose weights to report (default: the explainer itself)")
    report.add_argument("--subject-peft", help="adapter of the subject")
    report.add_argument("--reference", choices=("learned", "instilled"), default="learned")
    report.add_argument("--repeats", type=int, default=1, help="copies of each train example")
    report.add_argument("--metadata", help="further introspect_preferences options as JSON")
    report.add_argument("--out", required=True, help="adapter folder to write")
    _add_training_arguments(report)
    report.set_defaults(func=cmd_train_report)
    explainer = tr.add_parser(
        "explainer", help="fine-tune an explainer on the train partitions of explanation types"
    )
    explainer.add_argument("--subject", required=True, help="model whose internals are explained")
    explainer.add_argument("--subject-peft", help="adapter of the subject")
    explainer.add_argument(
        "--explainer", help="model to train (default: the subject: self-explanation)"
    )
    explainer.add_argument("--explainer-peft", help="adapter of the explainer to continue from")
    explainer.add_argument(
        "--types",
        required=True,
        help="comma-separated types, e.g. input_ablation,activation_patching,features",
    )
    explainer.add_argument("--limit", type=int, help="at most N train documents per type")
    explainer.add_argument("--metadata", help="task options as JSON, shared by every type")
    explainer.add_argument("--out", required=True, help="adapter folder to write")
    _add_training_arguments(explainer)
    explainer.set_defaults(func=cmd_train_explainer)
