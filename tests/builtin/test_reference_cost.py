"""Reference cost grows with what is asked: counted forward passes, never wall time.

Every pass of the batched backend is counted (passes and padded token positions). Work
that does not depend on the documents (the features concept pool, the attribute probes)
is an artifact, built once per subject and content; a ``--limit 3`` build beyond it
costs a bounded number of token positions per question.
"""

from __future__ import annotations

import pytest
import torch

from ground_truth import artifacts
from ground_truth.backends.hf import HFBackend
from harness_plugins.references import ReferencePipeline

PER_QUESTION = 3000
"""Token positions one question may cost on the tiny model, beyond shared artifacts."""
PER_QUESTION_OF = {"preferences": 20000}
"""Types whose question is many prompts (preferences: ~50 decisions of ~300 tokens each)."""

TYPES = {
    "activation_patching": {},
    "features": {},
    "input_ablation": {},
    "next_token": {},
    "patchscope_attributes": {"only_known": False},
    "patchscope_next_token": {},
    "preferences": {},
}


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Counts of the backend's passes; a fresh cache per test."""
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    counts = {"passes": 0, "positions": 0}
    original = HFBackend.run

    def run(self, ids, mask, plan, **kwargs):
        counts["passes"] += 1
        counts["positions"] += int(ids.numel())
        return original(self, ids, mask, plan, **kwargs)

    monkeypatch.setattr(HFBackend, "run", run)
    return counts


def build(model, name, limit, counts, **metadata):
    """Counts of one ``ensure(limit)``, and its documents."""
    counts.update(passes=0, positions=0)
    pipeline = ReferencePipeline(name, {"pretrained": str(model), **metadata}, model_arguments=[])
    docs = pipeline.ensure(limit)
    return dict(counts), docs


def test_features_read_the_concept_pool_once_per_subject(tiny_llama, counted):
    before = len(artifacts.built_artifacts)
    cold, docs = build(tiny_llama, "features", 3, counted, simulation=False)
    assert artifacts.built_artifacts[before:] == ["concept-pool"]
    assert cold["passes"] > 0 and len(docs) == 3
    # other references (another seed, more documents): the pool is not read again
    warm, _ = build(tiny_llama, "features", 6, counted, simulation=False, seed=7)
    assert warm["passes"] == 0
    assert artifacts.built_artifacts[before:] == ["concept-pool"]


def test_features_exemplars_only_for_the_features_asked(tiny_llama, counted):
    from harness_plugins.registry import get_registry

    source = get_registry().feature_sources["concepts"]
    ids = source.feature_ids({"concepts": None})
    pipeline = ReferencePipeline("features", {"pretrained": str(tiny_llama)}, model_arguments=[])
    subject = pipeline.subject_model()
    backend = HFBackend(subject, progress=False)
    options = dict(pipeline.options)
    every = source.build(subject, backend, options)
    some = source.build(subject, backend, options, wanted=ids[:2])
    assert all(some[i].top_exemplars == every[i].top_exemplars for i in ids[:2])
    assert all(some[i].random_exemplars == every[i].random_exemplars for i in ids[:2])
    assert all(some[i].vector == every[i].vector for i in ids)
    assert not some[ids[2]].top_exemplars


def test_attribute_probes_fitted_once_and_reused_on_extension(tiny_llama, counted):
    before = len(artifacts.built_artifacts)
    first, docs = build(tiny_llama, "patchscope_attributes", 3, counted, only_known=False)
    probes = artifacts.built_artifacts[before:].count("attribute-probe")
    relations = {d["relation"] for d in docs}
    assert 0 < probes <= len(relations) * len(docs[0]["layers"])
    # the same documents under another key (new_tokens): every probe comes from the cache
    mark = len(artifacts.built_artifacts)
    again, _ = build(
        tiny_llama, "patchscope_attributes", 3, counted, only_known=False, new_tokens=9
    )
    assert artifacts.built_artifacts[mark:] == []
    assert again["positions"] < first["positions"]
    # extension: the keep window reads further; only new relations get probes
    mark = len(artifacts.built_artifacts)
    _, more = build(tiny_llama, "patchscope_attributes", 8, counted, only_known=False)
    fitted = artifacts.built_artifacts[mark:].count("attribute-probe")
    assert fitted <= len({d["relation"] for d in more} - relations) * len(docs[0]["layers"])


@pytest.mark.parametrize("name", sorted(TYPES))
def test_limit_3_cost_is_proportional_to_3(tiny_llama, counted, name):
    metadata = {"simulation": False} if name == "features" else {}
    build(tiny_llama, name, 1, counted, **metadata, **TYPES[name], seed=99)  # shared artifacts
    three, docs = build(tiny_llama, name, 3, counted, **metadata, **TYPES[name])
    assert 0 < len(docs) <= 3
    assert three["positions"] <= 3 * PER_QUESTION_OF.get(name, PER_QUESTION), three


def test_injected_thoughts_read_every_swept_layer_in_one_pass_over_the_pool(
    tiny_llama, counted, monkeypatch, tmp_path
):
    """Two swept layers, cold cache: the pool costs the passes of one layer's read."""
    before = len(artifacts.built_artifacts)
    cold, docs = build(tiny_llama, "injected_thoughts", 3, counted, layers="0,1")
    assert artifacts.built_artifacts[before:] == ["concept-pool", "concept-pool"]
    assert len(docs) == 3 and len(docs[0]["vectors"]) == 2
    warm, _ = build(tiny_llama, "injected_thoughts", 3, counted, layers="0,1", seed=7)
    two_sites = cold["passes"] - warm["passes"]
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "one-site"))
    cold, _ = build(tiny_llama, "injected_thoughts", 3, counted, layers="1")
    warm, _ = build(tiny_llama, "injected_thoughts", 3, counted, layers="1", seed=7)
    assert 0 < two_sites == cold["passes"] - warm["passes"]


def test_sites_read_together_equal_sites_read_alone(tiny_llama, counted, monkeypatch, tmp_path):
    from ground_truth.sites import site
    from harness_plugins.builtin.features.sources import _Pool, _read_pool, read_pool_sites

    pipeline = ReferencePipeline("features", {"pretrained": str(tiny_llama)}, model_arguments=[])
    subject = pipeline.subject_model()
    backend = HFBackend(subject, progress=False)
    pool = _Pool.load(None)
    _, together = read_pool_sites(pool, subject, backend, [site("resid_post", k) for k in (0, 1)])
    assert counted["passes"] > 0
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "other-cache"))
    for k, values in zip((0, 1), together, strict=True):  # each read alone, in a fresh cache
        counted["passes"] = 0
        _, alone = _read_pool(pool, subject, backend, site("resid_post", k))
        assert counted["passes"] > 0
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(alone, values, strict=True))


def patching_sequences(pipeline, docs):
    """The clean (with the patched position) and donor (with the read position) token ids."""
    from harness_plugins.builtin.causal.activation_patching import ANSWER_PREFIX, subject_last_token

    tokenizer = pipeline.subject_model().tokenizer
    clean = [
        subject_last_token(tokenizer, d["prompt"], d["choices"], d["subject_span"], ANSWER_PREFIX)
        for d in docs
    ]
    donors = [
        subject_last_token(
            tokenizer,
            d["counterfactual_prompt"],
            d["choices"],
            d["counterfactual_span"],
            ANSWER_PREFIX,
        )
        for d in docs
    ]
    return clean, donors


def test_activation_patching_computes_the_minimal_positions(
    tiny_llama, counted, monkeypatch, tmp_path
):
    """One question at a time (no padding): the donor up to its read subject token, the
    clean prompt once, and the patched prompt from its written subject token on."""
    counts, docs = build(tiny_llama, "activation_patching", 6, counted, gt_batch_size=1)
    pipeline = ReferencePipeline(
        "activation_patching", {"pretrained": str(tiny_llama)}, model_arguments=[]
    )
    clean, donors = patching_sequences(pipeline, docs)
    minimal = (
        sum(len(ids) for ids, _ in clean)
        + sum(len(ids) - position for ids, position in clean)
        + sum(position + 1 for _, position in donors)
    )
    old = sum(2 * len(ids) for ids, _ in clean) + sum(len(ids) for ids, _ in donors)
    assert counts["positions"] == minimal < old
    # batched (padded), in a fresh cache: still fewer than the old path without padding
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "batched"))
    batched, again = build(tiny_llama, "activation_patching", 6, counted)
    assert again["question_id"] == docs["question_id"]
    assert batched["positions"] < old


def test_input_ablation_runs_each_question_once_up_to_the_hint(tiny_llama, counted):
    """Batches of two (a question's hinted and unhinted prompts, next in token order): the
    prefix they share runs once, then both rests, the shorter one left-padded to the longer.
    That padding is all above the minimal count (shared + both rests)."""
    from ground_truth.prefix_reuse import MIN_SHARED_PREFIX, common_length
    from harness_plugins.builtin.causal.input_ablation import ANSWER_PREFIX, InputAblation
    from harness_plugins.prompts.chat import encode_prompt

    counts, docs = build(tiny_llama, "input_ablation", 6, counted, gt_batch_size=2)
    pipeline = ReferencePipeline(
        "input_ablation", {"pretrained": str(tiny_llama)}, model_arguments=[]
    )
    tokenizer = pipeline.subject_model().tokenizer
    kind = InputAblation()
    layout = minimal = old = 0
    for doc in docs:
        hinted, unhinted = (
            encode_prompt(
                tokenizer, kind._subject_messages(doc, h, pipeline.options), ANSWER_PREFIX
            )
            for h in (True, False)
        )
        shared = min(common_length(hinted, unhinted), len(hinted) - 1, len(unhinted) - 1)
        assert shared >= MIN_SHARED_PREFIX
        rests = len(hinted) - shared, len(unhinted) - shared
        layout += shared + 2 * max(rests)
        minimal += shared + sum(rests)
        old += len(hinted) + len(unhinted)
    assert minimal <= counts["positions"] == layout < old
