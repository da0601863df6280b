"""The maps benchmark runs at a tiny size and counts what it claims: one read per model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import cross_model_maps


def test_the_benchmark_fits_every_pair_both_ways(
    tiny_llama: Path,
    tiny_gpt2: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    cross_model_maps.main(
        ["--subject", str(tiny_llama), "--explainer", str(tiny_gpt2), "--texts", "150"]
    )
    out = capsys.readouterr().out
    assert "2 layer pairs" in out
    per_pair = next(line for line in out.splitlines() if line.strip().startswith("per_pair "))
    shared = next(line for line in out.splitlines() if line.strip().startswith("shared "))
    assert per_pair.endswith("forward passes 4")  # two per pair
    assert shared.endswith("forward passes 2")  # one per model
    difference = float(out.split("largest weight difference")[1])
    assert difference < 1e-3
