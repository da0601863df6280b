"""The ``introspect`` command: plugins, options, models, tasks, ground truth, CI gate."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError, install_one_line_errors


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _type_name(task_or_type: str) -> str:
    from harness_plugins.lm_eval_adapter.task import TASK_PREFIX

    return task_or_type.removeprefix(TASK_PREFIX)


def _metadata(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise IntrospectError(
            f"--metadata is not valid JSON ({error}); example: '{{\"seed\": 1}}'"
        ) from None
    if not isinstance(value, dict):
        raise IntrospectError("--metadata must be a JSON object, e.g. '{\"seed\": 1}'")
    return value


# ---------------------------------------------------------------------------- commands


def cmd_plugins(args: argparse.Namespace) -> int:
    from harness_plugins.registry import get_registry

    registry = get_registry()
    for plugin in registry.plugins:
        print(f"{plugin.name}  [{plugin.source}]")
        for kind, names in plugin.registered.items():
            print(f"    {kind}: {', '.join(names)}")
        for error in plugin.errors:
            print(f"    error: {error}")
        if not plugin.registered and not plugin.errors:
            print("    (registered nothing)")
    failed = sum(bool(p.errors) for p in registry.plugins)
    print(f"\n{len(registry.plugins)} plugins, {failed} with errors")
    return 0


def cmd_options(args: argparse.Namespace) -> int:
    from harness_plugins.lm_eval_adapter.task import task_name_for
    from harness_plugins.options import describe_options
    from harness_plugins.registry import get_registry

    explanation = get_registry().explanation_type(_type_name(args.task))
    print(f"{task_name_for(explanation.name)}: {explanation.description}\n")
    rows = []
    for name, default, meaning in describe_options(explanation.all_options()):
        lines = textwrap.wrap(meaning, 72) or [""]
        rows.append((name, default, lines[0]))
        rows.extend(("", "", line) for line in lines[1:])
    print(_table(["option", "default", "meaning"], rows))
    print(
        f"\nGive options with --metadata '{{\"seed\": 1}}'; metrics: {', '.join(explanation.metrics)}"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness_plugins.registry import get_registry

    aliases = get_registry().model_aliases
    print(
        _table(
            ["alias", "description"], [(name, a.description) for name, a in sorted(aliases.items())]
        )
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from harness_plugins.lm_eval_adapter.index import GROUP, task_config_dir

    if args.path:
        print(task_config_dir())
        return 0
    from harness_plugins.lm_eval_adapter.task import task_name_for
    from harness_plugins.registry import get_registry

    types = get_registry().explanation_types
    rows = [(task_name_for(name), t.description) for name, t in sorted(types.items())]
    print(_table(["task", "explanation"], rows))
    print(f"\ngroup {GROUP!r} runs them all; YAML folder for --include_path: {task_config_dir()}")
    return 0


def cmd_ground_truth_build(args: argparse.Namespace) -> int:
    from harness_plugins.references import ReferencePipeline

    metadata = {**_metadata(args.metadata), "subject": args.subject}
    if args.subject_peft:
        metadata["subject_peft"] = args.subject_peft
    pipeline = ReferencePipeline(_type_name(args.task), metadata)
    docs = pipeline.ensure(args.limit or len(pipeline.questions()))
    record = pipeline.record
    built = record.references_built
    how = f"built {built} in {record.reference_build_seconds:.1f} s" if built else "all from cache"
    print(f"{pipeline.task}: {len(docs)} references for {args.subject} ({how})")
    print(f"  subject fingerprint {record.subject_fingerprint}, key {record.reference_key}")
    print(f"  {record.reference_cache}")
    return 0


def cmd_ground_truth_ls(args: argparse.Namespace) -> int:
    from ground_truth.cache import ReferenceStore

    store = ReferenceStore()
    entries = store.entries()
    rows = [
        (
            e["explanation_type"],
            e["type_version"],
            e.get("subject", "?"),
            e["subject_fingerprint"],
            e["rows"],
            e["updated"],
            e["key"],
        )
        for e in entries
    ]
    if rows:
        print(_table(["type", "version", "subject", "fingerprint", "rows", "updated", "key"], rows))
    print(f"\n{len(rows)} reference datasets in {store.root}")
    return 0


def cmd_ground_truth_rm(args: argparse.Namespace) -> int:
    from ground_truth.cache import ReferenceStore

    store = ReferenceStore()
    entries = store.entries()
    if not (args.all or args.keys or args.type):
        raise IntrospectError(
            "ground-truth rm needs KEY..., --type TYPE or --all (see `introspect ground-truth ls`)"
        )
    chosen = [
        e
        for e in entries
        if args.all
        or (args.type and e["explanation_type"] == _type_name(args.type))
        or any(e["key"].startswith(k) for k in args.keys)
    ]
    unknown = [k for k in args.keys if not any(e["key"].startswith(k) for e in entries)]
    if unknown:
        raise IntrospectError(
            f"no reference dataset with key {', '.join(unknown)}; `introspect ground-truth ls` lists them"
        )
    for entry in chosen:
        store.remove(Path(entry["path"]))
        print(f"removed {entry['explanation_type']} {entry['key']} ({entry['rows']} rows)")
    print(f"{len(chosen)} removed")
    return 0


def cmd_preferences_fit(args: argparse.Namespace) -> int:
    from harness_plugins.builtin.preferences.scenarios import load_scenarios
    from harness_plugins.builtin.preferences.weights_fit import fit_choices_csv, write_weights_csv

    scenarios = load_scenarios(args.scenarios)
    ranges = {s.short_name: [(a.low, a.high) for a in s.attributes] for s in scenarios}
    names = {s.short_name: [a.name for a in s.attributes] for s in scenarios}
    frame = fit_choices_csv(args.choices, ranges, l2=args.l2, names=names)
    write_weights_csv(frame, args.out)
    usable = frame[~frame["degenerate"]]
    print(
        f"fitted {len(frame)} scenarios from {args.choices} ({int(frame['n_choices'].sum())} choices); "
        f"mean held-out agreement {usable['agreement'].mean():.3f}; wrote {args.out}"
    )
    return 0


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
    )
    print(
        f"instilled random weights into {args.subject}: {manifest['scenarios']} scenarios x "
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
        **_metadata(args.metadata),
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
    metadata = {**_metadata(args.metadata), "subject": args.subject}
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


def cmd_gate(args: argparse.Namespace) -> int:
    from harness_plugins.commands import gate

    return gate.run(args)


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="introspect",
        description="lm-eval-introspect: score how well a model explains its own internals.",
        epilog="Evaluate with lm-eval: lm_eval --model introspect --model_args "
        "pretrained=smollm2-135m-instruct --tasks introspect_input_ablation",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "plugins", help="list plugins, where they come from and what they register"
    ).set_defaults(func=cmd_plugins)
    options = sub.add_parser("options", help="list a task's options and defaults")
    options.add_argument(
        "task", help="task (introspect_input_ablation) or explanation type (input_ablation)"
    )
    options.set_defaults(func=cmd_options)
    sub.add_parser("models", help="list model aliases").set_defaults(func=cmd_models)
    tasks = sub.add_parser("tasks", help="list introspect tasks")
    tasks.add_argument(
        "--path", action="store_true", help="print the task folder, for lm_eval --include_path"
    )
    tasks.set_defaults(func=cmd_tasks)

    ground_truth = sub.add_parser(
        "ground-truth", help="build, list and remove cached reference datasets"
    )
    gt = ground_truth.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = gt.add_parser("build", help="build (or extend) the references of a task for a subject")
    build.add_argument("task", help="task or explanation type, e.g. introspect_input_ablation")
    build.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    build.add_argument("--subject-peft", help="PEFT adapter applied to the subject")
    build.add_argument("--limit", type=int, help="build only the first N documents")
    build.add_argument("--metadata", help="task options as JSON, as for lm_eval --metadata")
    build.set_defaults(func=cmd_ground_truth_build)
    gt.add_parser("ls", help="list cached reference datasets").set_defaults(
        func=cmd_ground_truth_ls
    )
    rm = gt.add_parser("rm", help="remove cached reference datasets")
    rm.add_argument("keys", nargs="*", help="keys (or key prefixes) from `ground-truth ls`")
    rm.add_argument("--type", help="remove every dataset of this explanation type")
    rm.add_argument("--all", action="store_true", help="remove every dataset")
    rm.set_defaults(func=cmd_ground_truth_rm)

    preferences = sub.add_parser("preferences", help="decision-weight tools")
    pref = preferences.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = pref.add_parser("fit", help="fit decision weights to choices (the paper's estimator)")
    fit.add_argument(
        "--scenarios", required=True, help="scenarios JSON (may hold more scenarios than used)"
    )
    fit.add_argument(
        "--choices",
        required=True,
        help="CSV: scenario, selection, A_attribute_1..5, B_attribute_1..5",
    )
    fit.add_argument("--out", required=True, help="CSV to write: one row of weights per scenario")
    fit.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic fit")
    fit.set_defaults(func=cmd_preferences_fit)

    train = sub.add_parser("train", help="LoRA training: instill preferences, train reports")
    tr = train.add_subparsers(dest="action", metavar="ACTION", required=True)
    instill = tr.add_parser(
        "instill", help="fine-tune a subject to choose by random instilled weights"
    )
    instill.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    instill.add_argument("--out", required=True, help="adapter folder to write")
    instill.add_argument("--scenarios", help="scenarios JSON (default: the built-in set)")
    instill.add_argument("--num-scenarios", type=int, help="use only the first N scenarios")
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

    from harness_plugins.commands import plots

    plot = sub.add_parser(
        "plot", help="PNG plots of lm-eval results (per-layer curves, metric bars)"
    )
    plots.add_arguments(plot)
    plot.set_defaults(func=plots.run)

    from harness_plugins.commands import matrix

    matrix_parser = sub.add_parser(
        "matrix", help="every (explainer, subject) pair: CSV, heatmaps, self-minus-cross gaps"
    )
    matrix.add_arguments(matrix_parser)
    matrix_parser.set_defaults(func=matrix.run)

    from harness_plugins.commands import gate

    gate_parser = sub.add_parser(
        "gate", help="pass/fail lm-eval results against thresholds (for CI)"
    )
    gate.add_arguments(gate_parser)
    gate_parser.set_defaults(func=cmd_gate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    install_one_line_errors()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IntrospectError as error:
        print(f"introspect: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
