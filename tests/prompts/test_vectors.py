"""Vector injection in the introspect model: markers, exactness, request caching, --model hf guard."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from decisions import assert_margins, record

from harness_plugins.lm_eval_adapter.model import IntrospectLM
from harness_plugins.prompts import vectors


class Request:
    """What lm-eval hands a model: an object with ``args``."""

    def __init__(self, *args):
        self.args = args


@pytest.fixture(autouse=True)
def table():
    """Each test renders its prompts inside one evaluation's vector table, as a task does."""
    table = vectors.VectorTable()
    with table.active():
        yield table
    table.clear()


@pytest.fixture(scope="module")
def lm(tiny_llama):
    return IntrospectLM(pretrained=str(tiny_llama), device="cpu", batch_size=4)


def test_keys_follow_content_and_mappings_apply():
    a, b = torch.ones(8), torch.ones(8) * 2
    assert vectors.slot(a) == vectors.slot(a.clone())
    assert vectors.slot(a) != vectors.slot(b) and vectors.slot(a) != vectors.slot(a, scale=2.0)
    assert vectors.slot(a, scale=2.0) == vectors.slot(b)
    with vectors.VectorTable(lambda v, layer, site: (v * 0 + layer, site)).active() as mapped:
        key = vectors.register_vector(a, layer=3)
        assert torch.equal(vectors.vector(key), torch.full((8,), 3.0))
    assert len(mapped) == 1
    text = (
        "x " + vectors.slot(a) + " y" + vectors.intervention([("blocks.0.hook_resid_post", b, 0)])
    )
    assert vectors.has_markers(text) and not vectors.has_markers(vectors.strip_markers(text))
    pieces = vectors.parse(text)
    assert [p.text for p in pieces] == ["x <begin>", "", "<end> y", ""]
    assert pieces[1].slot is not None and pieces[3].writes[0][0] == "blocks.0.hook_resid_post"


def test_a_table_lives_for_one_evaluation(table):
    """Vectors exist from rendering until the table is cleared; none outside any table."""
    key = vectors.register_vector(torch.ones(4))
    assert torch.equal(vectors.vector(key), torch.ones(4))
    table.clear()
    with pytest.raises(KeyError, match="no live vector table"):
        vectors.vector(key)
    other = vectors.VectorTable()
    with other.active():
        pass
    # outside every `active` block there is nowhere to put a vector
    import contextvars

    outside = contextvars.Context()
    with pytest.raises(RuntimeError, match="outside any evaluation"):
        outside.run(vectors.slot, torch.ones(4))


def test_a_slot_holding_a_token_embedding_equals_that_token(lm):
    """Exactness: injecting the embedding of token T at the slot = having T in the text."""
    tokenizer = lm.tokenizer
    word_id = tokenizer.encode(" answer", add_special_tokens=False)[0]
    embedding = lm.model.get_input_embeddings().weight[word_id].detach()
    marked = (
        "What is the"
        + vectors.slot(embedding).replace(vectors.BEGIN, "").replace(vectors.END, "")
        + " of 12 + 30?"
    )
    ids, writes = lm._encode_marked(marked, 0)
    plain = [*ids[: writes[0].position], word_id, *ids[writes[0].position + 1 :]]
    with torch.inference_mode():
        expected = lm.model(torch.tensor([plain])).logits[0, -1].float()
    got = lm._vector_backend().forward([ids], writes=writes).last_logits[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

    text_plain = tokenizer.decode(plain)
    reference = lm.loglikelihood([Request(text_plain, " The")])[0]
    injected = lm.loglikelihood([Request(marked, " The")])[0]
    assert injected[0] == pytest.approx(reference[0], abs=1e-4) and injected[1] == reference[1]


def test_generation_with_and_without_markers_in_one_batch(lm):
    vector = torch.randn(lm.model.config.hidden_size)
    gen = {"until": ["\n"], "max_gen_toks": 5, "do_sample": False}
    marked = "Describe " + vectors.slot(vector) + " please"
    out = lm.generate_until([Request("Hello there", dict(gen)), Request(marked, dict(gen))])
    assert len(out) == 2 and all(isinstance(text, str) for text in out)
    assert out[0] == lm.generate_until([Request("Hello there", dict(gen))])[0]
    with pytest.raises(ValueError, match="decoded greedily"):
        lm.generate_until([Request(marked, {**gen, "do_sample": True})])


def test_vector_generation_stops_as_soon_as_an_until_string_is_complete(lm, monkeypatch):
    backend = lm._vector_backend()
    vector = torch.randn(lm.model.config.hidden_size)
    marked = "Describe " + vectors.slot(vector) + " please"
    passes = []
    original = type(backend).run

    def counted(self, *args, **kwargs):
        passes.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(backend), "run", counted)
    free = {"until": [], "max_gen_toks": 12, "do_sample": False}
    (full,) = lm.generate_until([Request(marked, dict(free))])
    assert len(passes) == 12  # one prompt pass, then 11 steps: nothing stops it
    ids = backend.generate(
        [lm._encode_marked(marked, 0)[0]], max_new_tokens=12, writes=lm._encode_marked(marked, 0)[1]
    )[0]
    stop = lm.tok_decode(ids[:3])
    assert stop and full.startswith(stop)
    passes.clear()
    (cut,) = lm.generate_until([Request(marked, {**free, "until": [stop]})])
    assert cut == full.split(stop)[0]
    assert len(passes) <= 3  # stopped once the stop string was complete, not at 12 tokens


def test_an_intervention_with_the_prompts_own_state_changes_nothing(lm):
    from ground_truth.primitive import Read

    prompt = "The capital city of France is"
    ids = lm.tok_encode(prompt)
    hidden = (
        lm._vector_backend()
        .forward([ids], reads=[Read("blocks.0.hook_resid_post", 0, -1)])
        .reads[0]
    )
    marked = prompt + vectors.intervention([("blocks.0.hook_resid_post", hidden, 0)])
    gen = {"until": [], "max_gen_toks": 3, "do_sample": False}
    # two ways to decode (lm-eval's generate, the backend's loop): no near-tie to flip
    with record(lm._vector_backend()) as rows:
        lm._vector_backend().generate([ids], max_new_tokens=3)
    assert_margins(rows.generated, "the plain generation")
    assert lm.generate_until([Request(marked, dict(gen))]) == lm.generate_until(
        [Request(prompt, dict(gen))]
    )


def test_vector_tasks_stop_at_once_under_model_hf(tiny_llama):
    done = run_cli(
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_features",
        "--limit",
        "1",
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("introspect: error:")]
    assert (
        len(errors) == 1
        and "only the introspect model can do: run lm_eval --model introspect" in errors[0]
    )


def test_request_cache_reuses_vector_requests_without_confusing_them(tiny_llama, tmp_path):
    cache = tmp_path / "requests"
    args = [
        "lm_eval",
        "--model",
        "introspect",
        "--model_args",
        f"pretrained={tiny_llama}",
        "--device",
        "cpu",
        "--tasks",
        "introspect_features",
        "--limit",
        "3",
        "--use_cache",
        str(cache),
        "--metadata",
        json.dumps({"simulation": False}),
    ]
    first = run_cli(*args, "--output_path", str(tmp_path / "a"), "--log_samples")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(*args, "--output_path", str(tmp_path / "b"), "--log_samples")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Cached requests: 3, Requests remaining: 0" in second.stderr
    samples = [
        [
            json.loads(line)
            for line in next((tmp_path / run).rglob("samples_*.jsonl")).read_text().splitlines()
        ]
        for run in ("a", "b")
    ]
    assert [s["resps"] for s in samples[0]] == [s["resps"] for s in samples[1]]
    prompts = [s["arguments"]["gen_args_0"]["arg_0"] for s in samples[0]]
    assert len(set(prompts)) == 3  # three features, three different vector keys
