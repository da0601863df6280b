"""Prefix reuse (`ground_truth.prefix_reuse`) computes what the plain passes compute.

Every result of the reusing path (``share_prefixes``, the hf default) is compared with
``share_prefixes=False``: logits within `decisions.NUMERIC_ERROR`-sized differences, and
greedy choices only where the plain run made them by more than `decisions.MARGIN`.
"""

from __future__ import annotations

import random

import pytest
import torch
from decisions import MARGIN, NUMERIC_ERROR, margins
from tiny_models import loaded_tiny

from ground_truth.backends.hf import HFBackend
from ground_truth.prefix_reuse import MIN_SHARED_PREFIX, common_length, group_prefixes
from ground_truth.primitive import InterventionBackend, Read, Write

TOLERANCE = NUMERIC_ERROR  # measured here: up to 9e-8

HEAD = "Question: what is the capital of France, and which river runs through it? Choices:"
TAILS = [
    " (A) Paris (B) Rome. Hint: a professor thinks (B). Answer: (",
    " (A) Paris (B) Rome. Answer: (",
    " (A) Lyon (B) Paris. Hint: a professor thinks (A). Answer: (",
    " (A) Lyon (B) Paris. Answer: (",
    " hello",
    " The output would remain unchanged from <<<A>>>.",
]


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def setup(request):
    loaded = loaded_tiny(request.param)
    tokenizer = loaded.tokenizer
    sequences = [tokenizer(HEAD + tail)["input_ids"] for tail in TAILS]
    sequences.append(tokenizer("How many centimeters are in a meter?")["input_ids"])
    return loaded, sequences


def backends(loaded, batch_size=4):
    return (
        HFBackend(loaded, batch_size=batch_size, progress=False),
        HFBackend(loaded, batch_size=batch_size, progress=False, share_prefixes=False),
    )


def assert_same(reused: torch.Tensor, plain: torch.Tensor, what: str) -> None:
    """Logits within `TOLERANCE`; argmaxes equal wherever the plain margin is safe."""
    torch.testing.assert_close(reused, plain, atol=TOLERANCE, rtol=0, msg=what)
    safe = margins(plain) > MARGIN
    assert safe.any(), f"{what}: no choice made by a safe margin"
    assert torch.equal(reused.argmax(-1)[safe], plain.argmax(-1)[safe]), what


def random_writes(backend, sequences, seed):
    """Writes at random sites and positions (position 0 and negative ones included),
    replacing or adding, some onward; rows 0 and 3 get none."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    kinds = ["hook_embed", "blocks.{}.hook_resid_pre", "blocks.{}.hook_resid_post"]
    kinds.append("blocks.{}.mlp.hook_post")
    writes = []
    for row, sequence in enumerate(sequences):
        if row in (0, 3):
            continue
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(kinds).format(rng.randrange(backend.n_layers))
            width = (
                backend.mlp_output_weights(0).shape[0]
                if kind.endswith("mlp.hook_post")
                else backend.d_model
            )
            position = rng.choice([0, rng.randrange(len(sequence)), -1, -rng.randint(1, 4)])
            vector = torch.randn(width, generator=generator)
            mode = rng.choice(["replace", "add"])
            onward = rng.random() < 0.3
            writes.append(Write(kind, row, position, vector, mode, onward))
    return writes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_and_patched_equal_two_plain_forwards(setup, seed):
    loaded, sequences = setup
    reused, plain = backends(loaded, batch_size=3)
    writes = random_writes(plain, sequences, seed)
    clean, patched = reused.forward_clean_and_patched(sequences, writes=writes)
    plain_clean, plain_patched = plain.forward_clean_and_patched(sequences, writes=writes)
    assert_same(clean.last_logits, plain_clean.last_logits, "clean logits")
    assert_same(patched.last_logits, plain_patched.last_logits, "patched logits")
    # the plain path is two forward passes, as the primitive's default
    default_clean, default_patched = InterventionBackend.forward_clean_and_patched(
        plain, sequences, writes=writes
    )
    torch.testing.assert_close(default_clean.last_logits, plain_clean.last_logits)
    torch.testing.assert_close(default_patched.last_logits, plain_patched.last_logits)
    assert not torch.allclose(patched.last_logits, clean.last_logits)


def test_grouped_prefixes_with_reads_writes_and_scores_equal_plain_passes(setup):
    loaded, sequences = setup
    reused, plain = backends(loaded, batch_size=7)
    vector = torch.linspace(-1, 1, plain.d_model)
    kwargs = {
        "reads": [Read("blocks.1.hook_resid_post", 2, -1), Read("hook_embed", 5, None)],
        "writes": [Write("blocks.0.hook_resid_post", 1, -2, vector)],
        "score_from": [len(s) - 3 for s in sequences],
    }
    a, b = reused.forward(sequences, **kwargs), plain.forward(sequences, **kwargs)
    assert_same(a.last_logits, b.last_logits, "grouped prefixes")
    for x, y in zip(a.reads, b.reads, strict=True):
        torch.testing.assert_close(x, y, atol=TOLERANCE, rtol=0)
    for x, y in zip(a.token_logprobs, b.token_logprobs, strict=True):
        torch.testing.assert_close(x, y, atol=TOLERANCE, rtol=0)
    # the batch (token order) runs the six rows' common head once
    batch = reused.batches(sequences)[0]
    groups = reused.prefix_groups(batch, sequences, (), (), None)
    head = len(loaded.tokenizer(HEAD)["input_ids"]) - 1  # its last token merges onward
    assert [(stop - first, n >= head) for first, stop, n in groups if n] == [(6, True)], groups


def test_group_prefixes_prefers_long_pairs_to_a_short_common_head():
    head = list(range(20))
    rows = [head + [100 + q] * 30 + [200 + h] * 5 for q in range(3) for h in range(2)]
    limits = [len(row) - 1 for row in rows]
    assert group_prefixes(rows, limits) == [(0, 2, 50), (2, 4, 50), (4, 6, 50)]
    # with the pairs' own tokens off limits, the whole batch shares the head
    assert group_prefixes(rows, [20] * 6) == [(0, 6, 20)]
    assert group_prefixes(rows, [10] * 6) == [(i, i + 1, 0) for i in range(6)]


def test_read_runs_each_sequence_up_to_its_last_read(setup):
    loaded, sequences = setup
    reused, plain = backends(loaded)
    reads = [Read("blocks.0.hook_resid_post", 1, 5), Read("blocks.1.hook_resid_pre", 4, -1)]
    reads.append(Read("hook_embed", 6, None))
    reads.append(Read("blocks.1.hook_resid_post", 1, 2))
    seen = []
    run = plain.run

    def counted(ids, mask, plan, **kwargs):
        seen.append(int(mask.sum()))
        return run(ids, mask, plan, **kwargs)

    plain.run = counted
    values = plain.read(sequences, reads)
    assert sum(seen) == 6 + len(sequences[4]) + len(sequences[6])
    full = plain.forward(sequences, reads=reads).reads
    for x, y in zip(values, full, strict=True):
        torch.testing.assert_close(x, y, atol=TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="position 500"):
        reused.read(sequences, [Read("hook_embed", 4, 500)])


# ---------------------------------------------------------------------- references


@pytest.fixture
def plain_or_reused(monkeypatch, tmp_path):
    """``build(model, name, share)``: references of ``name`` on a fresh cache, through hf
    backends with or without prefix reuse; also every clean/patched and forward result."""
    from harness_plugins.references import ReferencePipeline

    init = HFBackend.__init__
    results: list[tuple[str, torch.Tensor]] = []

    def build(model, name, share, **metadata):
        def backend_init(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.share_prefixes = share

        monkeypatch.setattr(HFBackend, "__init__", backend_init)
        monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / f"cache-{share}"))
        results.clear()
        pipeline = ReferencePipeline(
            name, {"pretrained": str(model), **metadata}, model_arguments=[]
        )
        return pipeline.ensure(8), list(results)

    forward, both = HFBackend.forward, HFBackend.forward_clean_and_patched

    def recorded_forward(self, *args, **kwargs):
        result = forward(self, *args, **kwargs)
        results.append(("forward", result.last_logits))
        return result

    def recorded_both(self, *args, **kwargs):
        clean, patched = both(self, *args, **kwargs)
        results.extend([("clean", clean.last_logits), ("patched", patched.last_logits)])
        return clean, patched

    monkeypatch.setattr(HFBackend, "forward", recorded_forward)
    monkeypatch.setattr(HFBackend, "forward_clean_and_patched", recorded_both)
    return build


def test_activation_patching_references_equal_the_plain_path(tiny_llama, plain_or_reused):
    reused, reused_logits = plain_or_reused(tiny_llama, "activation_patching", True)
    plain, plain_logits = plain_or_reused(tiny_llama, "activation_patching", False)
    assert len(plain) == len(reused) > 2
    by_name = {name: logits for name, logits in plain_logits if name != "forward"}
    for name, logits in reused_logits:
        if name != "forward":  # the donors' runs: only their reads are used
            assert_same(logits, by_name[name], f"activation_patching {name} logits")
    safe = (margins(by_name["clean"]) > MARGIN) & (margins(by_name["patched"]) > MARGIN)
    for row in safe.nonzero()[:, 0].tolist():
        for column in ("token", "layers", "before", "after", "changed", "target"):
            assert reused[row][column] == plain[row][column], (row, column)
    for a, b in zip(reused["vector"], plain["vector"], strict=True):
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), atol=TOLERANCE, rtol=0)


def test_input_ablation_references_equal_the_plain_path(tiny_llama, plain_or_reused):
    reused, _ = plain_or_reused(tiny_llama, "input_ablation", True)
    plain, _ = plain_or_reused(tiny_llama, "input_ablation", False)
    assert len(plain) == len(reused) > 2
    for kind in ("hinted", "unhinted"):
        a = torch.tensor(reused[f"{kind}_letter_logits"])
        b = torch.tensor(plain[f"{kind}_letter_logits"])
        torch.testing.assert_close(a, b, atol=TOLERANCE, rtol=0)
    for row in range(len(plain)):
        n = len(plain[row]["choices"])
        hinted = torch.tensor(plain[row]["hinted_letter_logits"][:n])
        unhinted = torch.tensor(plain[row]["unhinted_letter_logits"][:n])
        if margins(hinted) > MARGIN and margins(unhinted) > MARGIN:
            for column in ("subject_answer_hinted", "subject_answer_unhinted", "changed", "target"):
                assert reused[row][column] == plain[row][column], (row, column)


def test_a_batch_runs_the_head_all_prefixes_share_once(setup, monkeypatch):
    """The clean run's prefix pass (tokens before each row's first write) computes the
    head every row starts with once, then each row's own rest of its prefix."""
    loaded, sequences = setup
    rows = sequences[:4]  # HEAD + four different tails
    reused, plain = backends(loaded, batch_size=4)
    vector = torch.linspace(-1, 1, plain.d_model)
    writes = [Write("blocks.0.hook_resid_post", row, -2, vector) for row in range(len(rows))]
    passes = []
    original = HFBackend.run

    def counted(self, ids, mask, plan, **kwargs):
        passes.append(tuple(ids.shape))
        return original(self, ids, mask, plan, **kwargs)

    monkeypatch.setattr(HFBackend, "run", counted)
    clean, patched = reused.forward_clean_and_patched(rows, writes=writes)
    head = min(common_length(rows[0], other) for other in rows[1:])
    rests = [len(row) - 2 - head for row in rows]
    assert head >= MIN_SHARED_PREFIX
    # head once, the rests left-padded, then the clean and patched suffixes (2 tokens each)
    assert passes == [(1, head), (4, max(rests)), (4, 2), (4, 2)]
    monkeypatch.setattr(HFBackend, "run", original)
    plain_clean, plain_patched = plain.forward_clean_and_patched(rows, writes=writes)
    assert_same(clean.last_logits, plain_clean.last_logits, "clean logits")
    assert_same(patched.last_logits, plain_patched.last_logits, "patched logits")
