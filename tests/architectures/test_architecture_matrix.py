"""The architecture matrix: every family of `families` through the hf backend, its prefix
reuse, identity patches and vector slots; the other backends agree or refuse in one line.

Logits are compared within `decisions.NUMERIC_ERROR` and greedy choices only where made
by more than `decisions.MARGIN`. What each backend does per family is `support.SUPPORT`,
which these tests check and ``docs/architectures.md`` shows (`test_support_table`).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from decisions import MARGIN, NUMERIC_ERROR, assert_margins, assert_rows_match, margins, record
from families import (
    FAMILIES,
    every_site,
    loaded_family,
    prompts,
    random_writes,
    site_width,
)
from support import DOC, SUPPORT, render

from ground_truth.backends.hf import HFBackend
from ground_truth.errors import IntrospectError
from ground_truth.primitive import Read, Write


@pytest.fixture(params=sorted(FAMILIES), scope="module")
def family(request):
    loaded = loaded_family(request.param)
    return request.param, loaded, prompts(loaded.tokenizer)


def both(loaded, batch_size=3):
    """hf with prefix reuse (its default) and without."""
    return (
        HFBackend(loaded, batch_size=batch_size, progress=False),
        HFBackend(loaded, batch_size=batch_size, progress=False, share_prefixes=False),
    )


def assert_same(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Logits within the numeric error; argmaxes equal wherever the expected margin is safe."""
    torch.testing.assert_close(got, expected, atol=NUMERIC_ERROR, rtol=0, msg=what)
    safe = margins(expected) > MARGIN
    assert safe.any(), f"{what}: no choice made by a safe margin"
    assert torch.equal(got.argmax(-1)[safe], expected.argmax(-1)[safe]), what


def test_prefix_reuse_equals_the_plain_path(family):
    name, loaded, sequences = family
    reused, plain = both(loaded)
    for seed in (0, 1):
        writes = random_writes(plain, sequences, seed)
        clean, patched = reused.forward_clean_and_patched(sequences, writes=writes)
        plain_clean, plain_patched = plain.forward_clean_and_patched(sequences, writes=writes)
        assert_same(clean.last_logits, plain_clean.last_logits, f"{name} clean")
        assert_same(patched.last_logits, plain_patched.last_logits, f"{name} patched")
        assert not torch.allclose(patched.last_logits, clean.last_logits)
    reads = [Read(site, 2, -1) for site in every_site(plain.n_layers)]
    reads.append(Read("hook_embed", 4, None))
    kwargs = {
        "reads": reads,
        "writes": [Write("blocks.0.hook_resid_post", 1, -2, torch.linspace(-1, 1, plain.d_model))],
        "score_from": [len(s) - 3 for s in sequences],
    }
    a, b = reused.forward(sequences, **kwargs), plain.forward(sequences, **kwargs)
    assert_same(a.last_logits, b.last_logits, f"{name} grouped prefixes")
    for x, y in zip(a.reads + a.token_logprobs, b.reads + b.token_logprobs, strict=True):
        torch.testing.assert_close(x, y, atol=NUMERIC_ERROR, rtol=0)


WINDOWED = ["gemma2", "gemma3", "mistral", "qwen2"]


@pytest.mark.parametrize("name", WINDOWED)
def test_sliding_windows_shorter_and_longer_than_the_prompts(name, monkeypatch):
    """Shorter: the window hides early tokens (logits differ from a long window's) and a
    batch runs whole; longer: prefix passes run on the sliding-window cache, cropped."""
    short = loaded_family(name)
    long = loaded_family(name, window=256)
    sequences = prompts(short.tokenizer)
    passes = []
    original = HFBackend.run

    def counted(self, ids, mask, plan, *, past=None, **kwargs):
        passes.append(past is None and kwargs.get("use_cache", False))
        return original(self, ids, mask, plan, past=past, **kwargs)

    monkeypatch.setattr(HFBackend, "run", counted)
    results = {}
    for label, loaded in (("short", short), ("long", long)):
        reused, plain = both(loaded)
        writes = random_writes(plain, sequences, 0)
        passes.clear()
        got = reused.forward_clean_and_patched(sequences, writes=writes)
        results[label] = got, any(passes)
        expected = plain.forward_clean_and_patched(sequences, writes=writes)
        for x, y, what in zip(got, expected, ("clean", "patched"), strict=True):
            assert_same(x.last_logits, y.last_logits, f"{name} {label} window {what}")
    assert not results["short"][1] and results["long"][1]  # prefix passes: long window only
    assert not torch.allclose(results["short"][0][0].last_logits, results["long"][0][0].last_logits)


def test_an_identity_patch_changes_nothing(family):
    """Every site written with its own clean value, through both paths: the logits stay."""
    name, loaded, sequences = family
    reused, plain = both(loaded)
    sites = every_site(plain.n_layers)
    positions = (-1, 3)
    reads = [
        Read(site, row, position)
        for site in sites
        for row in range(len(sequences))
        for position in positions
    ]
    clean = plain.forward(sequences, reads=reads)
    writes = [
        Write(r.site, r.row, r.position, value) for r, value in zip(reads, clean.reads, strict=True)
    ]
    for backend in (plain, reused):
        patched = backend.forward(sequences, writes=writes)
        assert_same(
            patched.last_logits, clean.last_logits, f"{name} identity ({backend.share_prefixes})"
        )
        _, same = backend.forward_clean_and_patched(sequences, writes=writes)
        assert_same(same.last_logits, clean.last_logits, f"{name} identity clean/patched")


def test_a_vector_slot_is_what_the_first_block_reads(family, tmp_path_factory):
    """The explainer side (``--model introspect``): a slot holding what ``hook_embed`` reads
    for a token (the scaled embedding, where the family scales it) equals that token in the
    text, and a write there moves the first block's input by exactly the change written."""
    from tiny_models import make_tokenizer

    from harness_plugins.lm_eval_adapter.model import IntrospectLM
    from harness_plugins.prompts import vectors

    name, loaded, _ = family
    folder = tmp_path_factory.mktemp("families") / name
    loaded.model.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    lm = IntrospectLM(pretrained=str(folder), device="cpu", batch_size=2)
    backend = lm._vector_backend()
    word = lm.tokenizer.encode(" answer", add_special_tokens=False)[0]
    prefix = lm.tok_encode("What is the")
    inputs: list[torch.Tensor] = []
    hook = backend.layers[0].register_forward_pre_hook(
        lambda module, args, kwargs: inputs.append((args or [kwargs["hidden_states"]])[0][0]),
        with_kwargs=True,
    )
    try:
        clean = backend.forward([[*prefix, word]], reads=[Read("hook_embed", 0, -1)])
        embedded = clean.reads[0]
        vector = torch.randn(backend.d_model, generator=torch.Generator().manual_seed(0))
        backend.forward([[*prefix, word]], writes=[Write("hook_embed", 0, -1, vector)])
    finally:
        hook.remove()
    moved = inputs[1][-1] - inputs[0][-1]
    torch.testing.assert_close(moved, vector - embedded, atol=1e-5, rtol=1e-5)
    table = vectors.VectorTable()
    with table.active():
        marked = "What is the" + vectors.slot(embedded).replace(vectors.BEGIN, "").replace(
            vectors.END, ""
        )
        ids, writes = lm._encode_marked(marked, 0)
        assert ids[: len(prefix)] == prefix and writes[0].position == len(prefix)
        got = backend.forward([ids], writes=writes).last_logits
    table.clear()
    assert_same(got, clean.last_logits, f"{name} slot")


BACKENDS = ["transformer_lens"] + (
    ["nnsight"] if importlib.util.find_spec("introspect_nnsight") else []
)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_other_backends_agree_with_hf_or_refuse_in_one_line(family, backend_name):
    """Reads at every site, patched logits and greedy tokens as hf's; or one clear line."""
    from harness_plugins.registry import get_registry

    name, loaded, sequences = family
    hf = HFBackend(loaded, batch_size=3, progress=False, share_prefixes=False)
    try:
        other = get_registry().backend(backend_name)(loaded, batch_size=2, progress=False)
    except IntrospectError as error:
        assert "\n" not in str(error) and "use backend=hf" in str(error)
        assert SUPPORT[name][backend_name] == "refused", (name, backend_name, str(error))
        return
    assert SUPPORT[name][backend_name] == "supported", (name, backend_name)
    reads = [
        Read(site, row, position)
        for site in every_site(hf.n_layers)
        for row in (0, 3)
        for position in (2, -1, None)
    ]
    writes = random_writes(hf, sequences, 0)
    expected = hf.forward(sequences, reads=reads, writes=writes)
    got = other.forward(sequences, reads=reads, writes=writes)
    assert_rows_match(got.last_logits, expected.last_logits, f"{name} {backend_name}")
    for read, x, y in zip(reads, got.reads, expected.reads, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5, msg=f"{name} {read}")
    assert site_width(other, "blocks.0.mlp.hook_post") == site_width(hf, "blocks.0.mlp.hook_post")
    with record(hf) as rows:
        tokens = hf.generate(sequences[:2], max_new_tokens=3, writes=writes[:2])
    assert_margins(rows.generated, f"{name} greedy (hf)")
    assert other.generate(sequences[:2], max_new_tokens=3, writes=writes[:2]) == tokens


def test_a_transformer_lens_adapter_that_misreads_a_config_is_refused():
    """A config TransformerLens's adapter reads otherwise than transformers does (GPT-NeoX
    with a stray ``num_key_value_heads``): one line, not a traceback or wrong numbers."""
    from ground_truth.backends.transformer_lens import TransformerLensBackend

    loaded = loaded_family("gpt_neox")
    loaded.model.config.num_key_value_heads = 2
    with pytest.raises(IntrospectError, match=r"transformer_lens backend .*GPTNeoX") as error:
        TransformerLensBackend(loaded, progress=False)
    assert "\n" not in str(error.value)


def test_support_table():
    """docs/architectures.md is what ``python tests/architectures/support.py`` writes."""
    assert DOC.read_text(encoding="utf-8") == render(), "run: python tests/architectures/support.py"
