"""Issue 16: the measured method matches the paper and what the explainer is told."""

from __future__ import annotations

import pytest
from tiny_models import make_tokenizer

from harness_plugins.builtin.causal.activation_patching import (
    ANSWER_PREFIX,
    subject_last_token,
    subject_span,
)
from harness_plugins.builtin.patchscopes.attributes import PatchscopeAttributes, _subject_end
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.task import IntrospectTask
from harness_plugins.prompts.vectors import VectorTable
from harness_plugins.references import ReferencePipeline


def make_task(name, metadata):
    return IntrospectTask(
        config={"task": f"introspect_{name}", "dataset_name": name, "metadata": metadata}
    )


# (template, subject, choices): the subject also occurs in a choice, or inside a longer word
TRAPS = [
    ("The day after {} is", "Saturday", ["Sunday", "Saturday", "Monday"]),
    ("The plural of {} is", "child", ["children", "childs", "kids"]),
    ("The plural of {} is", "ox", ["oxen", "oxes", "boxes"]),
    ("The language of {} is", "Croatia", ["Croatian", "Serbian", "Slovene"]),
]


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize(("template", "subject", "choices"), TRAPS)
def test_subject_token_is_in_the_prompt_not_in_a_choice(chat, template, subject, choices):
    tokenizer = make_tokenizer(chat_template=chat)
    prompt = template.replace("{}", subject)
    span = subject_span(template, subject)
    assert prompt[span[0] : span[1]] == subject
    ids, position = subject_last_token(tokenizer, prompt, choices, span, ANSWER_PREFIX)
    text = tokenizer.decode(ids)
    before = tokenizer.decode(ids[: position + 1])
    # the token ends the subject inside the prompt line, before the choices start
    assert before.endswith(subject) or subject.endswith(tokenizer.decode(ids[position]).strip())
    assert len(before) <= text.index("\nA.")


def test_activation_patching_questions_record_the_subject_span():
    from harness_plugins.builtin.causal.activation_patching import ActivationPatching
    from harness_plugins.options import resolve_options

    kind = ActivationPatching()
    options = resolve_options("t", kind.all_options(), {})
    for doc in kind.questions(options).select(range(5)):
        start, end = doc["subject_span"]
        assert doc["prompt"][start:end] == doc["subject"]
        start, end = doc["counterfactual_span"]
        assert doc["counterfactual_prompt"][start:end] == doc["counterfactual_subject"]


def test_patchscope_source_position_honours_position_source():
    tokenizer = make_tokenizer(chat_template=False)
    text = "Paris is nice, and Paris is old"
    ids, last = _subject_end(tokenizer, text, "Paris", add_special_tokens=False)
    _, first = _subject_end(tokenizer, text, "Paris", add_special_tokens=False, position_source=0)
    assert first < last and tokenizer.decode(ids[first]).strip().endswith("s")
    _, by_end = _subject_end(tokenizer, text, "Paris", add_special_tokens=False, position_source=-3)
    assert by_end == last


def test_patched_generation_is_as_long_as_the_known_fact_check(tiny_llama):
    task = make_task("patchscope_attributes", {"pretrained": str(tiny_llama), "new_tokens": 7})
    assert task.config.generation_kwargs["max_gen_toks"] == 7
    doc = {
        "prompt_target": "The capital city of x is",
        "layers": [0],
        "hidden": [[0.0] * 32],
        "new_tokens": 7,
    }
    with VectorTable().active():
        requests = PatchscopeAttributes().requests(doc, "", {"max_gen_toks": 50})
    assert requests[0][1][1]["max_gen_toks"] == 7


def test_attribute_partition_is_by_subject(tmp_path):
    from harness_plugins.options import resolve_options

    tsv = tmp_path / "country_capital.tsv"
    rows = [
        (s, o, f"{lead} {s} today.")
        for s, o in [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid")] * 1
        for lead in ("I saw", "We left", "They love", "She met")
    ]
    tsv.write_text(
        "prompt_target\tsubject\tobject\tprompt_source\tposition_source\n"
        + "".join(f"The capital city of x is\t{s}\t{o}\t{src}\t-1\n" for s, o, src in rows)
    )
    kind = PatchscopeAttributes()
    sides = {}
    for partition in ("train", "test"):
        options = resolve_options(
            "t",
            kind.all_options(),
            {"data": str(tsv), "partition": partition, "test_fraction": 0.5},
        )
        sides[partition] = set(kind.questions(options)["subject"])
    assert not sides["train"] & sides["test"]
    assert sides["train"] | sides["test"] == {"France", "Italy", "Spain"}


def test_empty_prompt_source_rows_are_skipped_with_one_warning(tmp_path):
    from harness_plugins.banks.patchscopes_tsv import load_patchscopes_tsv

    tsv = tmp_path / "rel.tsv"
    tsv.write_text(
        "prompt_target\tsubject\tobject\tprompt_source\tposition_source\n"
        "The capital city of x is\tFrance\tParis\tI saw France.\t-1\n"
        "The capital city of x is\tItaly\tRome\t\t-1\n"
        "The capital city of x is\tSpain\tMadrid\t \t-1\n"
    )
    with pytest.raises(IntrospectError, match="column 'prompt_source' is empty"):
        load_patchscopes_tsv(tsv)
    with pytest.warns(UserWarning, match="skipped 2 row"):
        triples = load_patchscopes_tsv(tsv, skip_empty_source=True)
    assert [t.subject for t in triples] == ["France"]
    assert triples[0].position_source == -1


def test_bad_tsv_and_misspelt_option_fail_before_any_model_loads(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("prompt_target\tsubject\n")
    with pytest.raises(IntrospectError, match="missing column"):
        ReferencePipeline(
            "patchscope_attributes",
            {"pretrained": "no-such-model-is-loaded", "data": str(bad)},
            model_arguments=["pretrained"],
        )
    for known in (None, ["pretrained"]):  # any model; the introspect model
        with pytest.raises(
            IntrospectError, match=r"unknown option 'data_file'; did you mean 'data'"
        ):
            ReferencePipeline(
                "patchscope_attributes",
                {"pretrained": "no-such-model-is-loaded", "data_file": str(bad)},
                model_arguments=["pretrained"],
                known_model_arguments=known,
            )


def test_source_and_target_layer_sweep_and_its_heatmap(tmp_path):
    from harness_plugins.commands.plots.pairs import pair_metrics, plot_pair_heatmaps

    doc = {
        "prompt_target": "The capital city of x is",
        "object": "Paris",
        "layers": [0, 2],
        "hidden": [[0.0] * 8, [1.0] * 8],
        "probe_correct": [0.0, 1.0],
        "new_tokens": 10,
        "target_layers": [1, 3],
    }
    kind = PatchscopeAttributes()
    with VectorTable().active():
        requests = kind.requests(doc, "", {})
    assert len(requests) == 4
    scores = kind.score_results(doc, [" Paris", " Rome", " Lyon", " Paris!"])
    assert scores["accuracy_src00_tgt01"] == 1.0 and scores["accuracy_src00_tgt03"] == 0.0
    assert scores["accuracy_layer00"] == 0.5 and scores["accuracy_layer02"] == 0.5
    same = kind.score_results({**doc, "target_layers": []}, [" Paris", " Rome"])
    assert "accuracy_src00_tgt00" not in same and same["accuracy_layer02"] == 0.0
    results = {"t": {f"{k},none": v for k, v in scores.items()} | {"alias": "t"}}
    assert pair_metrics(results["t"])["accuracy"][(2, 3)] == 1.0
    (path,) = plot_pair_heatmaps(results, tmp_path)
    assert path.name == "t__accuracy_by_layer_pair.png" and path.stat().st_size > 0
