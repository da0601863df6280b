"""Throughput of ``introspect train explainer``: tokens/s and peak RSS, before and after.

Each run is `train_explainer` (what ``introspect train explainer`` calls) in its own
process, on one type's train documents at fixed settings (default: SmolLM2-135M-Instruct
explaining itself on 64 `features` documents, batch 8, LoRA rank 16, 10 steps, learned
projections on, no checkpoints). Settings:

- ``before``: every row padded to the batch's longest, every column run, the prompt
  prefix the rows share run once per row (`TrainingConfig(group_by_length=False,
  trim_tail=False, share_prefix=False)`: the loop as it was);
- ``after``: the defaults (rows grouped by length, the tail past the last learned
  token left out, the shared prefix run once per batch: the same loss);
- ``full_logits``: ``before`` with logits at every position too (the model's own loss).

For each it prints trained tokens/s (all real tokens and the learned answer tokens, at
the median step time, the first step left out), seconds per step, peak RSS of the
process (``wait4``'s ``ru_maxrss``) and the counted work per step: token positions the
transformer ran, of which padding, and rows the output layer computed. Settings take
turns, ``--repeats`` times, and the median is printed. The train references must be in
the cache for the figures to be about training alone (``--warm`` runs one unmeasured
``after`` first, which builds them).

    python benchmarks/training_throughput.py [--types features] [--max_steps 10] \
        [--batch_size 8] [--repeats 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, dict[str, bool]] = {
    "before": {"group_by_length": False, "trim_tail": False, "share_prefix": False},
    "after": {},
    "full_logits": {
        "group_by_length": False,
        "trim_tail": False,
        "share_prefix": False,
        "full_logits": True,
    },
}
MARK = "THROUGHPUT "


def child(args: argparse.Namespace) -> int:
    """One training run; prints its counted work and timings as one JSON line."""
    from ground_truth.subject import ModelSpec
    from harness_plugins.training.explainer import train_explainer
    from harness_plugins.training.lora import TrainingConfig

    config = TrainingConfig(
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        save_steps=10**6,
        seed=args.seed,
        **SETTINGS[args.child],
    )
    with tempfile.TemporaryDirectory() as folder:
        manifest = train_explainer(
            ModelSpec(args.model),
            [name.strip() for name in args.types.split(",")],
            Path(folder) / "adapter",
            metadata={"subject": args.subject or args.model},
            limit=args.limit,
            config=config,
        )
    print(MARK + json.dumps({**manifest["work"], "final_loss": manifest["final_loss"]}))
    return 0


def run_once(args: argparse.Namespace, setting: str) -> dict[str, Any]:
    """One setting in a fresh process: its work, timings and peak RSS in MB."""
    # as a module from the root: run as a file, benchmarks/ground_truth.py would shadow
    # the ground_truth package
    command = [sys.executable, "-m", "benchmarks.training_throughput", "--child", setting]
    for name in ("model", "subject", "types", "limit", "batch_size", "max_steps", "lora_r", "seed"):
        value = getattr(args, name)
        if value is not None:
            command += [f"--{name}", str(value)]
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
        )
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{text[-3000:]}")
    line = next(line for line in text.splitlines() if line.startswith(MARK))
    return {**json.loads(line[len(MARK) :]), "peak_rss_mb": usage.ru_maxrss / 1024}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of one setting; the counted work is the same in every run."""
    first = runs[0]
    steps = len(first["step_seconds"]) or 1

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs if run[key] is not None)

    return {
        "runs": len(runs),
        "tokens_per_second": median("tokens_per_second"),
        "answer_tokens_per_second": median("answer_tokens_per_second"),
        "seconds_per_step": median("median_step_seconds"),
        "peak_rss_mb": median("peak_rss_mb"),
        **{f"{key}_per_step": first[key] / steps for key in ("positions", "padded", "head_rows")},
        "tokens_per_step": first["tokens"] / steps,
        "final_loss": first["final_loss"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--subject", default=None, help="default: the model explains itself")
    parser.add_argument("--types", default="features")
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_steps", type=int, default=10)
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting (median)")
    parser.add_argument("--settings", default="before,after", help=f"of {','.join(SETTINGS)}")
    parser.add_argument("--warm", action="store_true", help="one unmeasured run first")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = set(names) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")
    if args.warm:
        run_once(args, "after")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.repeats):  # settings take turns: a busy machine's drift hits all
        for name in names:
            runs[name].append(run_once(args, name))
    results = {name: summarise(found) for name, found in runs.items()}
    print(
        f"{args.model} explaining {args.subject or 'itself'}, {args.types} x {args.limit}, "
        f"batch {args.batch_size}, rank {args.lora_r}, {args.max_steps} steps, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"median of {args.repeats} run(s) per setting"
    )
    header = ("setting", "tokens/s", "answer tok/s", "s/step", "peak RSS MB")
    counted = ("positions/step", "padded/step", "head rows/step", "final loss")
    print(f"{header[0]:<13}" + "".join(f"{h:>16}" for h in header[1:] + counted))
    for name, r in results.items():
        cells = (
            f"{r['tokens_per_second']:.0f}",
            f"{r['answer_tokens_per_second']:.1f}",
            f"{r['seconds_per_step']:.2f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['positions_per_step']:.0f}",
            f"{r['padded_per_step']:.0f}",
            f"{r['head_rows_per_step']:.0f}",
            f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "n/a",
        )
        print(f"{name:<13}" + "".join(f"{c:>16}" for c in cells))
    if "before" in results and "after" in results:
        before, after = results["before"], results["after"]
        print(
            f"after vs before: {after['tokens_per_second'] / before['tokens_per_second']:.2f}x "
            f"tokens/s, {after['positions_per_step'] / before['positions_per_step']:.2f}x "
            f"positions, {after['peak_rss_mb'] / before['peak_rss_mb']:.2f}x peak RSS"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
