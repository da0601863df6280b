"""The memory-saving loss (logits only where a reply token is learned) is the model's own loss."""

from __future__ import annotations

import pytest
import torch

from harness_plugins.prompts import vectors
from harness_plugins.training.answer_loss import answer_only_loss, predicting_positions
from harness_plugins.training.lora import Example, _Collator, _slot_trainer, encode_example


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llama))


def _batch(tokenizer):
    """Three rows of unequal length (right padding), one with a vector slot."""
    table = vectors.VectorTable()
    with table.active():
        slot = vectors.slot(torch.randn(32, generator=torch.Generator().manual_seed(1)))
        examples = [
            Example(({"role": "user", "content": "Describe " + slot + " briefly"},), "a dog"),
            Example(({"role": "user", "content": "What is 12 + 30? Answer (A) or (B)."},), "(B)"),
            Example(({"role": "user", "content": "hi"},), "The answer is (A). Paris."),
        ]
        rows = [encode_example(tokenizer, example, 512) for example in examples]
    table.clear()
    return _Collator(tokenizer.pad_token_id)(rows)


def _trainer(model, full_logits: bool):
    from transformers import TrainingArguments

    arguments = TrainingArguments(
        output_dir="/tmp/unused-introspect-trainer", report_to=[], use_cpu=True
    )
    trainer = _slot_trainer()(model=model, args=arguments)
    trainer.full_logits = full_logits
    return trainer


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gpt2"])
@pytest.mark.parametrize("num_items", [None, 7])
def test_answer_logits_give_the_full_logits_loss_and_gradients(arch, num_items, request):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = request.getfixturevalue(arch)
    batch = _batch(AutoTokenizer.from_pretrained(str(folder)))
    results = []
    for full in (True, False):
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        trainer = _trainer(model, full_logits=full)
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((loss.detach(), grads))
    (full_loss, full_grads), (loss, grads) = results
    assert loss.item() == pytest.approx(full_loss.item(), abs=1e-5)
    assert len(grads) == len(full_grads) > 0
    for mine, theirs in zip(grads, full_grads, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_the_output_layer_sees_only_the_positions_that_predict_a_reply_token(tiny_llama, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    batch = _batch(tokenizer)
    learned = int((batch["labels"][:, 1:] != -100).sum())
    seen = []
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, output: seen.append(tuple(output.shape))
    )
    with torch.no_grad():
        answer_only_loss(model, {k: batch[k] for k in ("input_ids", "attention_mask", "labels")})
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    vocabulary = model.config.vocab_size
    assert seen[0] == (1, learned, vocabulary)
    assert seen[1] == (*batch["input_ids"].shape, vocabulary)
    assert 0 < learned < batch["input_ids"].numel() / 4  # the whole point: far fewer rows


def test_predicting_positions_is_the_label_mask_moved_one_left():
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, 8, 9, 2]])
    keep = predicting_positions(labels)
    assert keep.tolist() == [
        [False, True, True, False, False],
        [True, True, True, True, False],
    ]


def test_a_model_without_an_output_module_gets_its_logits_cut_after(tiny_llama, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    batch = {k: v for k, v in _batch(tokenizer).items() if not k.startswith("slot")}
    with torch.no_grad():
        expected = model(**batch).loss
        model.get_output_embeddings = lambda: None
        loss = answer_only_loss(model, batch)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
