"""SAE features: sae-lens' folder layout, labels files, the sae source and its scores."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from results_helpers import FEATURE_RUN_METRICS, metric_names, results_of
from sae_helpers import concept_directions, concept_sae, random_sae

from ground_truth.sae_format import hook_site, load_sae, read_config, save_sae
from harness_plugins.builtin.features.sae_labels import load_labels
from harness_plugins.builtin.features.sae_source import SaeFeatures, concept_labels
from harness_plugins.builtin.features.scoring import (
    calibrate,
    calibrated_r,
    fuzzing_marks,
    marked_text,
    number_tokens,
)
from harness_plugins.errors import IntrospectError


def test_sae_lens_layout_round_trips(tmp_path):
    sae = random_sae()
    save_sae(tmp_path / "sae", sae)
    back = load_sae(tmp_path / "sae")
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(back, name), getattr(sae, name)), name
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert (cfg["d_in"], cfg["d_sae"], cfg["hook_layer"]) == (8, 12, 1)
    assert cfg["hook_name"] == "blocks.1.hook_resid_post"
    x = torch.randn(3, 8)
    expected = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    assert torch.allclose(back.encode(x), expected)


def test_hook_names_map_to_sites_and_unreadable_ones_are_refused(tmp_path):
    assert hook_site("blocks.7.hook_resid_post") == ("blocks.7.hook_resid_post", 7)
    assert hook_site("blocks.0.hook_resid_pre") == ("blocks.0.hook_resid_pre", 0)
    with pytest.raises(IntrospectError, match="cannot be read"):
        hook_site("blocks.3.attn.hook_z")
    with pytest.raises(IntrospectError, match="outside"):
        hook_site("blocks.9.hook_resid_post", n_layers=2)
    save_sae(tmp_path / "attn", random_sae(hook="blocks.1.hook_mlp_out"))
    with pytest.raises(IntrospectError, match="cannot be read"):
        read_config(tmp_path / "attn")
    with pytest.raises(IntrospectError, match=r"cfg\.json and sae_weights"):
        read_config(tmp_path / "missing")


def test_shapes_that_disagree_with_the_config_are_refused(tmp_path):
    folder = save_sae(tmp_path / "sae", random_sae())
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 13}))
    with pytest.raises(IntrospectError, match="W_enc has shape"):
        load_sae(folder)


def test_labels_read_as_a_neuronpedia_list_a_mapping_or_jsonl(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text(
        json.dumps(
            [
                {"index": "3", "description": " dogs "},
                {"index": 3, "explanation": "puppies"},
                {"index": "5", "description": "rain"},
            ]
        )
    )
    assert load_labels(listed) == {3: ["dogs", "puppies"], 5: ["rain"]}
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"3": "dogs", "7": ["a", "b"]}))
    assert load_labels(mapping) == {3: ["dogs"], 7: ["a", "b"]}
    lines = tmp_path / "labels.jsonl"
    lines.write_text('{"index": 1, "description": "x"}\n{"index": 2, "label": "y"}\n')
    assert load_labels(lines) == {1: ["x"], 2: ["y"]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"index": "a", "description": "x"}]))
    with pytest.raises(IntrospectError, match="not a number"):
        load_labels(bad)


def test_calibrated_correlation():
    assert calibrated_r([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert calibrated_r([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert calibrated_r([5, 5, 5], [1, 2, 3]) == 0.0
    assert 0 < calibrated_r([0, 1, 0, 1, 2], [0, 1, 1, 1, 3]) < 1
    assert calibrate([1, 2, 3], [3, 5, 7]) == pytest.approx((1.0, 2.0))


@pytest.fixture(scope="module")
def subject(tiny_llama):
    from ground_truth.backends.hf import HFBackend
    from ground_truth.subject import ModelSpec, load_model
    from harness_plugins.registry import get_registry

    loaded = load_model(
        ModelSpec.from_arguments({"pretrained": str(tiny_llama)}), get_registry().model_aliases
    )
    return loaded, HFBackend(loaded, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def known_sae(subject, tmp_path_factory):
    loaded, backend = subject
    directions = concept_directions(loaded, backend, layer=1)
    return concept_sae(tmp_path_factory.mktemp("sae") / "concepts", directions, layer=1), directions


def options(folder, **extra):
    return {
        "sae": str(folder) if folder else None,
        "sae_features": None,
        "sae_top_k": 5,
        "sae_labels": None,
        "corpus": None,
        "window": 32,
        "exemplars": 3,
        "seed": 0,
        **extra,
    }


def test_sae_features_carry_their_concept_label_direction_and_exemplars(subject, known_sae):
    loaded, backend = subject
    (folder, labels), directions = known_sae
    names = sorted(directions)
    chosen = [names.index("dogs"), names.index("rain")]
    opts = options(folder, sae_labels=str(labels), sae_features=chosen)
    features = SaeFeatures().build(loaded, backend, opts)
    assert list(features) == [f"sae-{i:06d}" for i in chosen]
    for feature, name in zip(features.values(), ("dogs", "rain"), strict=True):
        assert feature.label == name and feature.layer == 1
        unit = directions[name] / directions[name].norm()
        assert torch.allclose(torch.tensor(feature.vector), unit, atol=1e-5)
        tops = [e.peak for e in feature.top_exemplars]
        assert len(tops) == 3 and min(tops) >= max(e.peak for e in feature.random_exemplars)
        assert all(len(e.tokens) == len(e.activations) for e in feature.top_exemplars)


def test_top_k_by_frequency_and_unlabelled_features(subject, known_sae):
    loaded, backend = subject
    (folder, _), _ = known_sae
    features = SaeFeatures().build(loaded, backend, options(folder), wanted=[])
    assert list(features) == [f"sae-rank-{r:04d}" for r in range(5)]
    frequencies = [f.extra["frequency"] for f in features.values()]
    assert frequencies == sorted(frequencies, reverse=True) and frequencies[0] > 0
    assert all(f.label == "" and not f.top_exemplars for f in features.values())


def test_bad_sae_options_fail_before_any_model_loads(tmp_path, known_sae):
    from harness_plugins.builtin.features.sae_source import check_options

    (folder, _), _ = known_sae
    with pytest.raises(IntrospectError, match="needs an SAE folder"):
        check_options(options(None))
    with pytest.raises(IntrospectError, match="outside 0"):
        check_options(options(folder, sae_features=[10_000]))
    sparse = tmp_path / "one-label.json"
    sparse.write_text(json.dumps({"0": "x"}))
    with pytest.raises(IntrospectError, match="no description"):
        check_options(options(folder, sae_labels=str(sparse), sae_features=[0, 1]))


def test_number_tokens_are_single_tokens(subject):
    loaded, _ = subject
    found = number_tokens(loaded.tokenizer, 10)
    assert all(
        len(loaded.tokenizer.encode(str(v), add_special_tokens=False)) == 1 for v in found.values()
    )


def lm_eval_features(model, out, metadata, *extra):
    return run_cli(
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={model}",
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--tasks",
        "introspect_features",
        "--limit",
        "2",
        "--output_path",
        str(out),
        "--metadata",
        json.dumps(metadata),
        *extra,
    )


def test_sae_source_through_lm_eval_with_and_without_labels(tiny_llama, known_sae, tmp_path):
    (folder, labels), _ = known_sae
    metadata = {"source": "sae", "sae": str(folder), "sae_top_k": 10}
    done = lm_eval_features(
        tiny_llama,
        tmp_path / "labelled",
        {**metadata, "sae_labels": str(labels)},
        "--log_samples",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path / "labelled")["results"]["introspect_features"]
    assert metric_names(results) == FEATURE_RUN_METRICS
    assert 0.0 <= results["judge_score,none"] <= 1.0
    # the judge's prompts and ratings are logged beside each sample, and give its score
    samples = [
        json.loads(line)
        for path in (tmp_path / "labelled").rglob("samples_introspect_features_*.jsonl")
        for line in path.read_text().splitlines()
    ]
    summary = results_of(tmp_path / "labelled")
    assert len(samples) == summary["n-samples"]["introspect_features"]["effective"] >= 1
    for sample in samples:
        ratings = sample["doc"]["introspect_judge"]
        description = sample["filtered_resps"][0].strip()
        if not description:
            assert ratings == [] and sample["judge_score"] == 0.0
            continue
        assert [r["reference"] for r in ratings] == sample["doc"]["labels"]
        for record in ratings:
            assert record["reference"] in record["prompt"] and description in record["prompt"]
            assert record["rating"] == 1 + max(range(5), key=record["p_1_to_5"].__getitem__)
        best = max(r["rating"] for r in ratings)
        assert sample["judge_score"] == (best - 1) / 4
    assert -1.0 <= results["simulation_r,none"] <= 1.0
    done = lm_eval_features(tiny_llama, tmp_path / "bare", metadata)
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(tmp_path / "bare")["results"]["introspect_features"]
    assert metric_names(results) == {"detection", "fuzzing", "simulation_r", "top_answer_share"}
    assert "without reference labels: only label-free scoring" in done.stderr


def test_concept_labels_name_the_concept_a_feature_is_selective_for():
    owners = ["a"] * 2 + ["b"] * 2 + [None] * 36  # like the bank: few sentences per concept
    peaks = torch.zeros(40, 3)
    peaks[:2, 0] = 5.0  # feature 0: concept a only
    peaks[2:4, 1] = 5.0  # feature 1: concept b only
    peaks[:, 2] = torch.linspace(0, 1, 40)  # feature 2: no concept stands out
    assert concept_labels(peaks, owners) == {0: ["a"], 1: ["b"]}


def test_concept_labels_that_label_nothing_fail_clearly(subject, known_sae):
    """A random tiny model's concept directions overlap (122 in 32 dimensions): no feature
    is selective enough, and the run says so instead of scoring unlabelled features."""
    loaded, backend = subject
    (folder, _), _ = known_sae
    with pytest.raises(IntrospectError, match="have labels"):
        SaeFeatures().build(
            loaded, backend, options(folder, sae_labels="concepts", sae_top_k=100), wanted=[]
        )


def test_fuzzing_marks_the_most_active_tokens_or_as_many_others():
    activations = [0.0, 3.0, 0.0, 5.0, 1.0, 0.0, 0.0]
    true, false = fuzzing_marks(activations, seed=0)
    assert true == {3, 1, 4}  # the three most active
    assert len(false) == 3 and not false & true
    assert fuzzing_marks(activations, seed=0) == (true, false)  # seeded
    assert fuzzing_marks([0.0, 0.0], seed=0) == (set(), set())  # never active: nothing to mark
    only = fuzzing_marks([0.0, 2.0, 0.0], seed=1)
    assert only[0] == {1} and len(only[1]) == 1 and 1 not in only[1]


def test_marked_text_wraps_the_marked_tokens(subject):
    loaded, _ = subject
    tokenizer = loaded.tokenizer
    tokens = tokenizer.tokenize("the rain fell on the dogs")
    text = marked_text(tokenizer, tokens, {2})
    assert text.count("<<") == 1 and text.count(">>") == 1
    assert text.replace("<<", "").replace(">>", "") == tokenizer.convert_tokens_to_string(tokens)
    inside = text[text.index("<<") + 2 : text.index(">>")]
    assert inside == tokenizer.convert_tokens_to_string([tokens[2]]).strip()
