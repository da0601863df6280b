"""Every family builds references at ``--limit 2`` with the hf backend; dtypes agree.

The core types (`support.CORE_TYPES`) run for every family; every built-in type runs for
`support.ALL_TYPES_FAMILIES` (features and injected thoughts on a small concept bank).
float32, bfloat16 and float16 references of llama and gemma3 agree with float32 where the
choices behind them are made by a margin above the lower precision's error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from decisions import margins, record
from families import FAMILIES, loaded_family
from support import ALL_TYPES_FAMILIES, CORE_TYPES

from harness_plugins.explanation import ReferenceContext
from harness_plugins.options import resolve_options
from harness_plugins.registry import get_registry

BANK = Path(__file__).resolve().parents[2] / "harness_plugins" / "banks" / "concepts.json"
SMALL = {"pairs": 4}  # preferences: fewer decision pairs
EVERY_TYPE = {
    "features": {"exemplars": 2},
    "injected_thoughts": {"layers": "1", "strengths": "4"},
}


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory) -> str:
    """Six concepts of the built-in bank: the concept pool reads few sentences."""
    data = json.loads(BANK.read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("bank") / "concepts.json"
    path.write_text(json.dumps({"concepts": data["concepts"][:6], "neutral": data["neutral"][:12]}))
    return str(path)


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))


def build(loaded, type_name: str, overrides: dict, count: int = 2):
    """References of ``count`` questions through the hf backend, and the logits behind them."""
    registry = get_registry()
    explanation = registry.explanation_type(type_name)
    options = resolve_options(type_name, explanation.all_options(), overrides)
    backend = registry.backend("hf")(loaded, batch_size=4, progress=False)
    questions = explanation.questions_for(options, loaded.spec)
    chosen = questions.select(range(min(count, len(questions))))
    with record(backend) as logits:
        built = explanation.build_references(chosen, ReferenceContext(loaded, backend, options))
    return built, logits


CASES = [(family, name) for family in FAMILIES for name in CORE_TYPES] + [
    (family, name) for family in ALL_TYPES_FAMILIES for name in EVERY_TYPE
]


@pytest.mark.parametrize(("family", "type_name"), CASES)
def test_references_build(family, type_name, small_bank):
    loaded = loaded_family(family)
    overrides = {"pairs": 4} if type_name == "preferences" else {}
    overrides.update(EVERY_TYPE.get(type_name, {}))
    if type_name in EVERY_TYPE:
        overrides["concepts"] = small_bank
    if type_name == "patchscope_attributes":
        overrides["only_known"] = False
    built, _ = build(loaded, type_name, overrides)
    assert len(built) >= 1, (family, type_name)


# ---------------------------------------------------------------------- dtypes

DTYPE_TOLERANCE = {torch.bfloat16: 1e-2, torch.float16: 1e-3}
"""Largest difference from float32 logits (tiny random models, logits about 0.1 in size;
measured: bfloat16 up to 4.7e-3, float16 up to 3.7e-4): bfloat16 keeps 8 bits of
mantissa, float16 11."""


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_lower_precision_references_agree_with_float32(family, dtype):
    """Input ablation's letter logits within `DTYPE_TOLERANCE`; its answers equal wherever
    float32 chose by more than twice that; activation patching's patched logits too."""
    tolerance = DTYPE_TOLERANCE[dtype]
    full = loaded_family(family)
    low = loaded_family(family, dtype=dtype)
    assert next(low.model.parameters()).dtype == dtype
    expected, _ = build(full, "input_ablation", {}, 4)
    got, _ = build(low, "input_ablation", {}, 4)
    compared = 0
    for kind in ("hinted", "unhinted"):
        for row in range(len(expected)):
            n = len(expected[row]["choices"])
            a = torch.tensor(got[row][f"{kind}_letter_logits"][:n])
            b = torch.tensor(expected[row][f"{kind}_letter_logits"][:n])
            torch.testing.assert_close(a, b, atol=tolerance, rtol=0)
            if margins(b) > 2 * tolerance:
                compared += 1
                assert a.argmax() == b.argmax(), (family, dtype, row, kind)
    assert compared >= 4, "too few answers made by a margin above the dtype's error"
    with_logits = {}
    for label, loaded in (("full", full), ("low", low)):
        _, logits = build(loaded, "activation_patching", {"window": 2, "first_layer": 0}, 2)
        with_logits[label] = logits.rows
    torch.testing.assert_close(
        with_logits["low"].float(), with_logits["full"].float(), atol=tolerance, rtol=0
    )
