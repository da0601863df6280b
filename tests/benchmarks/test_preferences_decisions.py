"""The decisions benchmark runs at a tiny size and counts what it claims."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import preferences_decisions


def test_shared_prefixes_compute_fewer_positions_with_the_same_decisions(
    tiny_llama: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = ["--scenarios", "2", "--pairs", "12", "--batch-size", "8", "--repeats", "1"]
    preferences_decisions.main(["--model", str(tiny_llama), *sizes])
    out = capsys.readouterr().out
    rows = {
        line[:22].strip(): line[22:].split()
        for line in out.splitlines()
        if line.startswith(("plain", "shared")) and not line.startswith("shared, length order vs")
    }
    assert set(rows) == set(preferences_decisions.WAYS)
    positions = {name: int(row[3]) for name, row in rows.items()}
    padding = {name: int(row[4]) for name, row in rows.items()}
    assert positions["shared, length order"] < positions["shared, token order"]
    assert positions["shared, token order"] < positions["plain"]
    assert padding["shared, length order"] < padding["shared, token order"]
    assert all(float(row[5]) <= 1e-5 for row in rows.values())  # P(A) unchanged
