"""The control explainers through the real ``lm_eval`` command and ``introspect report --controls``."""

from __future__ import annotations

import math

from conftest import run_cli
from results_helpers import CAUSAL_ANSWER_METRICS, results_of


def test_the_oracle_scores_one_end_to_end_and_the_card_runs_the_controls(tiny_llama, tmp_path):
    cache = {"INTROSPECT_CACHE_DIR": str(tmp_path / "cache")}
    done = run_cli(
        "lm_eval",
        "--model",
        "introspect_control",
        "--model_args",
        "control=oracle",
        "--tasks",
        "introspect_input_ablation",
        "--metadata",
        f'{{"subject": "{tiny_llama}"}}',
        "--limit",
        "6",
        "--output_path",
        str(tmp_path / "oracle"),
        env=cache,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mode control: control=oracle answers for subject" in done.stderr
    scores = results_of(tmp_path / "oracle")["results"]["introspect_input_ablation"]
    record = results_of(tmp_path / "oracle")["configs"]["introspect_input_ablation"]["metadata"]
    assert record["introspect"]["mode"] == "control"
    # every answer metric that is defined on these documents is 1.0 (a stratum with no
    # document, or an F1 of a class no reference has, is nan)
    defined = {m: scores[f"{m},none"] for m in CAUSAL_ANSWER_METRICS}
    defined = {m: v for m, v in defined.items() if not (isinstance(v, float) and math.isnan(v))}
    assert {"exact_match", "content_match"} <= set(defined)
    assert all(v == 1.0 for v in defined.values()), defined

    explained = run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_input_ablation",
        "--limit",
        "6",
        "--output_path",
        str(tmp_path / "self"),
        env=cache,
    )
    assert explained.returncode == 0, explained.stderr[-3000:]
    card = run_cli("introspect", "report", str(tmp_path / "self"), "--controls", env=cache)
    assert card.returncode == 0, card.stderr[-3000:]
    assert "shuffled floor" in card.stdout and "const. ceiling" in card.stdout
    assert "introspect_input_ablation: top answer share" in card.stdout
    assert "beat their shuffled floor:" in card.stdout
