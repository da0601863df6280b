"""Every store the package writes is checksummed, checked on read, and walked by `verify`
and `ls`: artifacts damaged in place are rebuilt (one warning), never served.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from ground_truth import artifacts
from ground_truth.artifacts import artifact_path, cached_artifact
from ground_truth.inventory import MEMO, STORES, loaders
from ground_truth.store import atomic_directory, exclusive, write_checksums
from harness_plugins.commands.cli import main
from harness_plugins.references import ReferencePipeline

VALUE = torch.arange(1.0, 65.0)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(root))
    return root


def broken_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is broken" in r.getMessage()]


def test_an_artifact_zeroed_in_place_is_rebuilt_never_served(cache, caplog, capsys):
    calls: list[int] = []

    def compute():
        calls.append(1)
        return VALUE.clone()

    assert torch.equal(cached_artifact("toy", {"a": 1}, compute), VALUE)
    file = artifact_path("toy", {"a": 1}) / "value.pt"
    size = file.stat().st_size
    torch.save(torch.zeros(64), file)  # zeroed in place: same size, valid file
    assert file.stat().st_size == size
    assert main(["ground-truth", "verify"]) == 1
    assert "BROKEN artifacts/toy-" in capsys.readouterr().out
    with caplog.at_level(logging.WARNING, logger="introspect"):
        served = cached_artifact("toy", {"a": 1}, compute)
    assert torch.equal(served, VALUE) and len(calls) == 2
    assert len(broken_warnings(caplog)) == 1 and "does not match its checksum" in caplog.text
    assert main(["ground-truth", "verify"]) == 0


def test_an_artifact_copied_under_another_key_is_rebuilt(cache, caplog):
    cached_artifact("toy", {"a": 1}, lambda: VALUE.clone())
    cached_artifact("toy", {"a": 2}, lambda: -VALUE)
    one, two = artifact_path("toy", {"a": 1}), artifact_path("toy", {"a": 2})
    for name in ("value.pt", "key.json"):  # a whole sound entry under the other name
        shutil.copy(one.resolve() / name, two.resolve() / name)
    write_checksums(two.resolve())
    with caplog.at_level(logging.WARNING, logger="introspect"):
        assert torch.equal(cached_artifact("toy", {"a": 2}, lambda: -VALUE), -VALUE)
    assert "names another artifact" in caplog.text and len(broken_warnings(caplog)) == 1


def _entry(final: Path) -> None:
    with exclusive(final), atomic_directory(final) as staging:
        (staging / "data.bin").write_bytes(b"sound data")


def test_verify_and_ls_walk_every_store(cache, capsys):
    for store in loaders():
        _entry(cache / store / f"{store}-v1-{'f' * 16}-{'0' * 16}")
    (cache / MEMO).write_text("[1]")
    for store in loaders():  # damaged: another size, so that a sizes-only read sees it too
        (next((cache / store).glob(".*@*")) / "data.bin").write_bytes(b"damaged")
    assert main(["ground-truth", "verify"]) == 1
    out = capsys.readouterr().out
    assert "5 cache entries checked" in out and "5 broken" in out
    for store in STORES:
        assert f"BROKEN {store}" in out, store
    assert main(["ground-truth", "ls"]) == 0
    out = capsys.readouterr().out
    assert out.count("BROKEN") == 5 and "fingerprints.json: 1 file (1 broken)" in out


def zeroed(value):
    if torch.is_tensor(value):
        return torch.zeros_like(value)
    if isinstance(value, (list, tuple)):
        return type(value)(zeroed(v) for v in value)
    if isinstance(value, dict):
        return {k: zeroed(v) for k, v in value.items()}
    return value


def test_features_never_use_a_zeroed_concept_pool(tiny_llama, cache, caplog):
    """The concept pool is an artifact: zeroed in place, it is rebuilt, and the features
    references are the same as those built from the sound pool."""
    metadata = {"pretrained": str(tiny_llama), "simulation": False}
    first = ReferencePipeline("features", metadata, model_arguments=[]).ensure(3)
    pools = list((cache / "artifacts").glob("concept-pool-*"))
    assert pools
    for pool in pools:
        file = pool / "value.pt"
        size = file.stat().st_size
        torch.save(zeroed(torch.load(file, weights_only=True)), file)
        assert file.stat().st_size == size
    shutil.rmtree(cache / "ground_truth")  # the references are built again from the pool
    before = len(artifacts.built_artifacts)
    with caplog.at_level(logging.WARNING, logger="introspect"):
        again = ReferencePipeline("features", metadata, model_arguments=[]).ensure(3)
    assert artifacts.built_artifacts[before:] == ["concept-pool"] * len(pools)
    assert len(broken_warnings(caplog)) == len(pools)
    assert json.dumps(list(again), default=str) == json.dumps(list(first), default=str)
    assert {p.name for p in cache.iterdir() if not p.name.startswith(".")} <= set(STORES)
