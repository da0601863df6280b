"""``introspect report``: every score beside the baseline its explanation type names."""

from __future__ import annotations

import json

from harness_plugins.commands.cli import main
from harness_plugins.commands.report import report_rows


def results(task: str, explanation_type: str, metrics: dict, mode: str = "self") -> dict:
    entries = {}
    for name, (value, stderr) in metrics.items():
        entries[f"{name},none"] = value
        entries[f"{name}_stderr,none"] = stderr
    return {
        "results": {task: {"alias": task, **entries}},
        "configs": {
            task: {"metadata": {"introspect": {"explanation_type": explanation_type, "mode": mode}}}
        },
        "n-samples": {task: {"original": 100, "effective": 20}},
    }


def test_causal_scores_stand_beside_the_unchanged_rate():
    rows = report_rows(
        results(
            "introspect_input_ablation",
            "input_ablation",
            {
                "exact_match": (0.3, 0.1),
                "content_match": (0.5, 0.1),
                "changed_f1": (0.2, "N/A"),
                "valid": (1.0, 0.0),
                "unchanged_rate": (0.45, 0.11),
            },
            mode="cross",
        )
    )
    by_metric = {row.metric: row for row in rows}
    assert "unchanged_rate" not in by_metric  # shown as a baseline, not as a score
    exact = by_metric["exact_match"]
    assert (exact.baseline, exact.baseline_value, exact.baseline_stderr) == (
        "unchanged_rate",
        0.45,
        0.11,
    )
    assert exact.n == 20 and exact.mode == "cross"
    assert by_metric["changed_f1"].baseline_value == 0.0 and by_metric["changed_f1"].stderr is None
    assert by_metric["valid"].baseline == ""


def test_patchscope_scores_stand_beside_the_logit_lens_and_layers_are_left_out():
    rows = report_rows(
        results(
            "introspect_patchscope_next_token",
            "patchscope_next_token",
            {
                "p_at_1": (0.54, 0.02),
                "logit_lens_p_at_1": (0.17, 0.02),
                "p_at_1_layer03": (0.9, 0.01),
                "surprisal": (3.5, 0.1),
                "logit_lens_surprisal": (5.3, 0.1),
            },
        )
    )
    assert [(r.metric, r.baseline) for r in rows] == [
        ("p_at_1", "logit_lens_p_at_1"),
        ("surprisal", "logit_lens_surprisal"),
    ]


def test_the_command_prints_the_card_and_names_a_bad_file(tmp_path, capsys):
    path = tmp_path / "results_2026-01-01T00-00-00.json"
    path.write_text(
        json.dumps(
            results(
                "introspect_features",
                "features",
                {"mc_accuracy": (0.4, 0.1), "mc_chance": (0.2, 0.0)},
            )
        )
    )
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mc_accuracy" in out and "0.400 ± 0.100" in out and "mc_chance" in out
    (tmp_path / "results_2027-01-01T00-00-00.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 2
    assert "no introspect task" in capsys.readouterr().err


def test_the_card_sets_each_score_beside_its_floor_and_ceiling_and_says_which_beat_them():
    from harness_plugins.commands.report import format_card, summary_lines, task_verdicts
    from harness_plugins.results import RunResults

    task = "introspect_input_ablation"
    run = results(
        task,
        "input_ablation",
        {
            "exact_match": (0.55, 0.05),
            "exact_match_constant_ceiling": (0.40, "N/A"),
            "content_match": (0.60, 0.05),
            "content_match_constant_ceiling": (0.75, "N/A"),
            "top_answer_share": (0.30, 0.05),
        },
    )
    shuffled = RunResults.from_dict(
        results(
            task, "input_ablation", {"exact_match": (0.35, 0.05), "content_match": (0.62, 0.05)}
        )
    ).task(task)
    oracle = RunResults.from_dict(
        results(task, "input_ablation", {"exact_match": (1.0, 0.0), "content_match": (1.0, 0.0)})
    ).task(task)
    rows = report_rows(run, {task: {"shuffled": shuffled, "oracle": oracle}})
    by_metric = {row.metric: row for row in rows}
    assert set(by_metric) == {"exact_match", "content_match"}  # calibration is no score row
    assert (by_metric["exact_match"].floor, by_metric["exact_match"].ceiling) == (0.35, 0.40)
    card = format_card(rows)
    assert "shuffled floor" in card and "0.350 ± 0.050" in card
    lines = summary_lines(rows, task_verdicts(RunResults.from_dict(run)))
    assert f"beat their shuffled floor: {task}/exact_match" in lines
    assert f"do not: {task}/content_match" in lines  # 0.60 vs 0.62: no
    assert f"above their constant ceiling: {task}/exact_match" in lines
    assert f"{task}: top answer share 0.30; not degenerate" in lines


def test_a_one_sentence_run_is_called_degenerate_on_the_card():
    from harness_plugins.commands.report import summary_lines, task_verdicts
    from harness_plugins.results import RunResults

    task = "introspect_activation_patching"
    run = RunResults.from_dict(
        results(
            task,
            "activation_patching",
            {
                "exact_match": (0.7, 0.05),
                "exact_match_constant_ceiling": (0.7, "N/A"),
                "top_answer_share": (1.0, 0.0),
            },
        )
    )
    lines = summary_lines(report_rows(run), task_verdicts(run))
    assert lines[0] == f"{task}: top answer share 1.00; DEGENERATE (top answer share 1.00 >= 0.9)"
