"""Tests for ``introspect gate`` (harness_plugins/gate.py).

Results files are built in lm-eval 0.4.x's real output format: a top-level
"results" dict of task -> {"alias", "metric,filter", "metric_stderr,filter"},
an optional "groups" dict, "higher_is_better", and the run metadata lm-eval
adds around them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness_plugins.commands import gate

REPO_ROOT = Path(__file__).resolve().parents[2]


def lm_eval_results(
    *,
    arc_acc: float = 0.62,
    arc_acc_norm: float = 0.58,
    gsm_strict: float = 0.31,
    gsm_flex: float = 0.35,
    wikitext_ppl: float = 21.5,
    ablation: float = 0.7,
    mmlu: float = 0.45,
) -> dict[str, Any]:
    """A results dict shaped like lm-eval's results_<timestamp>.json."""
    return {
        "results": {
            "arc_easy": {
                "alias": "arc_easy",
                "acc,none": arc_acc,
                "acc_stderr,none": 0.0099,
                "acc_norm,none": arc_acc_norm,
                "acc_norm_stderr,none": 0.0101,
            },
            "gsm8k": {
                "alias": "gsm8k",
                "exact_match,strict-match": gsm_strict,
                "exact_match_stderr,strict-match": 0.0127,
                "exact_match,flexible-extract": gsm_flex,
                "exact_match_stderr,flexible-extract": 0.0131,
            },
            "wikitext": {
                "alias": "wikitext",
                "word_perplexity,none": wikitext_ppl,
                "word_perplexity_stderr,none": "N/A",
                "byte_perplexity,none": 1.78,
                "byte_perplexity_stderr,none": "N/A",
                "bits_per_byte,none": 0.83,
                "bits_per_byte_stderr,none": "N/A",
            },
            "introspect_input_ablation": {
                "alias": "introspect_input_ablation",
                "content_match,none": ablation,
                "content_match_stderr,none": 0.032,
                "refusal_rate,none": "N/A",
                "refusal_rate_stderr,none": "N/A",
            },
            "mmlu_abstract_algebra": {
                "alias": " - abstract_algebra",
                "acc,none": 0.3,
                "acc_stderr,none": 0.046,
            },
        },
        "groups": {
            "mmlu": {
                "alias": "mmlu",
                "acc,none": mmlu,
                "acc_stderr,none": 0.004,
            }
        },
        "group_subtasks": {
            "mmlu": ["mmlu_abstract_algebra"],
            "arc_easy": [],
            "gsm8k": [],
            "wikitext": [],
            "introspect_input_ablation": [],
        },
        "configs": {"arc_easy": {"task": "arc_easy", "output_type": "multiple_choice"}},
        "versions": {"arc_easy": 1.0, "gsm8k": 3.0, "wikitext": 2.0, "mmlu": 2},
        "n-shot": {"arc_easy": 0, "gsm8k": 5, "wikitext": 0},
        "higher_is_better": {
            "arc_easy": {"acc": True, "acc_norm": True},
            "gsm8k": {"exact_match": True},
            "wikitext": {
                "word_perplexity": False,
                "byte_perplexity": False,
                "bits_per_byte": False,
            },
            "introspect_input_ablation": {"content_match": True, "refusal_rate": False},
            "mmlu_abstract_algebra": {"acc": True},
            "mmlu": {"acc": True},
        },
        "n-samples": {"arc_easy": {"original": 2376, "effective": 200}},
        "config": {
            "model": "hf",
            "model_args": "pretrained=HuggingFaceTB/SmolLM2-135M-Instruct",
            "batch_size": "8",
            "limit": 200.0,
        },
        "git_hash": "abc1234",
        "date": 1732170000.0,
        "task_hashes": {},
        "model_source": "hf",
        "model_name": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "model_name_sanitized": "HuggingFaceTB__SmolLM2-135M-Instruct",
        "total_evaluation_time_seconds": "123.4",
    }


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    return write(tmp_path / "results.json", lm_eval_results())


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="introspect gate")
    gate.add_arguments(parser)
    return parser


def run_gate(*argv: str | Path) -> int:
    args = make_parser().parse_args([str(a) for a in argv])
    return gate.run(args)


def gate_error(*argv: str | Path) -> str:
    """Run the gate expecting a bad-input error (exit 2, one stderr line); return its message."""
    args = make_parser().parse_args([str(a) for a in argv])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()) as out:
        assert gate.run(args) == 2
    assert out.getvalue() == ""
    message = stderr.getvalue().rstrip("\n")
    assert message.startswith("introspect gate: error: "), message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- #
# pass / fail
# --------------------------------------------------------------------------- #


def test_single_min_passes(results_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_gate(results_file, "--min", "arc_easy/acc=0.6") == 0
    out = capsys.readouterr().out
    assert "arc_easy/acc" in out
    assert "PASS" in out and "FAIL" not in out
    assert out.strip().splitlines()[-1] == "gate: 1 check, 0 failed"


def test_single_min_fails(results_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_gate(results_file, "--min", "arc_easy/acc=0.7") == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert out.strip().splitlines()[-1] == "gate: 1 check, 1 failed"


def test_min_equal_to_value_passes(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", lm_eval_results(arc_acc=0.1 + 0.2))
    assert run_gate(path, "--min", "arc_easy/acc=0.3", "--max", "arc_easy/acc=0.3") == 0


def test_several_min_repeated_and_space_separated(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_gate(
        results_file,
        "--min",
        "arc_easy/acc=0.6",
        "arc_easy/acc_norm=0.6",
        "--min",
        "introspect_input_ablation/content_match=0.5",
    )
    assert code == 1
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1] == "gate: 3 checks, 1 failed"
    (norm_row,) = [line for line in lines if "arc_easy/acc_norm" in line]
    assert norm_row.endswith("FAIL")
    assert sum(line.endswith("PASS") for line in lines) == 2


def test_table_columns_are_aligned(results_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_gate(
        results_file,
        "--min",
        "arc_easy/acc=0.6",
        "introspect_input_ablation/content_match=0.5",
        "--max",
        "wikitext/word_perplexity=30",
    )
    lines = capsys.readouterr().out.strip().splitlines()
    header, rule, rows = lines[0], lines[1], lines[2:-1]
    assert header.split() == ["CHECK", "TASK/METRIC", "VALUE", "THRESHOLD", "STATUS"]
    assert set(rule.replace(" ", "")) == {"-"}
    status_col = header.index("STATUS")
    value_col = header.index("VALUE")
    for row in rows:
        assert row[status_col:] in ("PASS", "FAIL")
        assert row[value_col - 1] == " " and row[value_col] != " "


def test_max_lower_is_better(results_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_gate(results_file, "--max", "wikitext/word_perplexity=25") == 0
    assert "<= 25" in capsys.readouterr().out
    assert run_gate(results_file, "--max", "wikitext/word_perplexity=20") == 1


def test_min_and_max_together(results_file: Path) -> None:
    code = run_gate(
        results_file,
        "--min",
        "arc_easy/acc=0.5",
        "--max",
        "wikitext/word_perplexity=25",
        "wikitext/bits_per_byte=0.9",
    )
    assert code == 0


def test_group_results_are_accepted(results_file: Path) -> None:
    assert run_gate(results_file, "--min", "mmlu/acc=0.4") == 0
    assert run_gate(results_file, "--min", "mmlu/acc=0.5") == 1


def test_group_only_in_groups_section(tmp_path: Path) -> None:
    data = lm_eval_results()
    data["results"].pop("mmlu", None)
    assert "mmlu" not in data["results"] and "mmlu" in data["groups"]
    path = write(tmp_path / "r.json", data)
    assert run_gate(path, "--min", "mmlu/acc=0.4") == 0


# --------------------------------------------------------------------------- #
# filters
# --------------------------------------------------------------------------- #


def test_filter_selects_one(results_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_gate(results_file, "--min", "gsm8k/exact_match,flexible-extract=0.33") == 0
    assert "gsm8k/exact_match,flexible-extract" in capsys.readouterr().out
    assert run_gate(results_file, "--min", "gsm8k/exact_match,strict-match=0.33") == 1


def test_ambiguous_filter_is_error_listing_filters(results_file: Path) -> None:
    msg = gate_error(results_file, "--min", "gsm8k/exact_match=0.3")
    assert "flexible-extract" in msg and "strict-match" in msg
    assert "gsm8k/exact_match,FILTER" in msg


def test_unknown_filter_is_error_listing_filters(results_file: Path) -> None:
    msg = gate_error(results_file, "--min", "gsm8k/exact_match,loose=0.3")
    assert "'loose'" in msg
    assert "flexible-extract" in msg and "strict-match" in msg


def test_explicit_none_filter(results_file: Path) -> None:
    assert run_gate(results_file, "--min", "arc_easy/acc,none=0.6") == 0


# --------------------------------------------------------------------------- #
# directory input
# --------------------------------------------------------------------------- #


def test_directory_picks_newest_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "results"
    old = write(
        out_dir
        / "HuggingFaceTB__SmolLM2-135M-Instruct"
        / "results_2025-01-02T10-00-00.000001.json",
        lm_eval_results(arc_acc=0.9),
    )
    new = write(
        out_dir / "introspect__adapter" / "results_2025-03-04T09-30-15.123456.json",
        lm_eval_results(arc_acc=0.4),
    )
    # Samples files and other JSON next to it must be ignored.
    (new.parent / "samples_arc_easy_2025-03-04T09-30-15.123456.jsonl").write_text("{}\n")
    write(out_dir / "zzz_other.json", {"not": "results"})
    # The older run has the newer mtime (e.g. after an artifact download):
    # the timestamp lm-eval put into the file name must win.
    os.utime(new, (1_000_000_000, 1_000_000_000))
    os.utime(old, (2_000_000_000, 2_000_000_000))

    assert gate.find_results_file(out_dir) == new
    assert run_gate(out_dir, "--min", "arc_easy/acc=0.5") == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"introspect gate: using results file {new}"


def test_directory_without_timestamped_names_uses_mtime(tmp_path: Path) -> None:
    a = write(tmp_path / "out" / "m" / "results_a.json", lm_eval_results())
    b = write(tmp_path / "out" / "m" / "results_b.json", lm_eval_results())
    os.utime(a, (2_000_000_000, 2_000_000_000))
    os.utime(b, (1_000_000_000, 1_000_000_000))
    assert gate.find_results_file(tmp_path / "out") == a


def test_directory_without_results_is_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    msg = gate_error(tmp_path / "empty", "--min", "arc_easy/acc=0.5")
    assert "no results_*.json" in msg and "empty" in msg


# --------------------------------------------------------------------------- #
# baseline
# --------------------------------------------------------------------------- #


def test_baseline_drop_detected_for_min_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(tmp_path / "new.json", lm_eval_results(ablation=0.65))
    old = write(tmp_path / "old.json", lm_eval_results(ablation=0.70))
    args = ["--min", "introspect_input_ablation/content_match=0.5", "--baseline", old]
    assert run_gate(new, *args, "--max-drop", "0.02") == 1
    out = capsys.readouterr().out
    assert "gate: 2 checks, 1 failed" in out
    (row,) = [line for line in out.splitlines() if line.startswith("baseline")]
    assert "max drop 0.02" in row and row.endswith("FAIL")
    assert run_gate(new, *args, "--max-drop", "0.06") == 0


def test_baseline_drop_exactly_at_limit_passes(tmp_path: Path) -> None:
    new = write(tmp_path / "new.json", lm_eval_results(arc_acc=0.60))
    old = write(tmp_path / "old.json", lm_eval_results(arc_acc=0.62))
    # 0.62 - 0.60 == 0.020000000000000018 in floats: must not count as > 0.02.
    argv = [new, "--min", "arc_easy/acc=0.5", "--baseline", old, "--max-drop", "0.02"]
    assert run_gate(*argv) == 0


def test_baseline_improvement_passes(tmp_path: Path) -> None:
    new = write(tmp_path / "new.json", lm_eval_results(arc_acc=0.80))
    old = write(tmp_path / "old.json", lm_eval_results(arc_acc=0.60))
    argv = [new, "--min", "arc_easy/acc=0.5", "--baseline", old, "--max-drop", "0"]
    assert run_gate(*argv) == 0


def test_baseline_rise_detected_for_max_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(tmp_path / "new.json", lm_eval_results(wikitext_ppl=22.0))
    old = write(tmp_path / "old.json", lm_eval_results(wikitext_ppl=21.0))
    args = ["--max", "wikitext/word_perplexity=30", "--baseline", old]
    assert run_gate(new, *args, "--max-drop", "0.5") == 1
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("baseline")]
    assert "max rise 0.5" in row and row.endswith("FAIL")
    assert run_gate(new, *args, "--max-drop", "1.5") == 0
    # A lower perplexity than the baseline is an improvement, not a regression.
    better = write(tmp_path / "better.json", lm_eval_results(wikitext_ppl=15.0))
    assert run_gate(better, *args, "--max-drop", "0.5") == 0


def test_baseline_only_mode_uses_higher_is_better(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path / "old.json", lm_eval_results())
    # Perplexity went up by 3 (worse, lower is better) and nothing else changed.
    worse_ppl = write(tmp_path / "ppl.json", lm_eval_results(wikitext_ppl=24.5))
    assert run_gate(worse_ppl, "--baseline", old, "--max-drop", "0.02") == 1
    out = capsys.readouterr().out
    failing = [line for line in out.splitlines() if line.endswith("FAIL")]
    assert len(failing) == 1 and "wikitext/word_perplexity" in failing[0]
    # stderr metrics and "N/A" values are not compared.
    assert "_stderr" not in out
    assert "refusal_rate" not in out
    # Every shared numeric metric is checked, groups included.
    assert "mmlu/acc" in out and "gsm8k/exact_match,strict-match" in out
    n_checks = int(out.strip().splitlines()[-1].split()[1])
    assert n_checks == 10

    # Perplexity went down (better) while accuracy dropped (worse).
    mixed = write(tmp_path / "mixed.json", lm_eval_results(wikitext_ppl=15.0, arc_acc=0.5))
    assert run_gate(mixed, "--baseline", old, "--max-drop", "0.02") == 1
    failing = [line for line in capsys.readouterr().out.splitlines() if line.endswith("FAIL")]
    assert len(failing) == 1 and "arc_easy/acc " in failing[0]


def test_baseline_only_mode_without_higher_is_better_defaults_to_higher(
    tmp_path: Path,
) -> None:
    new_data = lm_eval_results(arc_acc=0.5)
    old_data = lm_eval_results(arc_acc=0.6)
    for data in (new_data, old_data):
        del data["higher_is_better"]
    new = write(tmp_path / "new.json", new_data)
    old = write(tmp_path / "old.json", old_data)
    assert run_gate(new, "--baseline", old, "--max-drop", "0.05") == 1
    assert run_gate(old, "--baseline", new, "--max-drop", "0.05") == 0


def test_baseline_only_mode_identical_files_pass(results_file: Path) -> None:
    assert run_gate(results_file, "--baseline", results_file, "--max-drop", "0") == 0


def test_baseline_missing_named_metric_is_error(tmp_path: Path) -> None:
    new = write(tmp_path / "new.json", lm_eval_results())
    old_data = lm_eval_results()
    del old_data["results"]["introspect_input_ablation"]
    old = write(tmp_path / "old.json", old_data)
    msg = gate_error(
        new,
        "--min",
        "introspect_input_ablation/content_match=0.5",
        "--baseline",
        old,
        "--max-drop",
        "0.02",
    )
    assert "introspect_input_ablation" in msg and "baseline" in msg and "old.json" in msg


def test_baseline_with_no_common_metrics_is_error(tmp_path: Path) -> None:
    new = write(tmp_path / "new.json", lm_eval_results())
    old = write(
        tmp_path / "old.json",
        {"results": {"hellaswag": {"alias": "hellaswag", "acc,none": 0.4}}},
    )
    msg = gate_error(new, "--baseline", old, "--max-drop", "0.02")
    assert "share no numeric metric" in msg


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #


def test_missing_results_file(tmp_path: Path) -> None:
    msg = gate_error(tmp_path / "nope.json", "--min", "arc_easy/acc=0.5")
    assert "results file not found" in msg and "nope.json" in msg


def test_results_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"results": {"arc_easy": ', encoding="utf-8")
    msg = gate_error(path, "--min", "arc_easy/acc=0.5")
    assert "broken.json" in msg and "not valid JSON" in msg


def test_results_without_results_key(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", {"config": {"model": "hf"}})
    msg = gate_error(path, "--min", "arc_easy/acc=0.5")
    assert "config.json" in msg and '"results"' in msg


MALFORMED = {
    "not UTF-8": b'{"results": {"arc_easy": {"acc,none": 0.9, "alias": "\xff"}}}',
    "nested too deeply": b'{"results": {"arc_easy": {"x": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}}}",
    "empty": b"",
    "a byte-order mark": '\ufeff{"results": {}}'.encode(),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_an_unreadable_or_malformed_results_file_is_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(MALFORMED[kind])
    assert "results.json" in gate_error(path, "--min", "arc_easy/acc=0.5")


def test_a_results_path_that_is_a_fifo_is_exit_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "results.json")
    assert "neither a results file nor a directory" in gate_error(
        tmp_path / "results.json", "--min", "arc_easy/acc=0.5"
    )


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_a_non_finite_metric_is_never_passed(tmp_path: Path, value: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(f'{{"results": {{"t": {{"acc,none": {value}}}}}}}', encoding="utf-8")
    for flag in ("--min", "--max"):
        assert "no finite numeric value" in gate_error(path, flag, "t/acc=0.5")


def test_a_non_finite_stderr_is_no_stderr(tmp_path: Path) -> None:
    new = tmp_path / "new.json"
    new.write_text('{"results": {"t": {"acc,none": 0.1, "acc_stderr,none": Infinity}}}')
    old = write(
        tmp_path / "old.json", {"results": {"t": {"acc,none": 0.9, "acc_stderr,none": 0.01}}}
    )
    msg = gate_error(new, "--baseline", old, "--max-drop", "0.02", "--alpha", "0.05")
    assert "no standard error" in msg


@pytest.mark.parametrize(
    "bad",
    [
        "arc_easy/acc",
        "arc_easy/acc=",
        "arc_easy/acc=high",
        "arc_easy=0.5",
        "/acc=0.5",
        "arc_easy/=0.5",
        "arc_easy/acc,=0.5",
        "arc_easy/acc=nan",
    ],
)
def test_threshold_that_does_not_parse(results_file: Path, bad: str) -> None:
    msg = gate_error(results_file, "--min", bad)
    assert "--min" in msg
    assert f"expected TASK/METRIC=NUMBER, got {bad!r}" in msg


def test_max_threshold_that_does_not_parse(results_file: Path) -> None:
    msg = gate_error(results_file, "--max", "wikitext/word_perplexity:30")
    assert "--max: expected TASK/METRIC=NUMBER, got 'wikitext/word_perplexity:30'" in msg


def test_bad_threshold_reported_before_any_output(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate_error(results_file, "--min", "arc_easy/acc=0.5", "--max", "oops")
    assert capsys.readouterr().out == ""


def test_unknown_task_lists_available(
    results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msg = gate_error(results_file, "--min", "arc_easy/acc=0.5", "--min", "hellaswag/acc=0.5")
    assert "'hellaswag'" in msg
    for task in ("arc_easy", "gsm8k", "wikitext", "introspect_input_ablation", "mmlu"):
        assert task in msg
    assert capsys.readouterr().out == ""


def test_unknown_metric_lists_available(results_file: Path) -> None:
    msg = gate_error(results_file, "--min", "arc_easy/f1=0.5")
    assert "'f1'" in msg and "'arc_easy'" in msg
    assert "acc, acc_norm" in msg
    assert "stderr" not in msg


def test_na_metric_is_error_not_pass(results_file: Path) -> None:
    msg = gate_error(results_file, "--max", "introspect_input_ablation/refusal_rate=0.1")
    assert "refusal_rate" in msg and "N/A" in msg


def test_max_drop_without_baseline(results_file: Path) -> None:
    msg = gate_error(results_file, "--min", "arc_easy/acc=0.5", "--max-drop", "0.02")
    assert "--max-drop" in msg and "--baseline" in msg


def test_baseline_without_max_drop(results_file: Path) -> None:
    msg = gate_error(results_file, "--baseline", results_file)
    assert "--baseline" in msg and "--max-drop" in msg


@pytest.mark.parametrize("bad", ["two percent", "-0.1", "inf"])
def test_bad_max_drop(results_file: Path, bad: str) -> None:
    msg = gate_error(results_file, "--baseline", results_file, "--max-drop", bad)
    assert "--max-drop" in msg and repr(bad) in msg


def test_missing_baseline_file(results_file: Path, tmp_path: Path) -> None:
    msg = gate_error(results_file, "--baseline", tmp_path / "old.json", "--max-drop", "0.02")
    assert "old.json" in msg and "not found" in msg


def test_nothing_to_check(results_file: Path) -> None:
    msg = gate_error(results_file)
    assert "nothing to check" in msg and "--min" in msg


def test_results_swallowed_by_min_gets_hint(results_file: Path) -> None:
    # --min takes several values, so a trailing RESULTS is read as a threshold.
    msg = gate_error("--min", "arc_easy/acc=0.5", results_file)
    assert "put RESULTS before --min/--max" in msg


def test_results_after_double_dash(results_file: Path) -> None:
    assert run_gate("--min", "arc_easy/acc=0.5", "--", results_file) == 0


# --------------------------------------------------------------------------- #
# pure functions
# --------------------------------------------------------------------------- #


def test_parse_threshold_fields() -> None:
    t = gate.parse_threshold("gsm8k/exact_match,strict-match=0.25", "min")
    assert (t.kind, t.task, t.metric, t.filter, t.value) == (
        "min",
        "gsm8k",
        "exact_match",
        "strict-match",
        0.25,
    )
    t = gate.parse_threshold("wikitext/word_perplexity=3e1", "max")
    assert (t.task, t.metric, t.filter, t.value) == ("wikitext", "word_perplexity", None, 30.0)


def test_load_results_merges_groups(results_file: Path) -> None:
    res = gate.load_results(results_file)
    assert "mmlu" in res.tasks and "arc_easy" in res.tasks
    assert res.higher_is_better["wikitext"]["word_perplexity"] is False
    assert gate.resolve_metric(res, "arc_easy", "acc") == "acc,none"


# --------------------------------------------------------------------------- #
# end to end through a real interpreter
# --------------------------------------------------------------------------- #

GLUE = (
    "import argparse, sys\n"
    "from harness_plugins.commands import gate\n"
    "parser = argparse.ArgumentParser(prog='introspect gate')\n"
    "gate.add_arguments(parser)\n"
    "sys.exit(gate.run(parser.parse_args()))\n"
)


def run_subprocess(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-c", GLUE, *map(str, argv)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_subprocess_exit_codes(results_file: Path) -> None:
    miss = run_subprocess(results_file, "--min", "arc_easy/acc=0.99")
    assert miss.returncode == 1, miss.stderr
    assert "gate: 1 check, 1 failed" in miss.stdout

    ok = run_subprocess(results_file, "--min", "arc_easy/acc=0.5")
    assert ok.returncode == 0, ok.stderr
    assert "gate: 1 check, 0 failed" in ok.stdout

    for argv in (
        [results_file.parent / "missing.json", "--min", "arc_easy/acc=0.5"],
        [results_file, "--min", "arc_easy/acc=high"],
    ):
        assert run_subprocess(*argv).returncode == 2  # bad input, not a failed check

    bad = run_subprocess(results_file, "--min", "arc_easy/nope=0.5")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().startswith("introspect gate: error: metric 'nope'")


def test_the_gate_sets_a_score_beside_its_constant_ceiling_and_flags_a_degenerate_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = lm_eval_results(ablation=0.7)
    data["results"]["introspect_input_ablation"].update(
        {"content_match_constant_ceiling,none": 0.75, "top_answer_share,none": 0.95}
    )
    data["configs"] = {
        "introspect_input_ablation": {
            "metadata": {"introspect": {"explanation_type": "input_ablation", "mode": "self"}}
        }
    }
    path = write(tmp_path / "results.json", data)
    assert run_gate(path, "--min", "introspect_input_ablation/content_match=0.5") == 0
    out = capsys.readouterr().out
    assert "content_match: 0.7 against a constant-answer ceiling of 0.75" in out
    assert "introspect_input_ablation is DEGENERATE (top answer share 0.95 >= 0.9)" in out
