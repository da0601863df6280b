"""The positive control's table: every run under an eval folder, one row each.

python examples/positive_control/table.py results/positive_control/smollm2-135m-instruct/eval

Reads the ``results_*.json`` lm-eval wrote for each run (``--output_path EVAL/NAME``) and
prints a Markdown table: label_match and mc_accuracy with lm-eval's stderr, n, the top
answer share and the constant ceiling of label_match. Then, from the per-document samples
(``--log_samples``), each trained run's paired gap in mc_accuracy to each control on the
same concepts: mean difference, its standard error and a 95% interval (t, n - 1).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ORDER = (
    "trained_seed0",
    "trained_seed1",
    "untrained_0shot",
    "untrained_2shot",
    "nearest_neighbour",
    "no_internals_seed0",
    "no_internals_seed1",
    "shuffled",
    "constant",
)


def cell(values: dict, name: str) -> str:
    value = values.get(f"{name},none")
    if not isinstance(value, (int, float)):
        return "-"
    stderr = values.get(f"{name}_stderr,none")
    if isinstance(stderr, (int, float)):
        return f"{value:.3f} ± {stderr:.3f}"
    return f"{value:.3f}"


def main(folder: str) -> None:
    runs = {}
    for path in sorted(Path(folder).glob("*/**/results_*.json")):
        name = path.relative_to(folder).parts[0]
        runs[name] = path  # the latest (sorted by timestamp) wins
    names = [n for n in ORDER if n in runs] + sorted(set(runs) - set(ORDER))
    print(
        "| run | n | label_match | mc_accuracy | mc_chance | top_answer_share "
        "| label_match_constant_ceiling |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        data = json.loads(runs[name].read_text())
        values = data["results"]["introspect_features"]
        n = data.get("n-samples", {}).get("introspect_features", {}).get("effective", "?")
        share = values.get("top_answer_share,none")
        ceiling = values.get("label_match_constant_ceiling,none")
        print(
            f"| {name} | {n} | {cell(values, 'label_match')} | {cell(values, 'mc_accuracy')} "
            f"| {cell(values, 'mc_chance')} "
            f"| {share if not isinstance(share, float) else f'{share:.3f}'} "
            f"| {ceiling if not isinstance(ceiling, float) else f'{ceiling:.3f}'} |"
        )


CONTROLS = ("untrained_0shot", "untrained_2shot", "no_internals", "shuffled", "constant")


def per_document(folder: Path, metric: str) -> dict[str, float]:
    """question id -> the metric, from the run's latest samples file."""
    files = sorted(folder.glob("*/samples_*.jsonl"))
    rows = [json.loads(line) for line in files[-1].read_text().splitlines()] if files else []
    return {row["doc"]["question_id"]: float(row[metric]) for row in rows}


def paired_gaps(folder: str, metric: str = "mc_accuracy") -> None:
    from scipy import stats

    root = Path(folder)
    runs = sorted(p.name for p in root.iterdir() if p.is_dir())
    print(f"\n| paired gap in {metric} | n | mean | stderr | 95% interval |")
    print("| --- | --- | --- | --- | --- |")
    for trained in (r for r in runs if r.startswith("trained_")):
        seed = trained.removeprefix("trained_")
        mine = per_document(root / trained, metric)
        for control in CONTROLS:
            name = f"{control}_{seed}" if control == "no_internals" else control
            if name not in runs:
                continue
            theirs = per_document(root / name, metric)
            shared = sorted(mine.keys() & theirs.keys())
            gaps = [mine[q] - theirs[q] for q in shared]
            n = len(gaps)
            if n < 2:
                continue
            mean = sum(gaps) / n
            sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (n - 1))
            se = sd / math.sqrt(n)
            half = stats.t.ppf(0.975, n - 1) * se
            print(
                f"| {trained} - {name} | {n} | {mean:+.3f} | {se:.3f} "
                f"| [{mean - half:+.3f}, {mean + half:+.3f}] |"
            )


if __name__ == "__main__":
    eval_folder = (
        sys.argv[1] if len(sys.argv) > 1 else "results/positive_control/smollm2-135m-instruct/eval"
    )
    main(eval_folder)
    paired_gaps(eval_folder)
