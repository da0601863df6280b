"""Every explanation type builds the same references under every backend.

References are built directly through each type (not through the cache, which would
return the first backend's result): answers identical, numbers within 1e-4.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
from tiny_models import make_model, make_tokenizer

from ground_truth import bundled
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
# numbers computed from the same logits in float32 may differ in the last bits only
TOLERANCE = 1e-4
# weights refitted to probabilities that differ by ~1e-6 move by far less than a unit;
# log-probabilities stored in float16 may round to neighbouring values (one step is 2**-10)
COLUMN_TOLERANCE = {
    "learned_weights": 0.05,
    "reference_weights": 0.05,
    "source_logprobs": 2**-10,
}


def references(loaded: LoadedModel, backend_name: str, type_name: str, overrides: dict, count: int):
    registry = get_registry()
    explanation = registry.explanation_type(type_name)
    options = resolve_options(type_name, explanation.all_options(), overrides)
    backend = registry.backend(backend_name)(loaded, batch_size=4, progress=False)
    questions = explanation.questions_for(options, loaded.spec)
    chosen = questions.select(range(min(count, len(questions))))
    return explanation.build_references(chosen, ReferenceContext(loaded, backend, options))


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


def compare(
    loaded: LoadedModel, backend_name: str, type_name: str, overrides: dict, count: int
) -> None:
    expected = references(loaded, "hf", type_name, overrides, count)
    got = references(loaded, backend_name, type_name, overrides, count)
    assert got.column_names == expected.column_names
    for column in expected.column_names:
        for row, (a, b) in enumerate(zip(expected[column], got[column], strict=True)):
            assert_same(a, b, f"{type_name}/{column}[{row}]", column)


@pytest.fixture(params=["gpt2", "llama"], scope="module")
def tiny(request):
    tokenizer = make_tokenizer()
    return LoadedModel(
        ModelSpec(f"tiny-{request.param}"), make_model(request.param, tokenizer), tokenizer
    )


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize(
    ("type_name", "overrides", "count"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_tiny_models_agree(tiny, backend_name, type_name, overrides, count):
    compare(tiny, backend_name, type_name, overrides, count)


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
