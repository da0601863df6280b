"""Less padding and fewer logits (issue 26, item 5), counted: positions, padding, logits kept.

Rows that start alike share a batch and, among them, longer rows go first
(`ground_truth.batch_order`); a pass keeps only the logit columns a caller reads
(``score_from``: the scored tokens' columns; ``logit_ids``: a few tokens of the vocabulary).
References stay the same within the numeric error (`decisions`).
"""

from __future__ import annotations

import pytest
import torch
from decisions import NUMERIC_ERROR
from tiny_models import loaded_tiny

from ground_truth.backends.hf import HFBackend
from ground_truth.batch_order import by_prefix_then_length
from harness_plugins.builtin.preferences.reports import decision_messages, scenario_doc
from harness_plugins.builtin.preferences.scenarios import builtin_scenarios
from harness_plugins.builtin.preferences.weight_reports import Preferences
from harness_plugins.options import resolve_options
from harness_plugins.prompts.chat import encode_prompt


@pytest.fixture(scope="module")
def loaded():
    return loaded_tiny("llama")


def counting(backend):
    """Positions, padded positions and logit elements of every pass of ``backend``."""
    counts = {"positions": 0, "padding": 0, "logits": 0}
    run = backend.run

    def counted(ids, mask, plan, **kwargs):
        logits, past = run(ids, mask, plan, **kwargs)
        counts["positions"] += ids.numel()
        counts["padding"] += int((mask[:, -ids.shape[1] :] == 0).sum())
        counts["logits"] += logits.numel()
        return logits, past

    backend.run = counted
    return counts


def ablation_like(tokenizer):
    """Question pairs (with and without a hint) of unlike lengths, as input ablation has."""
    head = tokenizer("Answer the question with one letter. Question:")["input_ids"]
    sequences = []
    # token order (by the first word) is not length order
    for word, n in zip("abcdefgh", (3, 17, 5, 29, 11, 2, 23, 8), strict=True):
        question = tokenizer(
            f" {word}: how many {'very ' * n}long words?", add_special_tokens=False
        )
        hint = tokenizer(" Hint: I think it is (B).", add_special_tokens=False)["input_ids"]
        answer = tokenizer(" Answer: (", add_special_tokens=False)["input_ids"]
        sequences.append(head + question["input_ids"] + hint + answer)
        sequences.append(head + question["input_ids"] + answer)
    return sequences


def test_order_keeps_alike_rows_together_longest_first():
    rows = [[1] * 20 + [2] * 20 + [5], [1] * 20 + [3, 4], [1] * 20 + [2] * 20, [1] * 20 + [3]]
    # two groups that share 20 tokens more than all rows do; the longer group first
    assert by_prefix_then_length(rows) == [0, 2, 1, 3]


def test_length_order_pads_less_and_changes_no_reference(loaded):
    sequences = ablation_like(loaded.tokenizer)
    counts, logits = {}, {}
    for length_order in (False, True):
        backend = HFBackend(loaded, batch_size=4, progress=False)
        backend.length_order = length_order
        counts[length_order] = counting(backend)
        logits[length_order] = backend.forward(sequences).last_logits
    before, after = counts[False], counts[True]
    assert after["padding"] < before["padding"], (before, after)
    assert after["positions"] < before["positions"], (before, after)
    # the same prompts, in request order, within the error of another computation order
    assert (logits[True] - logits[False]).abs().max() <= NUMERIC_ERROR


def test_generation_batches_by_length(loaded):
    sequences = ablation_like(loaded.tokenizer)
    backend = HFBackend(loaded, batch_size=4, progress=False)
    widths = [max(len(sequences[i]) for i in batch) for batch in backend.batches(sequences)]
    plain = [
        max(len(sequences[i]) for i in batch) for batch in backend.batches(sequences, shared=False)
    ]
    assert backend.generate(sequences[:3], max_new_tokens=2) is not None
    assert sum(plain) <= sum(widths)


def test_scoring_keeps_only_the_scored_columns(loaded):
    sequences = ablation_like(loaded.tokenizer)
    starts = [len(s) - 2 for s in sequences]  # a two-token continuation each
    backend = HFBackend(loaded, batch_size=4, progress=False, share_prefixes=False)
    counts = counting(backend)
    result = backend.forward(sequences, score_from=starts)
    vocabulary = loaded.model.config.vocab_size
    passes = len(backend.batches(sequences))
    assert counts["logits"] == len(sequences) * 3 * vocabulary  # 2 scored + the last column
    assert counts["logits"] * 10 < counts["positions"] * vocabulary  # all columns, before
    with torch.inference_mode():
        for row, sequence in enumerate(sequences):
            alone = loaded.model(torch.tensor([sequence])).logits[0].float().log_softmax(-1)
            expected = alone[-3:-1].gather(-1, torch.tensor(sequence[-2:])[:, None])[:, 0]
            assert (result.token_logprobs[row] - expected).abs().max() <= 1e-5
    assert passes == 4


def test_logit_ids_keep_a_few_columns_of_the_vocabulary(loaded):
    sequences = ablation_like(loaded.tokenizer)
    backend = HFBackend(loaded, batch_size=4, progress=False)
    full = backend.forward(sequences).last_logits
    letters = [5, 7, 11]
    kept = backend.forward(sequences, logit_ids=letters).last_logits
    assert kept.shape == (len(sequences), 3) and full.shape[1] == loaded.model.config.vocab_size
    assert torch.equal(kept, full[:, letters])


def test_preference_decisions_pad_less(loaded):
    tokenizer = loaded.tokenizer
    kind = Preferences()
    options = resolve_options("preferences", kind.all_options(), {"seed": 0, "pairs": 20})
    sequences = []
    for scenario in builtin_scenarios()[:3]:
        doc = scenario_doc(scenario)
        a_values, b_values = kind.option_pairs(doc, options)
        sequences += [
            encode_prompt(tokenizer, decision_messages(doc, a, b))
            for a, b in zip(a_values, b_values, strict=True)
        ]
    counts, logits = {}, {}
    for length_order in (False, True):
        backend = HFBackend(loaded, batch_size=8, progress=False)
        backend.length_order = length_order
        counts[length_order] = counting(backend)
        logits[length_order] = backend.forward(sequences, logit_ids=[5, 7]).last_logits
    assert counts[True]["padding"] < counts[False]["padding"], counts
    assert counts[True]["positions"] < counts[False]["positions"], counts
    assert (logits[True] - logits[False]).abs().max() <= NUMERIC_ERROR
