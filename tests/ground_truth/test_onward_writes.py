"""Onward writes (a vector added from a position on, generated tokens included): hf vs
transformer_lens, generation vs a full forward pass, and control rows left untouched."""

from __future__ import annotations

import pytest
import torch
from tiny_models import make_model, make_tokenizer

from ground_truth.backends.hf import HFBackend
from ground_truth.backends.transformer_lens import TransformerLensBackend
from ground_truth.batching import SitePlan
from ground_truth.primitive import Read, Write
from ground_truth.subject import LoadedModel, ModelSpec

TEXTS = ["What is the capital of France? The answer is", "hello there", "How many centimeters"]
SITE = "blocks.0.hook_resid_post"


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def setup(request):
    tokenizer = make_tokenizer()
    loaded = LoadedModel(
        ModelSpec(f"tiny-{request.param}"), make_model(request.param, tokenizer), tokenizer
    )
    sequences = [tokenizer(text)["input_ids"] for text in TEXTS]
    hf = HFBackend(loaded, batch_size=2, progress=False)
    tl = TransformerLensBackend(loaded, batch_size=2, progress=False)
    vector = torch.linspace(-3, 3, hf.d_model)
    return sequences, hf, tl, vector


def reads_all(backend, sequences, writes, site="blocks.1.hook_resid_post"):
    reads = [Read(site, row, None) for row in range(len(sequences))]
    return backend.forward(sequences, reads=reads, writes=writes).reads


def test_onward_add_is_an_add_at_every_later_position(setup):
    sequences, hf, _, vector = setup
    onward = [Write(SITE, 0, 2, vector, "add", onward=True)]
    each = [Write(SITE, 0, p, vector, "add") for p in range(2, len(sequences[0]))]
    for got, expected in zip(
        reads_all(hf, sequences, onward), reads_all(hf, sequences, each), strict=True
    ):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_hf_and_transformer_lens_agree_on_onward_writes(setup):
    sequences, hf, tl, vector = setup
    writes = [
        Write(SITE, 1, -2, vector, "add", onward=True),
        Write(SITE, 2, 0, -vector, "add", True),
    ]
    for got, expected in zip(
        reads_all(tl, sequences, writes), reads_all(hf, sequences, writes), strict=True
    ):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    a = tl.forward(sequences, writes=writes).last_logits
    b = hf.forward(sequences, writes=writes).last_logits
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend_name", ["hf", "transformer_lens"])
def test_generation_keeps_adding_on_generated_tokens(setup, backend_name):
    """Greedy tokens under an onward write are the argmax of a full pass with that write."""
    sequences, hf, tl, vector = setup
    backend = hf if backend_name == "hf" else tl
    vector = 0.25 * vector  # small enough not to saturate the tiny model
    writes = [Write(SITE, row, -1, vector, "add", onward=True) for row in range(3)]
    steered = backend.generate(sequences, max_new_tokens=6, writes=writes)
    full = [s + t for s, t in zip(sequences, steered, strict=True)]
    checked = backend.forward(
        full,
        writes=[
            Write(SITE, row, len(s) - 1, vector, "add", True) for row, s in enumerate(sequences)
        ],
        score_from=[len(s) for s in sequences],
    )
    assert all(checked.greedy)
    # without the onward part only the prompt is steered: the generated tokens read otherwise
    prompt_only = backend.forward(
        full,
        writes=[Write(SITE, row, len(s) - 1, vector, "add") for row, s in enumerate(sequences)],
    )
    onward = backend.forward(
        full,
        writes=[
            Write(SITE, row, len(s) - 1, vector, "add", True) for row, s in enumerate(sequences)
        ],
    )
    assert not torch.allclose(prompt_only.last_logits, onward.last_logits, atol=1e-3)


def test_generation_step_plan_keeps_only_onward_writes():
    vector = torch.ones(4)
    plan = SitePlan()
    plan.writes[SITE] = [
        (0, 5, Write(SITE, 0, 5, vector)),
        (1, 3, Write(SITE, 1, 3, vector, "add", True)),
    ]
    step = plan.generation_step()
    assert step is not None and [(r, c) for r, c, _ in step.writes[SITE]] == [(1, 0)]
    plan.writes[SITE] = plan.writes[SITE][:1]
    assert plan.generation_step() is None


def test_control_rows_never_receive_the_vector(setup):
    """A control row batched with injected rows reads exactly as when run alone."""
    sequences, hf, _, vector = setup
    writes = [Write(SITE, row, -1, 8 * vector, "add", onward=True) for row in (1, 2)]
    batched = reads_all(hf, sequences, writes, site=SITE)[0]
    alone = reads_all(hf, sequences[:1], [], site=SITE)[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    tokens = hf.generate(sequences, max_new_tokens=5, writes=writes)[0]
    assert tokens == hf.generate(sequences[:1], max_new_tokens=5)[0]
