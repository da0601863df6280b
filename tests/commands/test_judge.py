"""``introspect judge``: a judge model re-grades logged injected-thought answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_cli

from ground_truth.subject import ModelSpec, load_model
from harness_plugins.commands import judge
from harness_plugins.errors import IntrospectError
from harness_plugins.registry import get_registry

# two documents: the control answer first, then the injection trials
DOCS = {
    0: (
        "ocean",
        [
            "No, I do not detect anything.",
            "Yes, I detect a thought about the sea.",
            "I notice something, but I cannot say what.",
        ],
    ),
    1: (
        "music",
        ["Yes, I detect an injected thought.", "Nothing unusual.", "with with with with with with"],
    ),
}


def write_samples(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples_{judge.TASK}_2026-11-30T10-00-00.jsonl"
    lines = [
        json.dumps({"doc_id": i, "doc": {"label": label}, "filtered_resps": [[a] for a in answers]})
        for i, (label, answers) in DOCS.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_trials_are_read_with_the_control_first(tmp_path):
    trials = judge.read_trials(write_samples(tmp_path))
    assert [t.injected for t in trials] == [False, True, True] * 2
    assert [t.label for t in trials] == ["ocean"] * 3 + ["music"] * 3
    assert trials[1].answer == "Yes, I detect a thought about the sea."


def test_rates_and_agreement_against_the_rules(tmp_path):
    trials = judge.read_trials(write_samples(tmp_path))
    asked = []

    def always_yes(questions):
        asked.append(questions)
        return [True] * len(questions)

    rows = judge.judge_trials(trials, always_yes)
    # the naming question is asked only of the answers the judge says detect (all six)
    assert [len(q) for q in asked] == [6, 6]
    assert all("ocean" in q for q in asked[1][:3])
    result = judge.summary(rows)
    # rules: detected = [F, T, T, T, F, F]; identified = [F, T, F, F, F, F]
    assert result["rules_hit_rate"] == pytest.approx(2 / 4)
    assert result["rules_false_alarm_rate"] == pytest.approx(1 / 2)
    assert result["rules_identification_rate"] == pytest.approx(1 / 4)
    assert result["judge_hit_rate"] == 1.0 and result["judge_false_alarm_rate"] == 1.0
    assert result["detected_agreement"] == pytest.approx(3 / 6)
    assert result["identified_agreement"] == pytest.approx(1 / 6)
    # one grader constant: kappa is 0 (agreement no better than chance)
    assert result["detected_kappa"] == pytest.approx(0.0)


def test_kappa_of_identical_graders_is_one_and_undefined_when_constant(tmp_path):
    trials = judge.read_trials(write_samples(tmp_path))
    rules = [judge.grade(t.answer, t.label)["detected"] for t in trials]
    rows = judge.judge_trials(trials, lambda qs: rules if len(qs) == 6 else [False] * len(qs))
    result = judge.summary(rows)
    assert result["detected_agreement"] == 1.0 and result["detected_kappa"] == pytest.approx(1.0)
    assert math.isnan(
        judge.summary([dict(r, rules_detected=False, judge_detected=False) for r in rows])[
            "detected_kappa"
        ]
    )


@pytest.mark.parametrize("favoured", ["yes", "no"])
def test_the_verdict_is_the_larger_of_yes_and_no(tiny_llama, favoured):
    loaded = load_model(ModelSpec(str(tiny_llama)), get_registry().model_aliases)
    yes = judge._token_ids(loaded.tokenizer, judge.YES)
    no = judge._token_ids(loaded.tokenizer, judge.NO)
    ids = sorted(set(yes if favoured == "yes" else no) - set(yes if favoured == "no" else no))

    def push(module, inputs, output):
        output[..., ids] += 100.0
        return output

    handle = loaded.model.get_output_embeddings().register_forward_hook(push)
    try:
        verdicts = judge.yes_no(loaded, ["Is the sky blue?", "Two plus two?", "x"], batch_size=2)
    finally:
        handle.remove()
    assert verdicts == [favoured == "yes"] * 3


def test_command_writes_the_verdicts_and_refuses_a_missing_run(tmp_path, tiny_llama):
    write_samples(tmp_path / "run" / "model")
    out = tmp_path / "judged.json"
    result = run_cli(
        "introspect",
        "judge",
        str(tmp_path / "run"),
        "--judge",
        str(tiny_llama),
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "agreement on detected" in result.stdout
    written = json.loads(out.read_text())
    assert len(written["trials"]) == 6 and written["summary"]["n_control"] == 2

    missing = run_cli("introspect", "judge", str(tmp_path / "nothing"), "--judge", str(tiny_llama))
    assert missing.returncode == 2
    assert "--log_samples" in missing.stderr


def test_a_file_without_answers_is_refused(tmp_path):
    empty = tmp_path / f"samples_{judge.TASK}_x.jsonl"
    empty.write_text(json.dumps({"doc_id": 0, "doc": {"question": "q"}}) + "\n")
    with pytest.raises(IntrospectError, match="no injected_thoughts answers"):
        judge.read_trials(empty)
