"""Peak memory of ``introspect train explainer`` under each memory knob.

Each setting runs the same short training (default: SmolLM2-135M-Instruct explaining
itself on 24 input_ablation train documents, batch 8, 3 steps) as its own process, and
reports that process's peak resident set size (``wait4``'s ``ru_maxrss``, as
``/usr/bin/time -v`` does), its wall time and its first and last logged loss. RSS, not
time, is the figure: wall time on a shared machine is noise. Settings:

- ``full_logits``: the loss the model computes itself, logits at every position (before);
- ``answer_logits``: logits only at the positions that predict a reply token (the default);
- ``+checkpointing``: and ``--gradient_checkpointing``;
- ``+fp32`` / ``+checkpointing+fp32``: and ``--bf16 false`` (autocast off).

The train references must be cached for the figures to be about training alone: the first
run builds any that are missing (run it twice, or pass ``--warm``). With ``--repeats N``
the median of N runs is printed; the default is 1 run per setting.

    python benchmarks/training_memory.py [--model smollm2-135m-instruct] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS: dict[str, list[str]] = {
    "full_logits": ["--full_logits"],
    "answer_logits": [],
    "+checkpointing": ["--gradient_checkpointing"],
    "+fp32": ["--bf16", "false"],
    "+checkpointing+fp32": ["--gradient_checkpointing", "--bf16", "false"],
}
LOSS = re.compile(r"loss (\S+) -> (\S+);")


def run_once(command: list[str]) -> tuple[float, float, str]:
    """Peak RSS in MB, wall seconds and the loss line of one training process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{text[-3000:]}")
    found = LOSS.search(text)
    return usage.ru_maxrss / 1024, seconds, " -> ".join(found.groups()) if found else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--types", default="input_ablation")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting (median)")
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated: {','.join(SETTINGS)}"
    )
    parser.add_argument("--warm", action="store_true", help="one unmeasured run first")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = set(names) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")
    introspect = [sys.executable, "-m", "harness_plugins.commands.cli"]
    with tempfile.TemporaryDirectory() as folder:
        base = [
            *introspect,
            *("train", "explainer", "--subject", args.model, "--types", args.types),
            *("--limit", str(args.limit), "--batch_size", str(args.batch_size)),
            *("--max_steps", str(args.max_steps), "--save_steps", "1000000"),
            *("--out", str(Path(folder) / "adapter")),
        ]
        if args.warm:
            run_once(base)
        print(
            f"{args.model}, {args.types} x {args.limit}, batch {args.batch_size}, "
            f"{args.max_steps} steps; {args.repeats} run(s) per setting"
            + (" (median)" if args.repeats > 1 else " (no repeats: one figure each)")
        )
        print(
            f"{'setting':<22}{'peak RSS MB':>12}{'wall s':>8}  loss first -> last  (RSS vs first)"
        )
        first = None
        for name in names:
            runs = [run_once(base + SETTINGS[name]) for _ in range(args.repeats)]
            peak = statistics.median(r[0] for r in runs)
            wall = statistics.median(r[1] for r in runs)
            first = first or peak
            print(f"{name:<22}{peak:>12.0f}{wall:>8.0f}  {runs[-1][2]}  ({peak / first:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
