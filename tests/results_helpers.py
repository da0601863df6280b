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
"""What ``introspect_features`` scores when its features have reference labels."""
FEATURE_RUN_METRICS = FEATURE_METRICS | {"top_answer_share", "label_match_constant_ceiling"}
"""What an ``introspect_features`` run reports: the scores and their calibration."""
CALIBRATION = {"top_answer_share"}
"""What every introspect run whose explainer writes an answer reports beside its own metrics."""
CAUSAL_ANSWER_METRICS = {
    "exact_match",
    "content_match",
    "changed_f1",
    "unchanged_f1",
    "macro_f1",
    "changed_exact_match",
    "changed_content_match",
    "unchanged_exact_match",
    "unchanged_content_match",
}
CAUSAL_METRICS = {
    *CAUSAL_ANSWER_METRICS,
    "valid",
    "unchanged_rate",
    *CALIBRATION,
    *(f"{m}_constant_ceiling" for m in CAUSAL_ANSWER_METRICS),
}


def results_of(output: Path) -> dict:
    files = sorted(output.rglob("results_*.json"))
    assert files, f"no results file under {output}"
    return json.loads(files[-1].read_text())


def metric_names(task_results: dict) -> set[str]:
    return {key.split(",")[0] for key in task_results if "," in key and "_stderr" not in key}
