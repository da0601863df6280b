"""The nnsight backend agrees with the hf backend on tiny GPT-2 and Llama models.

The hf backend is the reference implementation of the intervention primitive; a second
backend is correct when, on the same loaded model, every result agrees with it: last
logits of padded batches, reads at every site kind, replace and add writes, greedy
generation with and without writes, and ``score_from`` log-probabilities and greedy
flags. The models are built from configs in the test (no download), with the helpers
of the lm-eval-introspect repository's own test suite. Greedy choices are compared exactly,
and only with every choice made by a margin that the float32 rounding of another backend
cannot overturn (``tests/decisions.py``).

Run from the repository root: ``python -m pytest examples/introspect-nnsight/tests``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("nnsight")

# tests/tiny_models.py of the lm-eval-introspect checkout this example lives in
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))

from decisions import assert_margins, assert_rows_match, record
from introspect_nnsight.backend import NNsightBackend
from tiny_models import make_model, make_tokenizer

from ground_truth.backends.hf import HFBackend
from ground_truth.primitive import Read, Write
from ground_truth.subject import LoadedModel, ModelSpec

TOLERANCE = 1e-4
TEXTS = [
    "What is the capital of France? The answer is",
    "hello",
    "The output would remain unchanged from <<<A>>>.",
    "How many centimeters",
    "Hint: I think the answer is (B).",
]
SITE_KINDS = ("hook_resid_pre", "mlp.hook_post", "hook_resid_post")


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def setup(request: pytest.FixtureRequest) -> tuple[LoadedModel, list[list[int]]]:
    tokenizer = make_tokenizer()
    model = make_model(request.param, tokenizer)
    loaded = LoadedModel(ModelSpec(f"tiny-{request.param}"), model, tokenizer)
    return loaded, [tokenizer(text)["input_ids"] for text in TEXTS]


def backends(loaded: LoadedModel, batch_size: int = 2) -> tuple[HFBackend, NNsightBackend]:
    """Both backends on the same loaded model; batches of 2 so every batch is padded."""
    return (
        HFBackend(loaded, batch_size=batch_size, progress=False),
        NNsightBackend(loaded, batch_size=batch_size, progress=False),
    )


def all_sites(n_layers: int) -> list[str]:
    return ["hook_embed"] + [
        f"blocks.{layer}.{kind}" for layer in range(n_layers) for kind in SITE_KINDS
    ]


def assert_agree(expected: torch.Tensor, actual: torch.Tensor) -> None:
    assert expected.shape == actual.shape
    assert actual.dtype == torch.float32
    difference = (expected - actual).abs().max().item() if expected.numel() else 0.0
    assert difference <= TOLERANCE, f"max difference {difference:.3g} > {TOLERANCE}"


def test_registered_through_the_entry_point(setup) -> None:
    from harness_plugins.registry import get_registry, reset_registry

    reset_registry()
    registry = get_registry()
    record = next((p for p in registry.plugins if p.name == "nnsight"), None)
    assert record is not None, "pip install -e examples/introspect-nnsight"
    assert record.source.startswith("introspect-nnsight 0.1.0")
    assert record.registered == {"backends": ["nnsight"]}
    loaded, _ = setup
    backend = registry.backend("nnsight")(loaded, batch_size=3, progress=False)
    assert isinstance(backend, NNsightBackend)
    assert backend.name == "nnsight"
    assert backend.batch_size == 3


def test_shape_and_mlp_weights_match(setup) -> None:
    loaded, _ = setup
    hf, nn = backends(loaded)
    assert (nn.n_layers, nn.d_model) == (hf.n_layers, hf.d_model)
    for layer in range(hf.n_layers):
        torch.testing.assert_close(nn.mlp_output_weights(layer), hf.mlp_output_weights(layer))


def test_last_logits_of_padded_batches(setup) -> None:
    loaded, sequences = setup
    hf, nn = backends(loaded)
    result = nn.forward(sequences)
    assert_agree(hf.forward(sequences).last_logits, result.last_logits)
    # and each padded row equals the sequence run on its own, without padding
    for i, sequence in enumerate(sequences):
        with torch.inference_mode():
            alone = loaded.model(torch.tensor([sequence])).logits[0, -1].float()
        assert_agree(alone, result.last_logits[i])


def test_reads_at_every_site(setup) -> None:
    loaded, sequences = setup
    hf, nn = backends(loaded)
    reads = [
        Read(site, row, position)
        for site in all_sites(hf.n_layers)
        for row in range(len(sequences))
        for position in (0, 1, -1, None)
        if position is None or abs(position) < len(sequences[row])
    ]
    expected, actual = hf.forward(sequences, reads=reads), nn.forward(sequences, reads=reads)
    assert len(actual.reads) == len(reads)
    for read, a, b in zip(reads, expected.reads, actual.reads, strict=True):
        assert_agree(a, b)
        if read.position is None:  # the whole unpadded sequence
            assert b.shape[0] == len(sequences[read.row])


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_writes_at_every_site(setup, mode: str) -> None:
    loaded, sequences = setup
    hf, nn = backends(loaded)
    generator = torch.Generator().manual_seed(1)
    sites = all_sites(hf.n_layers)
    plain = nn.forward(sequences).last_logits
    for site in sites:
        width = hf.mlp_output_weights(0).shape[0] if "mlp" in site else hf.d_model
        writes = [
            Write(site, row, position, torch.randn(width, generator=generator), mode)
            for row in range(len(sequences))
            for position in (0, -1)
        ]
        # read back downstream of the write, at every site, to see it propagate
        reads = [Read(other, row, None) for other in sites for row in range(len(sequences))]
        expected = hf.forward(sequences, reads=reads, writes=writes)
        actual = nn.forward(sequences, reads=reads, writes=writes)
        assert_agree(expected.last_logits, actual.last_logits)
        for a, b in zip(expected.reads, actual.reads, strict=True):
            assert_agree(a, b)
        assert (actual.last_logits - plain).abs().max() > 1e-3, f"write at {site} had no effect"


def test_generate_tokens_identical(setup) -> None:
    loaded, sequences = setup
    hf, nn = backends(loaded)
    generator = torch.Generator().manual_seed(2)
    writes = [
        Write(
            "blocks.0.hook_resid_post", row, -1, 10 * torch.randn(hf.d_model, generator=generator)
        )
        for row in range(len(sequences))
    ] + [
        Write("hook_embed", row, 0, torch.randn(hf.d_model, generator=generator), "add")
        for row in range(len(sequences))
    ]
    with record(hf) as reference:
        expected = hf.generate(sequences, max_new_tokens=8)
        # a stop token the continuations contain: kept, and nothing after it
        stop = expected[0][3]
        expected_stopped = hf.generate(sequences, max_new_tokens=8, stop_token_ids=[stop])
        expected_steered = hf.generate(sequences, max_new_tokens=8, writes=writes)
    assert_margins(reference.generated, "hf generation")
    with record(nn) as rows:
        plain = nn.generate(sequences, max_new_tokens=8)
        stopped = nn.generate(sequences, max_new_tokens=8, stop_token_ids=[stop])
        steered = nn.generate(sequences, max_new_tokens=8, writes=writes)
    assert plain == expected
    assert all(len(tokens) == 8 for tokens in plain)
    assert stopped == expected_stopped
    assert stopped[0][-1] == stop and len(stopped[0]) <= 4
    assert steered == expected_steered
    assert steered != plain
    assert_rows_match(rows.rows, reference.rows, "nnsight generation")


def test_writes_apply_to_the_prompt_pass_only(setup) -> None:
    """A write at the prompt's last position steers the first new token only through it:
    the continuation equals a plain generation from the steered first token onwards."""
    loaded, sequences = setup
    _, nn = backends(loaded)
    vector = 10 * torch.randn(nn.d_model, generator=torch.Generator().manual_seed(3))
    writes = [Write("blocks.0.hook_resid_post", 0, -1, vector)]
    with record(nn) as generated:
        steered = nn.generate(sequences[:1], max_new_tokens=6, writes=writes)[0]
    # the KV cache of the prompt carries the write; no later step is written again, so a
    # forward over prompt + steered tokens with the same write predicts the same tokens
    full = list(sequences[0]) + steered[:-1]
    with record(nn) as scored_rows:
        scored = nn.forward(
            [full],
            writes=[Write("blocks.0.hook_resid_post", 0, len(sequences[0]) - 1, vector)],
            score_from=[len(sequences[0])],
        )
    assert_margins(generated.generated, "the steered generation")
    assert scored.greedy == [True]
    assert_rows_match(generated.rows, scored_rows.rows, "a forward over the generation")


def test_score_from_and_greedy_flags(setup) -> None:
    loaded, sequences = setup
    hf, nn = backends(loaded)
    # prompt + its own greedy continuation is greedy from the prompt's end; the prompts
    # themselves mostly are not, so both flag values are checked
    with record(hf) as generated:
        continuations = hf.generate(sequences, max_new_tokens=3)
    assert_margins(generated.generated, "hf generation")
    continued = [list(s) + tokens for s, tokens in zip(sequences, continuations, strict=True)]
    rows = sequences + continued
    starts = [1, 1, 2, len(sequences[3]), 3] + [len(s) for s in sequences]
    with record(hf) as reference:
        expected = hf.forward(rows, score_from=starts)
    with record(nn) as scored:
        actual = nn.forward(rows, score_from=starts)
    assert_margins(reference.rows, "hf greedy flags")  # every position, the scored ones too
    assert actual.greedy == expected.greedy
    assert actual.greedy[len(sequences) :] == [True] * len(sequences)
    assert False in actual.greedy
    assert_rows_match(scored.rows, reference.rows, "nnsight scoring")
    assert_rows_match(generated.rows, scored.rows, "nnsight scoring of hf's generation")
    assert_agree(expected.last_logits, actual.last_logits)
    for a, b, row, start in zip(
        expected.token_logprobs, actual.token_logprobs, rows, starts, strict=True
    ):
        assert b.shape == (len(row) - start,)
        assert_agree(a, b)


def test_bad_requests_fail_before_running(setup) -> None:
    loaded, sequences = setup
    _, nn = backends(loaded)
    with pytest.raises(ValueError, match="outside sequence"):
        nn.forward(sequences, reads=[Read("hook_embed", 1, 50)])
    with pytest.raises(ValueError, match="unknown site"):
        nn.forward(sequences, writes=[Write("blocks.0.attn", 0, 0, torch.zeros(nn.d_model))])
    with pytest.raises(ValueError, match="out of range"):
        nn.forward(sequences, reads=[Read(f"blocks.{nn.n_layers}.hook_resid_post", 0)])
    with pytest.raises(ValueError, match="score_from"):
        nn.forward(sequences, score_from=[0] * len(sequences))
    # and the backend still works afterwards
    assert nn.forward(sequences[:1]).last_logits.shape[0] == 1
