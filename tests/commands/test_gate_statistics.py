"""``introspect gate`` knows comparability and noise: refuses unlike runs, tests drops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gate import gate_error, lm_eval_results, run_gate, write

from harness_plugins.commands.gate import statistics

TASK = "introspect_input_ablation"


def with_record(data: dict[str, Any], **record: Any) -> dict[str, Any]:
    base = {
        "mode": "cross",
        "subject": "smollm2-135m-instruct",
        "subject_fingerprint": "aaa",
        "reference_key": "k1",
        "reference_fingerprint": "r1",
        "options": {"seed": 1234, "partition": "test"},
    }
    data["configs"] = {TASK: {"metadata": {"introspect": {**base, **record}}}}
    data["n-samples"][TASK] = {"original": 500, "effective": 200}
    data["results"][TASK]["content_match_stderr,none"] = 0.03
    return data


def pair(tmp_path: Path, new: dict[str, Any], old: dict[str, Any]) -> tuple[Path, Path]:
    return write(tmp_path / "new.json", new), write(tmp_path / "old.json", old)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"subject": "other-model", "subject_fingerprint": "bbb"}, "subject"),
        ({"reference_fingerprint": "r2"}, "references (content fingerprint)"),
        ({"options": {"seed": 7, "partition": "test"}}, "option seed 1234 -> 7"),
    ],
)
def test_refuses_runs_that_differ_unless_allowed(tmp_path, capsys, change, said):
    new, old = pair(
        tmp_path, with_record(lm_eval_results(), **change), with_record(lm_eval_results())
    )
    args = ["--baseline", old, "--max-drop", "0.02"]
    message = gate_error(new, *args)
    assert "cannot be compared" in message and said in message and "--allow-different" in message
    assert run_gate(new, *args, "--allow-different") == 0
    out = capsys.readouterr().out
    assert "warning: runs differ" in out and said in out


def test_different_n_is_not_comparable(tmp_path):
    changed = with_record(lm_eval_results())
    changed["n-samples"][TASK]["effective"] = 50
    new, old = pair(tmp_path, changed, with_record(lm_eval_results()))
    assert "n (documents scored) 200 -> 50" in gate_error(new, "--baseline", old, "--max-drop", "0")


def test_alpha_fails_only_a_significant_drop(tmp_path, capsys):
    # a drop of 0.05 beyond a margin of 0.02, against a difference stderr of ~0.042: noise
    new, old = pair(
        tmp_path,
        with_record(lm_eval_results(ablation=0.65)),
        with_record(lm_eval_results(ablation=0.70)),
    )
    metric = ["--min", f"{TASK}/content_match=0.5", "--baseline", old, "--max-drop", "0.02"]
    assert run_gate(new, *metric) == 1  # plain margin: fails
    assert run_gate(new, *metric, "--alpha", "0.05") == 0  # not significant at 5%
    out = capsys.readouterr().out
    assert "p=" in out and "±" in out
    assert "is too small for --max-drop 0.02" in out and "documents per run are needed" in out
    # a large drop is significant
    big = write(tmp_path / "big.json", with_record(lm_eval_results(ablation=0.4)))
    metric[1] = f"{TASK}/content_match=0.3"
    assert run_gate(big, *metric, "--alpha", "0.05") == 1


def test_alpha_without_any_stderr_is_bad_input(tmp_path):
    new, old = pair(tmp_path, lm_eval_results(), lm_eval_results())
    args = ["--max", "wikitext/word_perplexity=30", "--baseline", old, "--max-drop", "0.5"]
    assert "has no standard error" in gate_error(new, *args, "--alpha", "0.05")


@pytest.mark.parametrize("bad", ["0", "1", "x", "nan"])
def test_malformed_alpha_is_bad_input(tmp_path, bad):
    old = results_file = write(tmp_path / "r.json", lm_eval_results())
    assert "--alpha" in gate_error(
        results_file, "--baseline", old, "--max-drop", "0", "--alpha", bad
    )


def samples(path: Path, values: list[Any]) -> None:
    rows = [
        {"doc_id": i, "doc_hash": f"h{i}", "filter": "none", "content_match": v}
        for i, v in enumerate(values)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))


def test_paired_bootstrap_from_log_samples_beats_independent_stderrs(tmp_path):
    out_new, out_old = tmp_path / "a", tmp_path / "b"
    new_values = [1.0] * 60 + [0.0] * 40
    old_values = [1.0] * 62 + [0.0] * 38  # the same documents, two flipped
    new = write(out_new / "results_2025-01-01T00-00-00.json", with_record(lm_eval_results()))
    old = write(out_old / "results_2024-01-01T00-00-00.json", with_record(lm_eval_results()))
    samples(out_new / f"samples_{TASK}_2025-01-01T00-00-00.jsonl", new_values)
    samples(out_old / f"samples_{TASK}_2024-01-01T00-00-00.jsonl", old_values)
    from harness_plugins.commands.gate import load_results

    noise = statistics.difference_noise(
        load_results(new), load_results(old), TASK, "content_match,none"
    )
    assert noise is not None and noise.method == "paired bootstrap over 100 documents"
    assert 0 < noise.stderr < 0.03  # far below sqrt(2) * 0.03 from independent runs


def test_paired_bootstrap_of_f1_items():
    new = [[True, True], [False, False], [True, False], [False, True]] * 10
    old = [[True, True], [False, False], [True, True], [False, False]] * 10
    assert statistics.paired_bootstrap_stderr(new, old) > 0


def test_help_documents_the_exit_statuses(capsys):
    from harness_plugins.commands.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["gate", "--help"])
    assert "1 a check failed, 2 bad input" in " ".join(capsys.readouterr().out.split())
