"""Self vs cross explanation, end to end, with one command: ``python examples/self_vs_cross/run.py``.

Does a model explain itself better than another model explains it? For two subjects
(SmolLM2-135M-Instruct and Gemma 3 270M) this script

1. builds the references of input ablation and activation patching for both subjects
   (train and test partitions; disjoint by question),
2. trains one explainer per (explainer model, subject) pair and seed on the train
   partition (``introspect train explainer``; the same steps and data for every pair),
3. evaluates the 2x2 matrix per seed on held-out test questions (``introspect matrix``
   with ``{subject}`` adapters, so each explainer uses the adapter trained on the subject it
   explains), and the untrained explainers with few-shot examples as a baseline,
4. writes ``report.md``: the matrices with 95% bootstrap intervals, the self-minus-cross
   gaps with paired bootstrap intervals and p-values, the trivial baseline, the figures,
   the budget and the wall time actually taken.

Every setting is an environment variable (see ``SETTINGS``); ``SMOKE=1`` shrinks them to a
check of the whole path (on tiny models given with ``SVC_MODELS``, minutes on 2 cores). Steps whose
output already exists are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# name: (default, SMOKE=1 default, meaning)
SETTINGS: dict[str, tuple[str, str, str]] = {
    "SVC_MODELS": (
        "smollm2-135m-instruct,gemma-3-270m",
        "smollm2-135m-instruct,gemma-3-270m",
        "the two models; each is a subject and an explainer",
    ),
    "SVC_TYPES": (
        "input_ablation,activation_patching",
        "input_ablation,activation_patching",
        "explanation types trained and evaluated",
    ),
    "SVC_SEEDS": ("0,1", "0", "training seeds (the questions and their partition stay fixed)"),
    "SVC_TRAIN_LIMIT": ("48", "4", "train documents per type and subject"),
    "SVC_STEPS": ("24", "2", "optimizer steps per explainer"),
    "SVC_BATCH": ("4", "2", "training examples per step"),
    "SVC_MAX_LENGTH": ("384", "256", "training tokens per example (Gemma's 262k vocabulary)"),
    "SVC_LORA_R": ("8", "4", "LoRA rank"),
    "SVC_LR": ("2e-4", "2e-4", "learning rate"),
    "SVC_LIMIT": ("32", "3", "held-out test documents per type"),
    "SVC_FEWSHOT": ("2", "1", "solved train examples for the untrained baseline (0: zero-shot)"),
    "SVC_UNTRAINED": ("1", "1", "1: also evaluate the untrained explainers (the baseline)"),
    "SVC_EVAL_BATCH": ("8", "4", "evaluation batch size"),
    "SVC_BOOTSTRAP": ("2000", "200", "bootstrap resamples for intervals and p-values"),
    "SVC_BUDGET_MIN": ("90", "2", "the stated budget in minutes on 2 CPU cores"),
    "SVC_OUT": ("results/self_vs_cross", "results/self_vs_cross_smoke", "output folder"),
    "SVC_DEVICE": ("cpu", "cpu", "device for training and evaluation"),
}

REPORT_METRICS = ("content_match", "exact_match", "changed_f1", "valid")
NUMBERS = (
    "SVC_TRAIN_LIMIT",
    "SVC_STEPS",
    "SVC_BATCH",
    "SVC_MAX_LENGTH",
    "SVC_LORA_R",
    "SVC_LR",
    "SVC_LIMIT",
    "SVC_FEWSHOT",
    "SVC_EVAL_BATCH",
    "SVC_BOOTSTRAP",
    "SVC_BUDGET_MIN",
)
FIGURE_METRICS = ("content_match", "changed_f1")
TRIVIAL = "unchanged_rate"


def settings(env: Mapping[str, str]) -> dict[str, str]:
    """The run's settings: the environment, else the defaults (SMOKE=1: the small ones)."""
    smoke = env.get("SMOKE", "0") not in ("", "0")
    chosen = {name: env.get(name) or values[1 if smoke else 0] for name, values in SETTINGS.items()}
    chosen["SMOKE"] = "1" if smoke else "0"
    for name in NUMBERS:
        try:
            float(chosen[name]) if name in ("SVC_LR", "SVC_BUDGET_MIN") else int(chosen[name])
        except ValueError:
            raise SystemExit(f"{name} must be a number, got {chosen[name]!r}") from None
    models = [m for m in chosen["SVC_MODELS"].split(",") if m.strip()]
    names = [Path(m).name for m in models]
    if len(models) != 2 or len(set(names)) != 2:
        raise SystemExit(
            f"SVC_MODELS must name two models with different last path parts, got {chosen['SVC_MODELS']!r}"
        )
    return chosen


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def adapter_dir(out: Path, seed: str, explainer: str, subject: str) -> Path:
    """Where the explainer trained for one (explainer, subject, seed) lives."""
    return out / "adapters" / f"seed{seed}" / Path(explainer).name / Path(subject).name


def plan(config: Mapping[str, str]) -> list[tuple[str, str, list[str], Path | None]]:
    """(phase, name, introspect arguments, output that marks it done) for every step."""
    out, models, types = (
        Path(config["SVC_OUT"]),
        _list(config["SVC_MODELS"]),
        _list(config["SVC_TYPES"]),
    )
    steps: list[tuple[str, str, list[str], Path | None]] = []
    for subject in models:
        for type_name in types:
            for partition, limit in (("train", "SVC_TRAIN_LIMIT"), ("test", "SVC_LIMIT")):
                steps.append(
                    (
                        "references",
                        f"{type_name} {partition} {subject}",
                        [
                            *("ground-truth", "build", f"introspect_{type_name}"),
                            *("--subject", subject, "--limit", config[limit]),
                            *("--metadata", json.dumps({"partition": partition})),
                        ],
                        None,  # cached by the tool itself
                    )
                )
    for seed in _list(config["SVC_SEEDS"]):
        for explainer in models:
            for subject in models:
                target = adapter_dir(out, seed, explainer, subject)
                steps.append(
                    (
                        "training",
                        f"seed {seed}: {Path(explainer).name} on {Path(subject).name}",
                        [
                            *("train", "explainer", "--subject", subject, "--explainer", explainer),
                            *("--types", config["SVC_TYPES"], "--limit", config["SVC_TRAIN_LIMIT"]),
                            *(
                                "--max_steps",
                                config["SVC_STEPS"],
                                "--batch_size",
                                config["SVC_BATCH"],
                            ),
                            *("--max_length", config["SVC_MAX_LENGTH"]),
                            *(
                                "--lora_r",
                                config["SVC_LORA_R"],
                                "--learning_rate",
                                config["SVC_LR"],
                            ),
                            *("--seed", seed, "--save_steps", "1.0", "--out", str(target)),
                        ],
                        target / "introspect_training.json",
                    )
                )
    evaluate = ["--subjects", ",".join(models), "--tasks", config["SVC_TYPES"]]
    evaluate += ["--limit", config["SVC_LIMIT"], "--batch-size", config["SVC_EVAL_BATCH"]]
    evaluate += ["--bootstrap-iters", config["SVC_BOOTSTRAP"], "--device", config["SVC_DEVICE"]]
    evaluate += ["--wandb-project", "none"]
    for seed in _list(config["SVC_SEEDS"]):
        explainers = [f"{m}+{adapter_dir(out, seed, m, '{subject}')}" for m in models]
        folder = out / "matrix" / f"seed{seed}"
        steps.append(
            (
                "evaluation",
                f"seed {seed}: trained explainers",
                ["matrix", "--explainers", ",".join(explainers), *evaluate, "--out", str(folder)],
                folder / "matrix.json",
            )
        )
    if config["SVC_UNTRAINED"] == "1":
        folder = out / "matrix" / "untrained"
        fewshot = ["--num-fewshot", config["SVC_FEWSHOT"]] if config["SVC_FEWSHOT"] != "0" else []
        steps.append(
            (
                "evaluation",
                f"untrained explainers, {config['SVC_FEWSHOT']}-shot",
                [
                    "matrix",
                    "--explainers",
                    ",".join(models),
                    *evaluate,
                    *fewshot,
                    "--out",
                    str(folder),
                ],
                folder / "matrix.json",
            )
        )
    return steps


def run_step(arguments: Sequence[str], log: Path, in_process: bool) -> None:
    """One ``introspect`` command: in a fresh process (memory freed), or here (tests)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if in_process:
        from harness_plugins.commands.cli import main

        code = main(list(arguments))
    else:
        executable = Path(sys.executable).parent / "introspect"
        with log.open("w") as handle:
            code = subprocess.call(
                [str(executable), *arguments], stdout=handle, stderr=subprocess.STDOUT
            )
    if code != 0:
        raise SystemExit(f"step failed ({code}): introspect {shlex.join(arguments)}; log: {log}")


def _cell_text(cell: Mapping[str, Any] | None) -> str:
    if not cell or cell.get("value") is None:
        return "n/a" if not cell else f"n/a ({cell.get('status')})"
    interval = (
        "" if cell.get("ci_low") is None else f" [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]"
    )
    return f"{cell['value']:.2f}{interval}"


def matrix_tables(data: Mapping[str, Any]) -> list[str]:
    """Markdown: per task, one row per (explainer, subject) pair with every reported metric
    and its 95% interval, then the trivial baseline of each subject."""
    cells = data["cells"]
    by_key = {(c["explainer"], c["subject"], c["task"], c["metric"]): c for c in cells}
    pairs = list(dict.fromkeys((c["explainer"], c["subject"]) for c in cells))
    lines = []
    for task in sorted({c["task"] for c in cells if c["metric"]}):
        found = {c["metric"] for c in cells if c["task"] == task}
        metrics = [m for m in REPORT_METRICS if m in found]
        lines += [f"**{task}** (95% bootstrap intervals)", ""]
        lines.append("| explainer | subject | mode | " + " | ".join(metrics) + " |")
        lines.append("| --- | --- | --- |" + " --- |" * len(metrics))
        for explainer, subject in pairs:
            row = [by_key.get((explainer, subject, task, m)) for m in metrics]
            mode = next((c["mode"] for c in row if c), "n/a")
            texts = [_cell_text(c) for c in row]
            lines.append(f"| {explainer} | {subject} | {mode} | " + " | ".join(texts) + " |")
        trivial = {c["subject"]: c for c in cells if c["task"] == task and c["metric"] == TRIVIAL}
        if trivial:
            lines += [
                "",
                'Trivial baseline (always "unchanged": scores this on exact and content match, '
                "0 on changed_f1): "
                + ", ".join(f"{s} {_cell_text(c)}" for s, c in trivial.items()),
            ]
        lines.append("")
    return lines


def gap_table(gaps: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Markdown: every self-minus-cross gap with its paired interval and p-value."""
    from harness_plugins.commands.matrix_outputs import significance_summary

    lines = [
        "| seed | subject | task | metric | self | cross | gap | 95% CI (paired) | p | n | flag |"
    ]
    lines.append("| --- |" * 1 + " --- |" * 10)
    shown = []
    for seed, g in gaps:
        if g["metric"] not in REPORT_METRICS:
            continue
        shown.append(g)
        interval = (
            "n/a" if g.get("ci_low") is None else f"[{g['ci_low']:+.2f}, {g['ci_high']:+.2f}]"
        )
        p = "n/a" if g.get("p_value") is None else f"{g['p_value']:.3g}"
        flag = f"degenerate: {g['degenerate']}" if g.get("degenerate") else ""
        lines.append(
            f"| {seed} | {g['subject']} | {g['task']} | {g['metric']} | {g['self']:.2f} | "
            f"{g['cross']:.2f} | {g['gap']:+.2f} | {interval} | {p} | {g.get('n') or 'n/a'} | "
            f"{flag} |"
        )
    return [*lines, "", significance_summary(shown)]


def training_table(out: Path) -> list[str]:
    """Markdown: what each adapter was trained on (same data and steps for every pair?)."""
    lines = ["| seed | explainer | subject | train documents | steps | seconds | loss |"]
    lines.append("| --- |" + " --- |" * 6)
    for manifest_path in sorted((out / "adapters").glob("seed*/*/*/introspect_training.json")):
        manifest = json.loads(manifest_path.read_text())
        documents = ", ".join(f"{t} {v['documents']}" for t, v in manifest["types"].items())
        first, final = manifest.get("first_loss"), manifest.get("final_loss")
        loss = "n/a" if first is None or final is None else f"{first:.2f} -> {final:.2f}"
        seed, explainer, subject = manifest_path.parts[-4:-1]
        lines.append(
            f"| {seed.removeprefix('seed')} | {explainer} | {subject} | {documents} | "
            f"{manifest['steps']} | {manifest['seconds']:.0f} | {loss} |"
        )
    return lines


def write_report(config: Mapping[str, str], timings: Mapping[str, float], total: float) -> Path:
    """``report.md`` from the matrices on disk: tables, gaps, figures, budget and time."""
    out, models = Path(config["SVC_OUT"]), _list(config["SVC_MODELS"])
    budget = float(config["SVC_BUDGET_MIN"])
    lines = [
        "# Self vs cross explanation",
        "",
        f"Models: {', '.join(models)}; types: {config['SVC_TYPES']}; seeds: {config['SVC_SEEDS']}.",
        f"Each explainer: LoRA r={config['SVC_LORA_R']}, {config['SVC_STEPS']} steps of {config['SVC_BATCH']} "
        f"examples (max {config['SVC_MAX_LENGTH']} tokens, lr {config['SVC_LR']}) on {config['SVC_TRAIN_LIMIT']} "
        f"train documents per type; evaluated on {config['SVC_LIMIT']} held-out test documents per type; "
        f"{config['SVC_BOOTSTRAP']} bootstrap resamples. SMOKE={config['SMOKE']}.",
        "",
        f"Budget: {budget:g} min. Wall time taken: {total / 60:.1f} min"
        + (" (over budget)" if total / 60 > budget else "")
        + " ("
        + ", ".join(f"{phase} {seconds / 60:.1f} min" for phase, seconds in timings.items())
        + ").",
        "",
    ]
    lines += ["## Explainers trained", "", *training_table(out), ""]
    gaps: list[tuple[str, Mapping[str, Any]]] = []
    for folder in sorted((out / "matrix").glob("seed*")):
        path = folder / "matrix.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        seed = folder.name.removeprefix("seed")
        lines += [f"## Trained explainers, seed {seed}", "", *matrix_tables(data)]
        gaps += [(seed, g) for g in data["self_minus_cross"]]
        figures = sorted(folder.glob("heatmap__*.png"))
        lines += [
            f"![{f.stem}]({f.relative_to(out)})"
            for f in figures
            if f.stem.rsplit("__", 1)[-1] in FIGURE_METRICS
        ]
        lines.append("")
    lines += ["## Self minus cross", "", *gap_table(gaps), ""]
    untrained = out / "matrix" / "untrained" / "matrix.json"
    if untrained.is_file():
        lines += [
            f"## Untrained explainers ({config['SVC_FEWSHOT']}-shot from the train partition): the baseline",
            "",
            *matrix_tables(json.loads(untrained.read_text())),
        ]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(env: Mapping[str, str] | None = None, in_process: bool = False) -> Path:
    """Run every step not done yet, then write the report; returns its path."""
    config = settings(os.environ if env is None else env)
    out = Path(config["SVC_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(config, indent=2))
    timings_path = out / "timings.json"
    timings: dict[str, float] = (
        json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    )
    steps = plan(config)
    for number, (phase, name, arguments, done) in enumerate(steps, 1):
        if done is not None and done.is_file():
            print(f"[{number}/{len(steps)}] {phase}: {name}: done before, skipped", flush=True)
            continue
        print(f"[{number}/{len(steps)}] {phase}: {name}", flush=True)
        start = time.monotonic()
        run_step(arguments, out / "logs" / f"{number:02d}_{phase}.log", in_process)
        timings[phase] = timings.get(phase, 0.0) + time.monotonic() - start
        timings_path.write_text(json.dumps(timings, indent=2))
    report = write_report(config, timings, sum(timings.values()))
    print(f"report: {report}")
    return report


if __name__ == "__main__":
    main()
