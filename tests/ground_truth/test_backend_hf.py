"""The hf backend implements the intervention primitive exactly, on GPT-2 and Llama.

Greedy choices (generated tokens, greedy flags) of batched, padded and cached runs are
compared with plain unpadded passes exactly, and only with every choice made by a margin
that the rounding of another computation order cannot overturn (`decisions`).
"""

from __future__ import annotations

import re

import pytest
import torch
from decisions import assert_margins, assert_rows_match, record
from tiny_models import loaded_tiny

from ground_truth.backends.hf import HFBackend, find_decoder_layers
from ground_truth.primitive import Read, Write, parse_site

TEXTS = [
    "What is the capital of France? The answer is",
    "hello",
    "The output would remain unchanged from <<<A>>>.",
    "How many centimeters",
    "Hint: I think the answer is (B).",
]


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def setup(request):
    loaded = loaded_tiny(request.param)
    tokenizer = loaded.tokenizer
    sequences = [tokenizer(text)["input_ids"] for text in TEXTS]
    return loaded, sequences


def backend(loaded, batch_size=4):
    return HFBackend(loaded, batch_size=batch_size, progress=False)


def unpadded_logits(model, sequence):
    with torch.inference_mode():
        return model(torch.tensor([sequence])).logits[0, -1].float()


def test_batched_padded_logits_equal_unbatched_runs(setup):
    loaded, sequences = setup
    result = backend(loaded).forward(sequences)
    for i, sequence in enumerate(sequences):
        torch.testing.assert_close(
            result.last_logits[i], unpadded_logits(loaded.model, sequence), atol=1e-5, rtol=1e-5
        )


def test_writing_back_what_was_read_changes_nothing(setup):
    loaded, sequences = setup
    runner = backend(loaded)
    plain = runner.forward(sequences)
    reads = [Read("blocks.0.hook_resid_post", row, 1) for row in range(len(sequences))]
    read = runner.forward(sequences, reads=reads)
    writes = [
        Write("blocks.0.hook_resid_post", row, 1, read.reads[row]) for row in range(len(sequences))
    ]
    patched = runner.forward(sequences, writes=writes)
    assert torch.equal(patched.last_logits, plain.last_logits)


def test_a_write_changes_only_its_own_sequence(setup):
    loaded, sequences = setup
    runner = backend(loaded)
    plain = runner.forward(sequences)
    vector = torch.full((runner.d_model,), 3.0)
    patched = runner.forward(sequences, writes=[Write("blocks.0.hook_resid_pre", 2, -1, vector)])
    changed = (patched.last_logits - plain.last_logits).abs().amax(-1) > 1e-4
    assert changed.tolist() == [False, False, True, False, False]


def test_padding_does_not_move_patched_positions(setup):
    """A patch at position p of a short sequence batched with long ones = the same patch alone."""
    loaded, sequences = setup
    vector = torch.linspace(-2, 2, backend(loaded).d_model)
    short = 1  # "hello": padded the most in a batch with the others
    write_in_batch = Write("blocks.1.hook_resid_pre", short, 0, vector)
    in_batch = backend(loaded, batch_size=8).forward(sequences, writes=[write_in_batch])
    alone = backend(loaded, batch_size=1).forward(
        [sequences[short]], writes=[Write("blocks.1.hook_resid_pre", 0, 0, vector)]
    )
    torch.testing.assert_close(
        in_batch.last_logits[short], alone.last_logits[0], atol=1e-5, rtol=1e-5
    )


def test_resid_post_of_one_block_is_resid_pre_of_the_next(setup):
    loaded, sequences = setup
    reads = [Read("blocks.0.hook_resid_post", 0, None), Read("blocks.1.hook_resid_pre", 0, None)]
    post, pre = backend(loaded).forward(sequences, reads=reads).reads
    assert post.shape == (len(sequences[0]), backend(loaded).d_model)
    assert torch.equal(post, pre)


def test_hook_embed_is_the_token_embedding(setup):
    loaded, sequences = setup
    embed = backend(loaded).forward(sequences, reads=[Read("hook_embed", 3, None)]).reads[0]
    expected = loaded.model.get_input_embeddings()(torch.tensor(sequences[3])).float()
    torch.testing.assert_close(embed, expected)


def test_final_block_output_is_taken_before_the_final_norm(setup):
    """The last resid_post, through the model's own norm and head, gives its logits (logit lens)."""
    loaded, sequences = setup
    last = f"blocks.{backend(loaded).n_layers - 1}.hook_resid_post"
    result = backend(loaded).forward(sequences, reads=[Read(last, 0, -1)])
    model = loaded.model
    norm = model.transformer.ln_f if hasattr(model, "transformer") else model.model.norm
    with torch.inference_mode():
        logits = model.lm_head(norm(result.reads[0]))
    torch.testing.assert_close(logits, result.last_logits[0], atol=1e-5, rtol=1e-5)


def manual_greedy(model, sequence, steps, patch=None):
    """Reference greedy decoding without a cache; returns the tokens and the logits each
    was chosen from. ``patch`` replaces a prompt position's block output: in every pass, as
    each pass recomputes the prompt whose patched states the cached run keeps."""
    ids = list(sequence)
    out, rows = [], []
    for _ in range(steps):
        handle = None
        if patch is not None:
            layer, position, vector = patch

            def hook(module, args, output, position=position, vector=vector):
                hidden = output[0] if isinstance(output, tuple) else output
                hidden = hidden.clone()
                hidden[0, position] = vector
                return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

            handle = find_decoder_layers(model)[layer].register_forward_hook(hook)
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
        if handle is not None:
            handle.remove()
        token = int(logits.argmax())
        out.append(token)
        rows.append(logits)
        ids.append(token)
    return out, torch.stack(rows)


def test_generate_is_greedy_and_batching_invariant(setup):
    loaded, sequences = setup
    manual = [manual_greedy(loaded.model, s, 5) for s in sequences]
    expected = [tokens for tokens, _ in manual]
    reference = torch.cat([rows for _, rows in manual])
    assert_margins(reference, "greedy decoding without a cache")
    for batch_size in (8, 1):
        runner = backend(loaded, batch_size=batch_size)
        with record(runner) as rows:
            assert runner.generate(sequences, max_new_tokens=5) == expected
        assert_rows_match(rows.rows, reference, f"generation in batches of {batch_size}")


def test_generate_applies_writes_to_the_prompt_pass_only(setup):
    loaded, sequences = setup
    vector = torch.linspace(-3, 3, backend(loaded).d_model)
    row, position = 3, 1
    write = Write("blocks.0.hook_resid_post", row, position, vector)
    runner = backend(loaded)
    with record(runner) as rows:
        got = runner.generate(sequences, max_new_tokens=4, writes=[write])
    patched, patched_rows = manual_greedy(
        loaded.model, sequences[row], 4, patch=(0, position, vector)
    )
    plain, plain_rows = manual_greedy(loaded.model, sequences[0], 4)
    assert_margins([patched_rows, plain_rows], "greedy decoding without a cache")
    assert got[row] == patched
    assert got[0] == plain
    # the two decoded without a cache are among the batch's rows
    assert_rows_match(torch.cat([patched_rows, plain_rows]), rows.rows, "generation with a write")


def test_generate_stops_after_a_stop_token(setup):
    loaded, sequences = setup
    free = backend(loaded).generate(sequences[:1], max_new_tokens=6)[0]
    stop = free[2]
    stopped = backend(loaded).generate(sequences[:1], max_new_tokens=6, stop_token_ids=[stop])[0]
    assert stopped == free[: free.index(stop) + 1]


def test_bad_sites_and_positions_are_named():
    with pytest.raises(ValueError, match=re.escape("unknown site 'blocks.0.mlp'")):
        parse_site("blocks.0.mlp", 2)
    with pytest.raises(ValueError, match="layer 5 out of range"):
        parse_site("blocks.5.hook_resid_pre", 2)


def test_out_of_range_position_is_an_error(setup):
    loaded, sequences = setup
    with pytest.raises(ValueError, match="position 99 outside sequence 1"):
        backend(loaded).forward(sequences, reads=[Read("hook_embed", 1, 99)])


def test_mlp_hook_post_reads_the_neurons_that_the_output_weights_write(setup):
    """Neuron activations times W_out rows give the MLP output (minus its bias)."""
    loaded, sequences = setup
    runner = backend(loaded)
    layer = 1
    reads = [
        Read(f"blocks.{layer}.mlp.hook_post", 0, None),
        Read(f"blocks.{layer}.hook_resid_pre", 0, None),
    ]
    hidden, _ = runner.forward(sequences, reads=reads).reads
    w_out = runner.mlp_output_weights(layer)
    assert w_out.shape == (hidden.shape[-1], runner.d_model)
    from ground_truth.backends.hf import find_mlp_output

    projection = find_mlp_output(find_decoder_layers(loaded.model)[layer])
    with torch.inference_mode():
        expected = projection(hidden) - (projection.bias if projection.bias is not None else 0)
    torch.testing.assert_close(hidden @ w_out, expected.float(), atol=1e-5, rtol=1e-4)


def test_score_from_gives_loglikelihoods_of_the_continuation(setup):
    loaded, sequences = setup
    sequence = sequences[0]
    runner = backend(loaded)
    with record(runner) as rows:
        result = runner.forward([sequence, sequences[1]], score_from=[4, 1])
    with torch.inference_mode():
        logits = loaded.model(torch.tensor([sequence])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    expected = torch.stack([logprobs[i - 1, sequence[i]] for i in range(4, len(sequence))])
    torch.testing.assert_close(result.token_logprobs[0], expected, atol=1e-5, rtol=1e-5)
    greedy = all(int(logprobs[i - 1].argmax()) == sequence[i] for i in range(4, len(sequence)))
    assert_margins(logits[3:-1], "the scored positions")
    assert result.greedy[0] is greedy
    with torch.inference_mode():
        other = loaded.model(torch.tensor([sequences[1]])).logits[0].float()
    # only the scored tokens' columns (and the last) were kept, each as computed alone
    assert rows.rows.shape[0] == len(sequence) - 3 + len(sequences[1])
    assert_rows_match(rows.rows, torch.cat([logits, other]), "scoring in a padded batch")


def test_a_shared_prefix_runs_once_and_changes_nothing(setup):
    """Sequences that start alike share one prefix pass (its KV cache); results are the same."""
    loaded, _ = setup
    tokenizer = loaded.tokenizer
    head = tokenizer(
        "What is the capital of France? The answer is (A). Paris is the capital. Hint: I think"
    )["input_ids"]
    assert len(head) >= 16
    tails = [" the answer is (B).", " (C)", " the output would remain unchanged", " 12 + 30 = 42"]
    sequences = [head + tokenizer(t, add_special_tokens=False)["input_ids"] for t in tails]
    shared = HFBackend(loaded, batch_size=4, progress=False)
    plain = HFBackend(loaded, batch_size=4, progress=False, share_prefixes=False)
    assert shared.prefix_groups([0, 1, 2, 3], sequences, (), (), None) == [(0, 4, len(head))]
    vector = torch.linspace(-1, 1, shared.d_model)
    kwargs = {
        "reads": [Read("blocks.1.hook_resid_post", 2, -1)],
        "writes": [Write("blocks.0.hook_resid_post", 1, -1, vector)],
        "score_from": [len(head) + 1] * 4,
    }
    with record(shared) as shared_rows, record(plain) as plain_rows:
        a, b = shared.forward(sequences, **kwargs), plain.forward(sequences, **kwargs)
    torch.testing.assert_close(a.last_logits, b.last_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.reads[0], b.reads[0], atol=1e-5, rtol=1e-5)
    for x, y in zip(a.token_logprobs, b.token_logprobs, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    assert_margins(plain_rows.rows, "greedy flags without a shared prefix")
    assert a.greedy == b.greedy
    assert_rows_match(shared_rows.rows, plain_rows.rows, "a shared prefix")
    early = [Write("blocks.0.hook_resid_post", 0, 3, vector)]  # inside the prefix: shrinks it
    groups = shared.prefix_groups([0, 1, 2, 3], sequences, (), early, None)
    assert groups == [(0, 1, 0), (1, 4, len(head))]
    torch.testing.assert_close(
        shared.forward(sequences, writes=early).last_logits,
        plain.forward(sequences, writes=early).last_logits,
        atol=1e-5,
        rtol=1e-5,
    )
