"""The ``introspect`` command: plugins, options, models, tasks; the rest in one module per command."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from harness_plugins.commands.common import table, type_name
from harness_plugins.errors import IntrospectError, install_one_line_errors


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

    explanation = get_registry().explanation_type(type_name(args.task))
    print(f"{task_name_for(explanation.name)}: {explanation.description}\n")
    rows = []
    for name, default, meaning in describe_options(explanation.all_options()):
        lines = textwrap.wrap(meaning, 72) or [""]
        rows.append((name, default, lines[0]))
        rows.extend(("", "", line) for line in lines[1:])
    print(table(["option", "default", "meaning"], rows))
    print(
        f"\nGive options with --metadata '{{\"seed\": 1}}'; metrics: {', '.join(explanation.metrics)}"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from harness_plugins.registry import get_registry

    aliases = get_registry().model_aliases
    print(
        table(
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
    print(table(["task", "explanation"], rows))
    print(f"\ngroup {GROUP!r} runs them all; YAML folder for --include_path: {task_config_dir()}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from harness_plugins.commands import gate

    return gate.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="introspect",
        description="lm-eval-introspect: score how well a model explains its own internals.",
        epilog="Evaluate with lm-eval: lm_eval --model introspect --model_args "
        "pretrained=smollm2-135m-instruct --tasks introspect_input_ablation",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "eval",
        help="run lm_eval ARGS with --model introspect and the tasks registered "
        "(works with INTROSPECT_DISABLE_LM_EVAL_HOOK=1)",
        add_help=False,
    )

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

    from harness_plugins.commands import ground_truth, preferences, sae, train

    ground_truth.add_commands(sub)
    preferences.add_commands(sub)
    train.add_commands(sub)
    sae.add_commands(sub)

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

    from harness_plugins.commands import report

    report_parser = sub.add_parser(
        "report", help="report card of an lm-eval run: every score beside its baseline"
    )
    report.add_arguments(report_parser)
    report_parser.set_defaults(func=report.run)

    from harness_plugins.commands import judge

    judge_parser = sub.add_parser(
        "judge",
        help="re-grade an injected_thoughts run's logged answers with a judge model; "
        "agreement with the rules",
    )
    judge.add_arguments(judge_parser)
    judge_parser.set_defaults(func=judge.run)

    from harness_plugins.commands import gate

    gate_parser = sub.add_parser(
        "gate",
        help="pass/fail lm-eval results against thresholds (for CI)",
        epilog="exit status: 0 every check passed, 1 a check failed, 2 bad input (missing "
        "file, unknown task or metric, malformed threshold, runs that cannot be compared)",
    )
    gate.add_arguments(gate_parser)
    gate_parser.set_defaults(func=cmd_gate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    install_one_line_errors()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"]:  # lm_eval's own command line, introspect registered
        from harness_plugins.lm_eval_adapter.__main__ import main as lm_eval_main

        return lm_eval_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IntrospectError as error:
        print(f"introspect: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
