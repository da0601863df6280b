"""``introspect matrix`` labels: an adapter on the subject's base is self; gaps compare like with like."""

from __future__ import annotations

import csv
import json

from harness_plugins.commands.matrix import Cell, ModelChoice, pair_mode, self_cross_gaps
from harness_plugins.commands.matrix_outputs import gap_lines, write_outputs
from harness_plugins.commands.matrix_statistics import cell_interval, paired_gap


def test_pair_mode_by_base_weights():
    base, tuned = ModelChoice.parse("m"), ModelChoice.parse("m+/adapters/a")
    assert pair_mode(base, base) == "self"
    assert pair_mode(tuned, base) == "self"
    assert pair_mode(ModelChoice.parse("o"), base) == "cross"
    assert pair_mode(base, tuned) == "cross"


def cell(explainer: str, mode: str, value: float) -> Cell:
    return Cell(explainer, "m", mode, "t", "acc", value, 0.01, "ok")


def test_each_self_explainer_gets_its_own_gap_against_the_cross_mean():
    cells = [
        cell("m", "self", 0.6),
        cell("m+a", "self", 0.9),
        cell("o1", "cross", 0.4),
        cell("o2", "cross", 0.2),
    ]
    gaps = {g["explainer"]: g for g in self_cross_gaps(cells)}
    assert set(gaps) == {"m", "m+a"}
    assert round(gaps["m"]["gap"], 9) == 0.3 and round(gaps["m+a"]["gap"], 9) == 0.6
    assert gaps["m"]["cross_explainers"] == 2


def docs(values: list, target: str = "t") -> dict:
    """doc_id -> (target hash, per-document value), as lm-eval's samples give them."""
    return {i: (f"{target}{i}", v) for i, v in enumerate(values)}


def test_identical_explainers_have_gap_zero_and_p_one():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    test = paired_gap(docs(values), [docs(values)], resamples=500)
    assert test is not None and test.n == 8
    assert test.gap == 0 and test.ci_low == 0 and test.ci_high == 0
    assert test.p_value == 1.0


def test_a_clearly_better_self_has_a_small_p_and_an_interval_above_zero():
    self_values = [1.0] * 28 + [0.0] * 2
    cross_values = [0.0] * 27 + [1.0] * 3
    test = paired_gap(docs(self_values), [docs(cross_values)], resamples=999)
    assert test is not None
    assert round(test.gap, 9) == round(28 / 30 - 3 / 30, 9)
    assert 0 < test.ci_low < test.gap < test.ci_high <= 1
    assert test.p_value == 1 / 1000  # no resample as far from the gap as the gap from 0


def test_a_small_noisy_gap_is_not_significant():
    self_values = [1.0, 0.0] * 10
    cross_values = [0.0, 1.0] * 9 + [0.0, 0.0]  # one document better for self
    test = paired_gap(docs(self_values), [docs(cross_values)], resamples=999)
    assert test is not None and round(test.gap, 9) == 0.05
    assert test.ci_low < 0 < test.ci_high and test.p_value > 0.3


def test_the_gap_resamples_documents_and_recomputes_f1():
    # F1 of "changed" is not the mean of per-document values: pairs are recomputed.
    self_pairs = [[True, True]] * 6 + [[False, False]] * 6
    cross_pairs = [[True, False]] * 6 + [[False, False]] * 6  # never says "changed": F1 0
    test = paired_gap(docs(self_pairs), [docs(cross_pairs)], resamples=500)
    assert test is not None and test.gap == 1.0 and test.ci_low == 1.0
    assert cell_interval([[True, True], [True, False], [False, False]] * 4, 2 / 3) is not None


def test_only_documents_with_the_same_reference_pair_up():
    self_docs, cross_docs = docs([1.0, 0.0, 1.0]), docs([0.0, 0.0, 0.0])
    cross_docs[2] = ("other reference", 0.0)
    test = paired_gap(self_docs, [cross_docs], resamples=200)
    assert test is not None and test.n == 2
    assert paired_gap(docs([1.0]), [docs([0.0])]) is None  # one document: no interval


def test_a_cell_interval_covers_the_mean_and_refuses_a_mismatched_aggregate():
    values = [1.0] * 6 + [0.0] * 4
    low, high = cell_interval(values, 0.6, resamples=999)
    assert low < 0.6 < high and 0 <= low and high <= 1
    assert cell_interval(values, 0.9) is None  # lm-eval aggregated these some other way
    assert cell_interval([{"a": 1}, {"a": 2}], 1.5) is None  # no known aggregate


def test_gaps_carry_the_paired_test_and_the_outputs_the_interval_columns(tmp_path):
    self_values, cross_values = [1.0] * 9 + [0.0], [0.0] * 8 + [1.0] * 2
    cells = [
        Cell("m", "m", "self", "t", "acc", 0.9, None, "ok", 0.7, 1.0, 10),
        Cell("o", "m", "cross", "t", "acc", 0.2, None, "ok", 0.0, 0.5, 10),
    ]
    documents = {
        ("m", "m", "t", "acc"): docs(self_values),
        ("o", "m", "t", "acc"): docs(cross_values),
    }
    (gap,) = self_cross_gaps(cells, documents, resamples=500)
    assert gap["n"] == 10 and gap["ci_low"] > 0 and gap["p_value"] < 0.01
    csv_path, json_path = write_outputs(cells, [gap], tmp_path)
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"ci_low", "ci_high", "n"} <= set(rows[0]) and rows[0]["ci_low"] == "0.7"
    saved = json.loads(json_path.read_text())["self_minus_cross"][0]
    assert saved["p_value"] == gap["p_value"] and "[" in gap_lines([gap])[0]


def test_an_adapter_per_subject_resolves_by_the_subject_name():
    explainer = ModelChoice.parse("e+runs/seed0/e/{subject}")
    subject = ModelChoice.parse("/models/tiny-llama")
    assert explainer.for_subject(subject).peft == "runs/seed0/e/tiny-llama"
    assert explainer.label == "e+e/{subject}"
    assert ModelChoice.parse("e+a").for_subject(subject) == ModelChoice.parse("e+a")
    assert (
        pair_mode(explainer.for_subject(ModelChoice.parse("e")), ModelChoice.parse("e")) == "self"
    )


def test_baseline_metrics_get_no_gap_row():
    """unchanged_rate describes the references (the same for every explainer of a subject):
    its gap is 0 by construction, so the gap table leaves it out."""
    cells = [
        Cell(e, "m", mode, "introspect_input_ablation", metric, value, 0.01, "ok")
        for e, mode in (("m", "self"), ("o", "cross"))
        for metric, value in (
            ("exact_match", 0.5 if mode == "self" else 0.25),
            ("unchanged_rate", 0.4),
        )
    ]
    gaps = self_cross_gaps(cells)
    assert [(g["metric"], g["gap"]) for g in gaps] == [("exact_match", 0.25)]


def test_a_gap_between_one_sentence_explainers_is_flagged_and_not_significant():
    from harness_plugins.commands.matrix_outputs import significance_summary, significant_gaps

    task = "introspect_activation_patching"
    self_values, cross_values = [1.0] * 10, [0.0] * 10
    cells = [
        Cell("m", "m", "self", task, "exact_match", 1.0, None, "ok", n=10),
        # the self explainer says "unchanged" to everything: exactly what a constant reaches
        Cell("m", "m", "self", task, "exact_match_constant_ceiling", 1.0, None, "ok"),
        Cell("m", "m", "self", task, "top_answer_share", 1.0, None, "ok"),
        Cell("o", "m", "cross", task, "exact_match", 0.0, None, "ok", n=10),
        Cell("o", "m", "cross", task, "exact_match_constant_ceiling", 1.0, None, "ok"),
        Cell("o", "m", "cross", task, "top_answer_share", 0.4, None, "ok"),
    ]
    documents = {
        ("m", "m", task, "exact_match"): docs(self_values),
        ("o", "m", task, "exact_match"): docs(cross_values),
    }
    gaps = self_cross_gaps(cells, documents, resamples=500)
    # calibration metrics get no gap row; the score's gap is flagged on both sides
    assert [g["metric"] for g in gaps] == ["exact_match"]
    (gap,) = gaps
    assert gap["p_value"] < 0.01  # the test alone would call it a finding
    assert gap["degenerate"].startswith("self m: top answer share 1.00")
    assert "cross o: no answer metric beats its constant ceiling" in gap["degenerate"]
    assert "DEGENERATE" in gap_lines([gap])[0] and "no finding" in gap_lines([gap])[0]
    assert significant_gaps(gaps) == []
    assert "0 of 1 gaps (none); 1 set aside as degenerate" in significance_summary(gaps)
