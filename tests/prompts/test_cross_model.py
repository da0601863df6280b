"""Cross-model affine maps: alignment by text, exact recovery, caching, the task's mapper."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tiny_models import make_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

from ground_truth.affine_map import (
    MANIFEST,
    MAP_FILE,
    MapStore,
    aligned_positions,
    corresponding_layer,
    fit_affine_map,
    r_squared,
    solve_affine,
)
from ground_truth.backends.hf import HFBackend
from ground_truth.store import CHECKSUMS, entry_paths
from ground_truth.subject import ModelSpec, load_model
from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.cross_model import mapper_for, shared_texts
from harness_plugins.registry import get_registry

TEXTS = [
    "What is the capital of Peru? Über 12 apples — café.",
    "Hint: I think the answer is (B). The waves crashed onto the harbour wall.",
    "Which day comes after Monday? Tuesday, of course!",
]


def save_wide_llama(folder: Path, hidden_size: int = 48, layers: int = 3, seed: int = 2) -> Path:
    """A Llama of another width and depth, with another BPE vocabulary (300 tokens)."""
    tokenizer = make_tokenizer(chat_template=True, vocab_size=300)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def wide_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_wide_llama(tmp_path_factory.mktemp("models") / "tiny-llama-48")


@pytest.fixture(scope="module")
def pair(tiny_llama: Path, wide_llama: Path):
    """(subject, explainer) loaded, with their hf backends."""
    subject = load_model(ModelSpec(str(tiny_llama)), {})
    explainer = load_model(ModelSpec(str(wide_llama)), {})
    return (
        subject,
        explainer,
        HFBackend(subject, batch_size=32, progress=False),
        HFBackend(explainer, batch_size=32, progress=False),
    )


# ---------------------------------------------------------------- (a) alignment


def _prefixes(tokenizer, text: str) -> tuple[list[int], list[str]]:
    ids = tokenizer(text)["input_ids"]
    return ids, [
        tokenizer.decode(ids[: i + 1], clean_up_tokenization_spaces=False) for i in range(len(ids))
    ]


@pytest.mark.parametrize("text", TEXTS)
def test_aligned_positions_pair_tokens_ending_at_the_same_character(text: str) -> None:
    source, target = make_tokenizer(vocab_size=420), make_tokenizer(vocab_size=300)
    s_ids, s_prefix = _prefixes(source, text)
    t_ids, t_prefix = _prefixes(target, text)
    assert s_ids != t_ids  # the two vocabularies really split the text differently

    aligned = aligned_positions(text, source, target)

    def complete(prefixes: list[str], i: int) -> bool:
        # a whole-character prefix of the text, and the last token that gives it
        return (
            i > 0
            and text.startswith(prefixes[i])
            and (i + 1 == len(prefixes) or prefixes[i + 1] != prefixes[i])
        )

    expected = [
        (i, j)
        for i in range(len(s_ids))
        for j in range(len(t_ids))
        if complete(s_prefix, i) and complete(t_prefix, j) and s_prefix[i] == t_prefix[j]
    ]
    assert aligned == expected
    for i, j in aligned:
        assert s_prefix[i] == t_prefix[j]
    assert aligned[-1] == (len(s_ids) - 1, len(t_ids) - 1)
    assert 0 < len(aligned) < min(len(s_ids), len(t_ids))


def test_aligned_positions_needs_fast_tokenizers() -> None:
    slow = SimpleNamespace(is_fast=False, name_or_path="some-slow-tokenizer")
    with pytest.raises(IntrospectError, match="fast tokenizer") as error:
        aligned_positions("Hello there.", make_tokenizer(), slow)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- (b) least squares


def test_solve_affine_recovers_a_known_map() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=generator) * 3 + 5
    weight = torch.randn(16, 24, generator=generator)
    bias = torch.randn(24, generator=generator) * 10
    y = x @ weight + bias

    exact_weight, exact_bias = solve_affine(x, y, ridge=0.0)
    torch.testing.assert_close(exact_weight, weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(exact_bias, bias, atol=1e-3, rtol=1e-4)

    fitted_weight, fitted_bias = solve_affine(x, y)  # the default small ridge
    fresh = torch.randn(200, 16, generator=generator) * 3 + 5
    r2 = r_squared(fresh @ fitted_weight + fitted_bias, fresh @ weight + bias)
    assert r2 > 0.999
    print(f"synthetic exact affine map, ridge 1e-3: held-out R^2 {r2:.7f}")
    torch.testing.assert_close(fitted_weight, weight, atol=5e-3, rtol=5e-3)


def test_r_squared_of_a_constant_prediction_is_zero() -> None:
    actual = torch.randn(100, 4)
    assert abs(r_squared(actual.mean(0).expand(100, 4), actual)) < 1e-9


def test_corresponding_layer() -> None:
    assert corresponding_layer(0, 2, 3) == 0
    assert corresponding_layer(1, 2, 3) == 2
    assert corresponding_layer(5, 12, 24) == 10  # 5 * 23 / 11 = 10.45
    assert corresponding_layer(1, 3, 2) == 1  # 0.5 rounds up
    assert corresponding_layer(0, 1, 30) == 0
    assert [corresponding_layer(i, 30, 30) for i in range(30)] == list(range(30))
    with pytest.raises(IntrospectError):
        corresponding_layer(2, 2, 3)


# ---------------------------------------------------------------- (c) two real models


def test_fit_affine_map_between_models_of_different_width(pair) -> None:
    subject, explainer, subject_backend, explainer_backend = pair
    fitted = fit_affine_map(
        subject_backend,
        explainer_backend,
        subject.tokenizer,
        explainer.tokenizer,
        shared_texts()[::4],
        1,
        2,
    )
    assert tuple(fitted.weight.shape) == (32, 48)
    assert tuple(fitted.bias.shape) == (48,)
    assert (fitted.source_layer, fitted.target_layer) == (1, 2)
    assert fitted.pairs > 50 and fitted.held_out > 0
    assert abs(fitted.held_out - 0.2 * (fitted.pairs + fitted.held_out)) <= 1
    assert torch.isfinite(torch.tensor(fitted.r2))
    assert -1.0 < fitted.r2 <= 1.0
    print(f"tiny llama 32 -> 48: held-out R^2 {fitted.r2:.4f}, {fitted.pairs} pairs")
    assert tuple(fitted.apply(torch.randn(32)).shape) == (48,)
    assert tuple(fitted.apply(torch.randn(5, 32)).shape) == (5, 48)


def test_fit_affine_map_identical_models_is_near_identity(pair) -> None:
    """The same model on both sides: the map is the identity, R^2 1 (a sanity check)."""
    subject, _, subject_backend, _ = pair
    fitted = fit_affine_map(
        subject_backend,
        subject_backend,
        subject.tokenizer,
        subject.tokenizer,
        shared_texts()[:150],
        1,
        1,
    )
    assert fitted.r2 > 0.999
    torch.testing.assert_close(fitted.weight, torch.eye(32), atol=0.02, rtol=0)


def test_fit_affine_map_says_when_texts_do_not_align(pair) -> None:
    subject, explainer, subject_backend, explainer_backend = pair
    with pytest.raises(IntrospectError, match="do not align") as error:
        fit_affine_map(
            subject_backend,
            explainer_backend,
            subject.tokenizer,
            explainer.tokenizer,
            TEXTS[:1],
            0,
            0,
        )
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- (d) cache


def test_map_store_fits_once_then_loads(pair, tmp_path: Path) -> None:
    subject, explainer, subject_backend, explainer_backend = pair
    store = MapStore(tmp_path / "maps")
    texts = shared_texts()[:120]
    first, built = store.get_or_fit(
        subject, explainer, subject_backend, explainer_backend, texts, 0, 1
    )
    assert built
    second, built_again = store.get_or_fit(
        subject, explainer, subject_backend, explainer_backend, texts, 0, 1
    )
    assert not built_again
    torch.testing.assert_close(second.weight, first.weight, atol=0, rtol=0)
    torch.testing.assert_close(second.bias, first.bias, atol=0, rtol=0)
    assert (second.r2, second.pairs, second.held_out) == (first.r2, first.pairs, first.held_out)

    entries = list((tmp_path / "maps").iterdir())
    folders = entry_paths(tmp_path / "maps")
    assert len(folders) == 1
    assert not [entry for entry in entries if entry.name.startswith(".tmp-")]
    assert sorted(p.name for p in folders[0].iterdir()) == [CHECKSUMS, MANIFEST, MAP_FILE]
    manifest = json.loads((folders[0] / MANIFEST).read_text())
    assert manifest["source_fingerprint"] == subject.fingerprint
    assert manifest["target_fingerprint"] == explainer.fingerprint
    assert (manifest["source_layer"], manifest["target_layer"]) == (0, 1)
    assert manifest["pairs"] == first.pairs and manifest["texts"] == 120

    # other texts or layers are other entries
    _, built_other = store.get_or_fit(
        subject, explainer, subject_backend, explainer_backend, texts[:80], 0, 1
    )
    assert built_other


# ---------------------------------------------------------------- (e) the task's mapper


def test_mapper_for_maps_vectors_and_sites(
    tiny_llama: Path,
    wide_llama: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    mapper = mapper_for(
        ModelSpec(str(tiny_llama)),
        ModelSpec(str(wide_llama)),
        get_registry(),
        {"backend": "hf", "gt_batch_size": 32},
    )
    vector = torch.randn(32)
    with caplog.at_level(logging.WARNING, logger="introspect"):
        mapped, site = mapper(vector, None, "blocks.1.hook_resid_post")
    assert tuple(mapped.shape) == (48,)
    assert site == "blocks.2.hook_resid_post"  # 2-layer subject, 3-layer explainer
    lines = [r.getMessage() for r in caplog.records if "cross-model map" in r.getMessage()]
    assert len(lines) == 1 and "subject layer 1 -> explainer layer 2" in lines[0]
    assert "fitted now" in lines[0]
    assert set(mapper.fits) == {(1, 2)}
    assert mapper.fits[(1, 2)]["pairs"] > 50
    print(f"mapper_for 32 -> 48, layer 1 -> 2: {mapper.fits[(1, 2)]}")

    # the same layer again: the memoised map, no second fit or log line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="introspect"):
        again, no_site = mapper(vector, 1, None)
        _, pre_site = mapper(vector, 1, "blocks.1.hook_resid_pre")
    assert no_site is None and pre_site == "blocks.2.hook_resid_pre"
    torch.testing.assert_close(again, mapped)
    assert not [r for r in caplog.records if "cross-model map" in r.getMessage()]
    assert list((tmp_path / "maps").iterdir())

    # a fresh mapper (another process) loads the map from the cache
    other = mapper_for(
        ModelSpec(str(tiny_llama)),
        ModelSpec(str(wide_llama)),
        get_registry(),
        {"backend": "hf", "gt_batch_size": 32},
    )
    with caplog.at_level(logging.WARNING, logger="introspect"):
        cached, _ = other(vector, 1, None)
    torch.testing.assert_close(cached, mapped)
    assert other.fits[(1, 2)]["cached"] is True
    assert any("loaded from the cache" in r.getMessage() for r in caplog.records)

    # as the task uses it: every vector registered while rendering passes through it
    with vectors.VectorTable(mapper).active():
        key = vectors.register_vector(vector, scale=2.0, layer=1)
        torch.testing.assert_close(vectors.vector(key), 2.0 * mapped)

    with pytest.raises(IntrospectError) as error:
        mapper(vector, None, None)
    assert "\n" not in str(error.value)
    with pytest.raises(IntrospectError, match="residual stream"):
        mapper(vector, None, "blocks.0.mlp.hook_post")


def test_an_adapter_explainer_reads_through_its_base_models_map(
    tiny_llama: Path, wide_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training fits the map before the adapter exists, so evaluation must use the same map
    (and every adapter on one base shares one fit instead of re-reading the texts)."""
    from peft import LoraConfig, get_peft_model

    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    adapter = tmp_path / "adapter"
    torch.manual_seed(0)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(LlamaForCausalLM.from_pretrained(wide_llama), lora).save_pretrained(adapter)
    options = {"backend": "hf", "gt_batch_size": 32}
    vector = torch.randn(32)

    base = mapper_for(
        ModelSpec(str(tiny_llama)), ModelSpec(str(wide_llama)), get_registry(), options
    )
    from_base, _ = base(vector, 1, None)
    assert base.fits[(1, 2)]["cached"] is False

    trained = mapper_for(
        ModelSpec(str(tiny_llama)),
        ModelSpec(str(wide_llama), peft=str(adapter)),
        get_registry(),
        options,
    )
    from_trained, _ = trained(vector, 1, None)
    assert trained.fits[(1, 2)]["cached"] is True  # the base's fit, not a new one
    assert trained.explainer_spec.peft is None
    torch.testing.assert_close(from_trained, from_base, atol=0, rtol=0)


def test_every_layer_pair_costs_one_read_per_model(
    tiny_llama: Path, wide_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared texts go through each model once for all its layers; each further layer
    pair is a least-squares solve, and the maps equal those fitted one read at a time."""
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    passes: list[str] = []
    plain = HFBackend.forward

    def counted(self, sequences, **kwargs):
        passes.append(self.loaded.spec.pretrained)
        return plain(self, sequences, **kwargs)

    monkeypatch.setattr(HFBackend, "forward", counted)
    mapper = mapper_for(
        ModelSpec(str(tiny_llama)),
        ModelSpec(str(wide_llama)),
        get_registry(),
        {"backend": "hf", "gt_batch_size": 64},
    )
    maps = {layer: mapper.map_for(layer) for layer in range(mapper.subject_layers)}
    assert sorted(passes) == sorted([str(tiny_llama), str(wide_llama)])  # one read each

    # the same maps as reading the two layers alone (fit_affine_map's own forward)
    monkeypatch.setattr(HFBackend, "forward", plain)
    subject, explainer = mapper._subject, mapper._explainer
    for layer, fitted in maps.items():
        alone = fit_affine_map(
            HFBackend(subject, batch_size=64, progress=False),
            HFBackend(explainer, batch_size=64, progress=False),
            subject.tokenizer,
            explainer.tokenizer,
            shared_texts(),
            layer,
            mapper.explainer_layer(layer),
        )
        torch.testing.assert_close(fitted.weight, alone.weight, atol=1e-4, rtol=1e-3)
        assert fitted.pairs == alone.pairs and abs(fitted.r2 - alone.r2) < 1e-4

    # a fresh mapper for another subject layer reads nothing: the states are artifacts
    passes.clear()
    monkeypatch.setattr(HFBackend, "forward", counted)
    shutil.rmtree(tmp_path / "cache" / "maps")  # forget the maps, keep the states
    other = mapper_for(
        ModelSpec(str(tiny_llama)),
        ModelSpec(str(wide_llama)),
        get_registry(),
        {"backend": "hf", "gt_batch_size": 64},
    )
    other.map_for(0)
    assert passes == []
