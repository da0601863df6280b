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
from decisions import MARGIN, NUMERIC_ERROR, assert_rows_match, margins
from families import (
    FAMILIES,
    every_site,
    loaded_family,
    prompts,
    random_writes,
    site_width,
)

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
