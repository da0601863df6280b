"""The throughput cuts (tail trimmed, shared prefix run once, rows grouped by length)
leave the training loss and its gradients as they were, and do less counted work."""

from __future__ import annotations

import pytest
import torch

from harness_plugins.prompts import vectors
from harness_plugins.training.answer_loss import Work, answer_only_loss, shared_length
from harness_plugins.training.lora import Example, _Collator, encode_example

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer in a few words."}


def _batch(folder, with_slots: bool = True):
    """Four rows sharing a system turn and the start of the question, then a vector each
    (its own value), replies of unequal length (right padding)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    generator = torch.Generator().manual_seed(3)
    table = vectors.VectorTable()
    answers = ["a dog", "(B)", "The answer is (A). Paris.", "music"]
    with table.active():
        examples = []
        for answer in answers:
            vector = vectors.slot(torch.randn(32, generator=generator)) if with_slots else "it"
            question = f"What is 12 + 30? Describe {vector} briefly"
            examples.append(Example((SYSTEM, {"role": "user", "content": question}), answer))
        rows = [encode_example(tokenizer, example, 512) for example in examples]
    table.clear()
    return _Collator(tokenizer.pad_token_id)(rows)


def _loss_and_grads(folder, batch, count, **cuts):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    inputs = {k: v for k, v in batch.items() if not k.startswith("slot")}
    slots = (batch["slot_positions"], batch["slot_vectors"])
    work = Work()
    loss = answer_only_loss(model, inputs, count, slots=slots, work=work, **cuts)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, work


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2"])
@pytest.mark.parametrize("count", [None, 9])
def test_cuts_give_the_same_loss_and_gradients_with_less_work(arch, count, request):
    folder = request.getfixturevalue(arch)
    batch = _batch(folder)
    plain_loss, plain_grads, plain = _loss_and_grads(folder, batch, count)
    loss, grads, cut = _loss_and_grads(folder, batch, count, trim_tail=True, share_prefix=True)
    assert loss.item() == pytest.approx(plain_loss.item(), abs=1e-5)
    assert grads.keys() == plain_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain_grads[name], atol=1e-5, rtol=1e-4)
    # the same data, less computed
    assert (cut.tokens, cut.answer_tokens) == (plain.tokens, plain.answer_tokens)
    assert cut.head_rows == plain.head_rows == plain.answer_tokens
    assert cut.positions < 0.7 * plain.positions
    assert cut.padded < plain.padded


def test_the_shared_prefix_stops_before_the_first_vector_and_the_first_answer(tiny_llama):
    from harness_plugins.training.answer_loss import predicting_positions

    batch = _batch(tiny_llama)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    keep = predicting_positions(batch["labels"])
    where = batch["slot_positions"]
    shared = shared_length(ids, mask, keep, where)
    assert 0 < shared == int(where[:, 1].min())
    assert shared_length(ids, mask, keep, None) > shared  # the rows run on to the vector
    assert shared_length(ids[:1], mask[:1], keep[:1], None) == 0  # one row: nothing to share
    plain = _batch(tiny_llama, with_slots=False)
    first = int(predicting_positions(plain["labels"]).any(0).nonzero()[0])
    no_slots = (plain["input_ids"], plain["attention_mask"], predicting_positions(plain["labels"]))
    assert shared_length(*no_slots, None) <= first


def test_grouping_rows_by_length_pads_less_over_an_epoch(tiny_llama, tmp_path):
    from ground_truth.subject import ModelSpec
    from harness_plugins.training.lora import TrainingConfig, train_lora

    questions = ["hi", "What is 12 + 30?", "Which day comes after Monday? " * 3, "A B C " * 9]
    examples = [
        Example(({"role": "user", "content": questions[i % 4]},), "(A) " * (1 + i % 3))
        for i in range(24)
    ]
    padded = {}
    for grouped in (False, True):
        config = TrainingConfig(
            batch_size=4, lora_r=2, save_steps=10**6, group_by_length=grouped, share_prefix=False
        )
        manifest = train_lora(
            ModelSpec(str(tiny_llama)),
            examples,
            tmp_path / f"grouped-{grouped}",
            config,
            description={"kind": "test"},
        )
        work = manifest["work"]
        assert work["steps"] == 6 and len(work["step_seconds"]) == 6
        assert work["tokens"] == sum(len(encode(tiny_llama, e)) for e in examples)
        padded[grouped] = work["padded"]
    assert padded[True] < padded[False] / 2


def encode(folder, example):
    from transformers import AutoTokenizer

    return encode_example(AutoTokenizer.from_pretrained(str(folder)), example, 512)["input_ids"]


@pytest.mark.parametrize("kind", ["gemma3_window_shorter_than_prefix", "qwen2"])
def test_the_shared_prefix_is_exact_on_other_caches(kind):
    """Gemma 3's sliding-window layers (a window shorter than the shared prefix) and Qwen 2."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, Qwen2Config, Qwen2ForCausalLM

    sizes = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "pad_token_id": 0}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2}

    def build():
        torch.manual_seed(0)
        if kind == "qwen2":
            return Qwen2ForCausalLM(Qwen2Config(num_hidden_layers=2, **sizes, **heads))
        layers = ["sliding_attention", "full_attention"] * 2
        config = Gemma3TextConfig(
            num_hidden_layers=4, head_dim=8, sliding_window=4, layer_types=layers, **sizes, **heads
        )
        return Gemma3ForCausalLM(config)

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 64, (3, 20), generator=generator)
    ids[:, :9] = ids[0, :9]
    mask = torch.ones_like(ids)
    mask[1, 17:] = mask[2, 15:] = 0
    ids[mask == 0] = 0
    labels = ids.clone()
    labels[:, :12] = -100
    labels[mask == 0] = -100
    slots = (torch.tensor([[0, 10], [1, 11], [2, 10]]), torch.randn(3, 32, generator=generator))
    results = []
    for cut in (False, True):
        model, work = build(), Work()
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        loss = answer_only_loss(
            model, batch, slots=slots, trim_tail=cut, share_prefix=cut, work=work
        )
        loss.backward()
        results.append((loss.item(), [p.grad for p in model.parameters()], work.positions))
    (plain, plain_grads, plain_positions), (cut_loss, grads, positions) = results
    assert cut_loss == pytest.approx(plain, abs=1e-6) and positions < plain_positions
    for grad, plain_grad in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(grad, plain_grad, atol=1e-6, rtol=1e-5)


def test_a_model_that_returns_no_cache_runs_every_row_in_full(tiny_llama):
    from transformers import AutoModelForCausalLM

    batch = _batch(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama), dtype=torch.float32)
    forward = model.forward

    def without_cache(*args, **kwargs):
        output = forward(*args, **kwargs)
        output.cache = None
        return output

    model.forward = without_cache
    inputs = {k: v for k, v in batch.items() if not k.startswith("slot")}
    slots = (batch["slot_positions"], batch["slot_vectors"])
    with torch.no_grad():
        expected = answer_only_loss(model, inputs, slots=slots)
        loss = answer_only_loss(model, inputs, slots=slots, share_prefix=True)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_an_interrupted_run_resumes_with_grouped_batches(tiny_llama, tmp_path):
    from transformers import TrainerCallback

    from ground_truth.subject import ModelSpec
    from harness_plugins.training.lora import TrainingConfig, train_lora

    class Interrupt(TrainerCallback):
        def attach(self, trainer, tokenizer, checkpoint):
            pass

        def on_step_end(self, args, state, control, **_):
            if state.global_step == 3:
                raise KeyboardInterrupt

    questions = ["hi", "What is 12 + 30?", "Which day comes after Monday? " * 3]
    examples = [
        Example(({"role": "user", "content": questions[i % 3]},), "(A) " * (1 + i % 2))
        for i in range(12)
    ]
    config = TrainingConfig(batch_size=2, lora_r=2, max_steps=5, save_steps=2)
    arguments = (ModelSpec(str(tiny_llama)), examples, tmp_path / "adapter", config)
    with pytest.raises(KeyboardInterrupt):
        train_lora(*arguments, description={}, addons=[Interrupt()])
    manifest = train_lora(*arguments, description={}, resume=True)
    assert manifest["steps"] == 5
