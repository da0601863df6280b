"""The training throughput benchmark runs at a tiny size and the counted work falls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import training_throughput


def test_the_benchmark_prints_both_ways_and_after_computes_less(
    tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "throughput.json"
    training_throughput.main(
        [
            *("--model", str(tiny_llama), "--types", "features", "--limit", "8"),
            *("--batch_size", "4", "--max_steps", "3", "--lora_r", "2", "--repeats", "1"),
            *("--json", str(figures)),
        ]
    )
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"before", "after"} <= rows and "after vs before:" in out
    results = json.loads(figures.read_text())["results"]
    before, after = results["before"], results["after"]
    assert before["tokens_per_step"] == pytest.approx(after["tokens_per_step"], rel=0.25)
    assert after["positions_per_step"] < 0.8 * before["positions_per_step"]
    assert after["padded_per_step"] <= before["padded_per_step"]
    assert after["head_rows_per_step"] <= before["head_rows_per_step"]
    for figures_of_one in (before, after):
        assert figures_of_one["tokens_per_second"] > 0 and figures_of_one["peak_rss_mb"] > 0
