"""The transformer_lens backend gives what the hf backend gives, on the same GPT-2 and Llama.

Greedy choices (generated tokens, greedy flags) are compared exactly, and only with every
choice made by a margin the float32 rounding of another backend cannot overturn (`decisions`).
"""

from __future__ import annotations

import pytest
import torch
from decisions import assert_margins, assert_rows_match, record
from tiny_models import loaded_tiny, make_model, make_tokenizer

from ground_truth.backends.hf import HFBackend
from ground_truth.backends.transformer_lens import TransformerLensBackend
from ground_truth.primitive import Read, Write
from ground_truth.subject import LoadedModel, ModelSpec

TEXTS = [
    "What is the capital of France? The answer is",
    "hello",
    "The output would remain unchanged from <<<A>>>.",
    "How many centimeters",
    "Hint: I think the answer is (B).",
]
ATOL = 1e-4
SITE_KINDS = ["hook_embed", "hook_resid_pre", "hook_resid_post", "mlp.hook_post"]


def sites(kind: str, n_layers: int) -> list[str]:
    return (
        ["hook_embed"]
        if kind == "hook_embed"
        else [f"blocks.{layer}.{kind}" for layer in range(n_layers)]
    )


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def setup(request):
    loaded = loaded_tiny(request.param)
    tokenizer = loaded.tokenizer
    sequences = [tokenizer(text)["input_ids"] for text in TEXTS]
    tl = TransformerLensBackend(loaded, batch_size=4, progress=False)
    hf = HFBackend(loaded, batch_size=4, progress=False)
    return loaded, sequences, tl, hf


def width(backend, site: str) -> int:
    """d_mlp for the MLP hidden activations, d_model elsewhere."""
    return backend.mlp_output_weights(0).shape[0] if "mlp" in site else backend.d_model


def test_batched_padded_last_logits_match_hf(setup):
    loaded, sequences, tl, hf = setup
    expected = hf.forward(sequences).last_logits
    for batch_size in (1, 2, 8):  # different padding in every batch
        got = TransformerLensBackend(loaded, batch_size=batch_size, progress=False).forward(
            sequences
        )
        assert got.last_logits.dtype == torch.float32
        close(got.last_logits, expected)
    with torch.inference_mode():
        alone = loaded.model(torch.tensor([sequences[1]])).logits[0, -1].float()
    close(tl.forward(sequences).last_logits[1], alone)


@pytest.mark.parametrize("kind", SITE_KINDS)
def test_reads_match_hf_at_every_site(setup, kind):
    _, sequences, tl, hf = setup
    reads = [
        Read(site, row, position)
        for site in sites(kind, tl.n_layers)
        for row in range(len(sequences))
        for position in (0, 1, -1, -2, None)
        if position is None or -len(sequences[row]) <= position < len(sequences[row])
    ]
    got, expected = tl.forward(sequences, reads=reads), hf.forward(sequences, reads=reads)
    assert len(got.reads) == len(reads)
    for read, value, reference in zip(reads, got.reads, expected.reads, strict=True):
        assert value.shape == reference.shape, read
        if read.position is None:
            assert value.shape == (len(sequences[read.row]), width(tl, read.site))
        close(value, reference)


@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize("kind", SITE_KINDS)
def test_writes_give_hf_logits(setup, kind, mode):
    _, sequences, tl, hf = setup
    site = sites(kind, tl.n_layers)[0]  # early, so that attention carries it to the last token
    vector = torch.linspace(-3, 3, width(tl, site))
    writes = [Write(site, 1, 0, vector, mode), Write(site, 2, -2, -vector, mode)]
    reads = [Read(site, 2, None)]  # reads see the written values, as in hf
    got, expected = (
        tl.forward(sequences, writes=writes, reads=reads),
        hf.forward(sequences, writes=writes, reads=reads),
    )
    close(got.last_logits, expected.last_logits)
    close(got.reads[0], expected.reads[0])
    plain = tl.forward(sequences).last_logits
    changed = (got.last_logits - plain).abs().amax(-1) > 1e-3
    assert changed.tolist() == [False, True, True, False, False]


def test_a_cached_step_attends_to_the_prompt(setup):
    """The prompt pass fills the KV cache, and a step over it sees the whole padded prompt."""
    _, sequences, tl, hf = setup
    ids, mask, _ = tl.pad(sequences)
    _, past = tl.run(ids, mask, None, use_cache=True)
    assert past.get_seq_length() == ids.shape[1]
    token = sequences[0][1]
    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    step, _ = tl.run(torch.full((len(sequences), 1), token), mask, None, past=past, use_cache=True)
    close(step[:, -1].float(), hf.forward([[*s, token] for s in sequences]).last_logits)


def test_generate_gives_hf_tokens(setup):
    loaded, sequences, tl, hf = setup
    with record(hf) as reference:
        expected = hf.generate(sequences, max_new_tokens=6)
    assert_margins(reference.generated, "hf generation")
    single = TransformerLensBackend(loaded, batch_size=1, progress=False)
    stop = expected[0][2]
    with record(tl) as batched, record(single) as alone:
        assert tl.generate(sequences, max_new_tokens=6) == expected
        assert single.generate(sequences, max_new_tokens=6) == expected
        stopped = tl.generate(sequences[:1], max_new_tokens=6, stop_token_ids=[stop])[0]
    assert stopped == expected[0][: expected[0].index(stop) + 1]
    assert_rows_match(torch.cat([batched.rows, alone.rows]), reference.rows, "tl generation")


def test_generate_with_writes_gives_hf_tokens(setup):
    _, sequences, tl, hf = setup
    writes = [
        Write("blocks.0.hook_resid_post", 3, 1, torch.linspace(-3, 3, tl.d_model)),
        Write("hook_embed", 0, -1, torch.linspace(2, -2, tl.d_model), "add"),
    ]
    with record(hf) as reference:
        expected = hf.generate(sequences, max_new_tokens=6, writes=writes)
    assert_margins(reference.generated, "hf generation")
    with record(tl) as rows:
        got = tl.generate(sequences, max_new_tokens=6, writes=writes)
    assert got == expected
    assert_rows_match(rows.rows, reference.rows, "tl generation")
    assert got != tl.generate(sequences, max_new_tokens=6)  # the writes took effect


def test_score_from_matches_hf(setup):
    _, sequences, tl, hf = setup
    score_from = [4, 1, 2, 3, len(sequences[4])]
    with record(tl) as rows:
        got = tl.forward(sequences, score_from=score_from)
    with record(hf) as reference:
        expected = hf.forward(sequences, score_from=score_from)
    for value, reference_value in zip(got.token_logprobs, expected.token_logprobs, strict=True):
        assert value.shape == reference_value.shape
        close(value, reference_value)
    assert_margins(reference.rows, "hf greedy flags")  # every position, the scored ones too
    assert got.greedy == expected.greedy
    assert_rows_match(rows.rows, reference.rows, "tl scoring")
    close(got.last_logits, expected.last_logits)


def test_mlp_output_weights_equal_hf(setup):
    _, _, tl, hf = setup
    for layer in range(tl.n_layers):
        assert torch.equal(tl.mlp_output_weights(layer), hf.mlp_output_weights(layer))
    assert (tl.n_layers, tl.d_model) == (hf.n_layers, hf.d_model)


def test_the_subject_model_is_shared_not_rewired(setup):
    """Same weight tensors; the HF module tree the other backends hook is left as it was."""
    loaded, _, tl, _ = setup
    model = loaded.model
    bridged = tl.bridge.original_model
    assert bridged is not model
    # fused QKV (GPT-2) is split into new Parameters, but they are views of the same storage
    storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert all(p.untyped_storage().data_ptr() in storages for p in tl.bridge.parameters())
    assert all(p.untyped_storage().data_ptr() in storages for p in bridged.parameters())
    assert all(not type(m).__module__.startswith("transformer_lens") for m in model.modules())
    assert not any("original_component" in key for key in model.state_dict())


def test_bad_positions_are_named(setup):
    _, sequences, tl, _ = setup
    with pytest.raises(ValueError, match="position 99 outside sequence 1"):
        tl.forward(sequences, reads=[Read("hook_embed", 1, 99)])
    with pytest.raises(ValueError, match="unknown site"):
        tl.forward(sequences, reads=[Read("blocks.0.mlp", 1, 0)])


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing")  # peft vs transformers 5
def test_peft_subject_runs_merged_and_stays_unmerged():
    peft = pytest.importorskip("peft")
    tokenizer = make_tokenizer()
    base = make_model("llama", tokenizer)
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "down_proj"], init_lora_weights=False)
    model = peft.get_peft_model(base, config).eval()
    loaded = LoadedModel(ModelSpec("tiny-llama", peft="lora"), model, tokenizer)
    sequences = [tokenizer(text)["input_ids"] for text in TEXTS]
    hf = HFBackend(loaded, progress=False)
    before = hf.forward(sequences).last_logits
    state = {key: value.clone() for key, value in model.state_dict().items()}
    tl = TransformerLensBackend(loaded, progress=False)
    close(tl.forward(sequences).last_logits, before)
    assert torch.equal(hf.forward(sequences).last_logits, before)
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())


def test_the_plugin_registers_the_backend(setup):
    from harness_plugins.builtin import registration

    registered = {}
    registration.introspect_register_backends(registered.__setitem__)
    loaded, sequences, _, hf = setup
    backend = registered["transformer_lens"](loaded, batch_size=3, progress=False)
    assert isinstance(backend, TransformerLensBackend)
    assert backend.name == "transformer_lens"
    close(backend.forward(sequences[:2]).last_logits, hf.forward(sequences[:2]).last_logits)


def test_an_architecture_transformer_lens_lacks_is_a_one_line_error():
    from transformers import PretrainedConfig

    from harness_plugins.errors import IntrospectError

    model = torch.nn.Linear(2, 2)
    model.config = PretrainedConfig(architectures=["MysteryForCausalLM"])
    loaded = LoadedModel(ModelSpec("mystery"), model, make_tokenizer())
    with pytest.raises(IntrospectError, match="cannot wrap MysteryForCausalLM") as error:
        TransformerLensBackend(loaded, progress=False)
    assert "\n" not in str(error.value)
