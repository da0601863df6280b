"""Every explanation type builds the same references under every backend.

References are built directly through each type (not through the cache, which would
return the first backend's result): answers identical, numbers within 1e-4. Answers are
greedy choices of random tiny models, so beside them the test checks what makes exact
agreement a fair demand (see `decisions`): every logit row the backend computes is within
`decisions.NUMERIC_ERROR` of one the hf backend computes, and every choice the type makes
wins by more than `decisions.MARGIN` in the hf backend's logits. Both backends run with
one and with two torch threads, whose reductions add in another order.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from decisions import assert_margins, assert_rows_match, record
from sae_helpers import random_sae
from tiny_models import loaded_tiny

from ground_truth import bundled
from ground_truth.sae_format import save_sae
from ground_truth.subject import LoadedModel, ModelSpec, load_model
from harness_plugins.explanation import ReferenceContext
from harness_plugins.options import resolve_options
from harness_plugins.registry import get_registry

BACKENDS = ["transformer_lens"] + (
    ["nnsight"] if importlib.util.find_spec("introspect_nnsight") else []
)
CASES = [
    ("input_ablation", {}, 4),
    ("preferences", {"pairs": 8}, 2),
    ("features", {"exemplars": 2}, 3),
    ("features", {"source": "neurons", "neurons": 8, "exemplars": 2, "test_fraction": 0.5}, 2),
    ("activation_patching", {"window": 2, "first_layer": 0}, 3),
    ("patchscope_next_token", {}, 3),
    ("patchscope_attributes", {"only_known": False}, 3),
    ("injected_thoughts", {}, 2),
]
# which logits each type takes an argmax of: the letters' (read from its references),
# every row of its forward passes (and its float16 log-probabilities, when it stores
# them), or the greedy steps of its generations
CHOICES = {
    "input_ablation": "letters",
    "activation_patching": "forward",
    "patchscope_next_token": "forward",
    "patchscope_attributes": "generate",
}
# numbers computed from the same logits in float32 may differ in the last bits only
TOLERANCE = 1e-4
# weights refitted to probabilities that differ by ~1e-6 move by far less than a unit;
# log-probabilities stored in float16 may round to neighbouring values (one step is 2**-10)
COLUMN_TOLERANCE = {
    "learned_weights": 0.05,
    "reference_weights": 0.05,
    "source_logprobs": 2**-10,
    # activations rounded to 4 decimals may round to neighbouring values
    "top_exemplars": 1.5e-4,
    "random_exemplars": 1.5e-4,
}


def references(loaded: LoadedModel, backend_name: str, type_name: str, overrides: dict, count: int):
    """The references, and the logits of every pass the backend ran to build them."""
    registry = get_registry()
    explanation = registry.explanation_type(type_name)
    options = resolve_options(type_name, explanation.all_options(), overrides)
    backend = registry.backend(backend_name)(loaded, batch_size=4, progress=False)
    questions = explanation.questions_for(options, loaded.spec)
    chosen = questions.select(range(min(count, len(questions))))
    with record(backend) as logits:
        built = explanation.build_references(chosen, ReferenceContext(loaded, backend, options))
    return built, logits


def assert_same(left, right, path: str, column: str) -> None:
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) and math.isnan(right):
            return
        tolerance = COLUMN_TOLERANCE.get(column, TOLERANCE) * max(1.0, abs(left))
        assert abs(left - right) <= tolerance, f"{path}: {left} != {right}"
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), f"{path}: lengths {len(left)} != {len(right)}"
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{path}[{i}]", column)
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            assert_same(left[key], right[key], f"{path}.{key}", column)
    else:
        assert left == right, f"{path}: {left!r} != {right!r}"


def choice_logits(type_name: str, built, logits) -> list[torch.Tensor]:
    """The logit rows whose argmax the type turned into an answer (hf's)."""
    kind = CHOICES.get(type_name)
    if kind == "letters":
        return [
            torch.tensor(row[: len(choices)])[None]
            for column in ("hinted_letter_logits", "unhinted_letter_logits")
            for row, choices in zip(built[column], built["choices"], strict=True)
        ]
    if kind == "forward":
        rows = [logits.rows]
        if "source_logprobs" in built.column_names:  # its token: the argmax of these, in float16
            rows.append(torch.tensor(built["source_logprobs"]))
        return rows
    if kind == "generate":
        return [logits.generated]
    return []


def compare(
    loaded: LoadedModel,
    backend_name: str,
    type_name: str,
    overrides: dict,
    count: int,
    reference: tuple | None = None,
) -> tuple:
    """``backend_name``'s references against the hf backend's (``reference``: built already,
    with its logits); returns both backends' logits."""
    expected, hf_logits = reference or references(loaded, "hf", type_name, overrides, count)
    got, logits = references(loaded, backend_name, type_name, overrides, count)
    assert got.column_names == expected.column_names
    for column in expected.column_names:
        for row, (a, b) in enumerate(zip(expected[column], got[column], strict=True)):
            assert_same(a, b, f"{type_name}/{column}[{row}]", column)
    return hf_logits, logits


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    """Each backend computes every pass itself: no artifact (concept pool, attribute probes)
    that an earlier test cached serves one backend's passes and not the other's (the logit
    rows are compared). Not for SmolLM2, whose pool read would then be repeated per test."""
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def tiny(request):
    return loaded_tiny(request.param)


@pytest.fixture(scope="module")
def hf_references():
    """The hf backend's references, built once per model, case and thread count."""
    return {}


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize(
    ("type_name", "overrides", "count"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
@pytest.mark.usefixtures("own_cache")
def test_tiny_models_agree(
    tiny, hf_references, threads, backend_name, type_name, overrides, count, record_property
):
    key = (tiny.spec.pretrained, type_name, repr(overrides), threads)
    if key not in hf_references:
        hf_references[key] = references(tiny, "hf", type_name, overrides, count)
    built, hf_logits = hf_references[key]
    # answers compared exactly must be far from a tie, and the numbers behind them close
    margin = assert_margins(choice_logits(type_name, built, hf_logits), f"{type_name} (hf)")
    record_property("smallest_margin", margin)
    _, logits = compare(tiny, backend_name, type_name, overrides, count, hf_references[key])
    if type_name in CHOICES or hf_logits.rows.numel():
        # (a type that makes no greedy choice may serve its hf passes from a cached artifact)
        error = assert_rows_match(logits.rows, hf_logits.rows, f"{type_name} under {backend_name}")
        record_property("largest_logit_error", error)


@pytest.mark.integration
@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize(
    ("type_name", "overrides", "count"),
    [
        ("input_ablation", {}, 3),
        ("activation_patching", {}, 2),
        ("patchscope_next_token", {"layers": "0,15,29"}, 2),
        ("features", {"exemplars": 2}, 2),
    ],
)
def test_smollm2_agrees(backend_name, type_name, overrides, count):
    loaded = load_model(ModelSpec(bundled.SMOLLM2_ALIAS), get_registry().model_aliases)
    compare(loaded, backend_name, type_name, overrides, count)


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.usefixtures("own_cache")
def test_sae_features_agree(tiny, backend_name, tmp_path):
    """SAE features (an sae-lens folder): the activations behind the exemplars and the
    frequency ranking that picks the features are the same under every backend."""
    folder = tmp_path / "sae"
    width = tiny.model.config.hidden_size
    save_sae(folder, random_sae(d_in=width, d_sae=16, hook="blocks.1.hook_resid_post"))
    overrides = {"source": "sae", "sae": str(folder), "sae_top_k": 4, "exemplars": 2}
    hf_logits, logits = compare(tiny, backend_name, "features", overrides, 3)
    if hf_logits.rows.numel():
        assert_rows_match(logits.rows, hf_logits.rows, f"sae features under {backend_name}")
