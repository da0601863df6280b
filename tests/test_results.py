"""The one reader of lm-eval output: files found, checked and parsed into typed results."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from harness_plugins.errors import IntrospectError
from harness_plugins.results import RunRecord, RunResults, record_fields

TASK = "introspect_input_ablation"


def lm_eval_output(exact_match: float = 0.3, record: dict | None = None) -> dict:
    """A results file in lm-eval 0.4's shape, with one introspect task and one group."""
    record = {"mode": "cross", "explanation_type": "input_ablation", "subject": "s",
              "explainer": "e", "options": {"seed": 1}, "references_built": 12} if record is None else record  # fmt: skip
    return {
        "results": {
            TASK: {
                "alias": TASK,
                "exact_match,none": exact_match,
                "exact_match_stderr,none": 0.05,
                "changed_f1,none": 0.2,
                "changed_f1_stderr,none": "N/A",
                "content_match,strict": 0.4,
                "p_at_1_layer03,none": 0.9,
            },
            "arc_easy": {"alias": "arc_easy", "acc,none": 0.7},
        },
        "groups": {"mmlu": {"alias": "mmlu", "acc,none": 0.5}},
        "configs": {TASK: {"metadata": {"introspect": record}}, "arc_easy": {"metadata": {}}},
        "versions": {TASK: 2, "arc_easy": 1.0},
        "n-samples": {TASK: {"original": 100, "effective": 20}},
        "higher_is_better": {TASK: {"exact_match": True}},
        "config": {"model_name": "introspect"},
    }


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_a_good_file_reads_into_tasks_metrics_and_the_record(tmp_path):
    run = RunResults.load(write(tmp_path / "results_2026-01-01T00-00-00.json", lm_eval_output()))
    assert set(run.tasks) == {TASK, "arc_easy", "mmlu"} and run.tasks["mmlu"].group
    task = run.tasks[TASK]
    assert (task.n, task.version, task.group) == (20, 2, False)
    exact = task.metric("exact_match")
    assert (exact.value, exact.stderr, exact.key) == (0.3, 0.05, "exact_match,none")
    assert task.metric("changed_f1").stderr is None  # "N/A"
    assert task.metric("content_match").display == "content_match,strict"
    assert [m.name for m in task.summary_metrics] == ["exact_match", "changed_f1", "content_match"]
    assert task.record.mode == "cross" and task.record.options == {"seed": 1}
    assert task.record.references_built == 12 and task.record.explainer_or_subject == "e"
    assert run.tasks["arc_easy"].record is None
    assert [t.name for t in run.introspect_tasks] == [TASK]
    assert run.higher_is_better == {TASK: {"exact_match": True}}
    assert run.model_name == "introspect"


def test_a_folder_gives_its_newest_results_file(tmp_path):
    old = write(tmp_path / "a" / "results_2026-01-01T00-00-00.json", lm_eval_output(0.1))
    new = write(tmp_path / "b" / "results_2026-02-01T00-00-00.123456.json", lm_eval_output(0.9))
    write(tmp_path / "b" / "samples_x_2026-02-01T00-00-00.jsonl", {"not": "results"})
    os.utime(old, (new.stat().st_mtime + 100,) * 2)  # a later copy: the name's time decides
    run = RunResults.load(tmp_path)
    assert run.path == new and run.tasks[TASK].metric("exact_match").value == 0.9


@pytest.mark.parametrize(
    ("content", "says"),
    [('{"results": {\n oops', "not valid JSON (line 2"),
     ("[1, 2]", 'has no "results" dict'),
     ('{"configs": {}}', 'has no "results" dict')],
)  # fmt: skip
def test_malformed_files_fail_with_one_line_naming_the_file(tmp_path, content, says):
    bad = tmp_path / "results_2026-01-01T00-00-00.json"
    bad.write_text(content)
    with pytest.raises(IntrospectError) as info:
        RunResults.load(bad)
    message = str(info.value)
    assert says in message and str(bad) in message and "\n" not in message


def test_missing_paths_fail_through_the_callers_error(tmp_path):
    class Mine(Exception):
        pass

    with pytest.raises(Mine, match="results file not found"):
        RunResults.load(tmp_path / "nope.json", Mine)
    (tmp_path / "empty").mkdir()
    with pytest.raises(Mine, match=r"no results_\*\.json found under directory"):
        RunResults.load(tmp_path / "empty", Mine)


def test_a_file_without_results_reads_when_the_caller_allows_it(tmp_path):
    run = RunResults.load(write(tmp_path / "r.json", {}), require_results=False)
    assert run.tasks == {} and run.introspect_tasks == []


def test_an_older_record_reads_with_defaults_and_keeps_unknown_fields():
    data = lm_eval_output(record={"mode": "self", "subject": "m", "retired_field": 3})
    record = RunResults.from_dict(data).tasks[TASK].record
    assert record.mode == "self" and record.explainer is None and record.options == {}
    assert record.references_built == 0 and record.reference_key is None
    assert record.explainer_or_subject == "m" and record.extra == {"retired_field": 3}
    assert RunRecord.from_dict({"options": "not a dict"}).options == {}


def test_a_task_without_entries_still_has_its_record_and_n():
    data = {"configs": {"t": {"metadata": {"introspect": {"mode": "self"}}}},
            "n-samples": {"t": {"effective": 5}}}  # fmt: skip
    task = RunResults.from_dict(data).task("t")
    assert task.record.mode == "self" and task.n == 5 and task.metrics == ()


def test_the_reader_knows_every_field_the_writer_writes():
    from harness_plugins.references import ReferenceRecord

    written = {f.name for f in dataclasses.fields(ReferenceRecord)}
    assert written == set(record_fields())
    record = ReferenceRecord(
        mode="self", explanation_type="t", type_version="1", subject="s", explainer=None,
        options={"a": 1}, reference_key="k", num_fewshot=2,
    )  # fmt: skip
    read = RunRecord.from_dict(json.loads(json.dumps(record.as_dict())))
    assert read.extra == {}
    assert {name: getattr(read, name) for name in written} == {
        name: getattr(record, name) for name in written
    }
