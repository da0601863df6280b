"""Reading lm-eval results files in tests: shared by every test that runs the real `lm_eval`."""

from __future__ import annotations

import json
from pathlib import Path

FEATURE_METRICS = {
    "label_match",
    "mc_accuracy",
    "mc_chance",
    "judge_score",
    "detection",
    "fuzzing",
    "simulation_r",
}
"""What ``introspect_features`` reports when its features have reference labels."""
CAUSAL_METRICS = {"exact_match", "content_match", "changed_f1", "valid", "unchanged_rate"}


def results_of(output: Path) -> dict:
    files = sorted(output.rglob("results_*.json"))
    assert files, f"no results file under {output}"
    return json.loads(files[-1].read_text())


def metric_names(task_results: dict) -> set[str]:
    return {key.split(",")[0] for key in task_results if "," in key and "_stderr" not in key}
