"""The benchmark's floor must count exactly the token positions the issue defines."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.bench_support import ablation_segments, pack, patching_segments

SYSTEM = [1, 2, 3]  # the chat template's part every prompt shares


def test_patching_positions_match_a_hand_count() -> None:
    donor = ([*SYSTEM, 10, 11, 12, 13, 14], 5)  # read at index 5: 6 tokens needed
    clean = ([*SYSTEM, 20, 21, 22, 23], 4)  # patched from index 4: 3 of 7 tokens
    donor2 = ([*SYSTEM, 30, 31], 3)  # 4 tokens needed
    clean2 = ([*SYSTEM, 40, 41, 42], 5)  # patched from index 5: 1 of 6
    segments = patching_segments([donor, donor2], [clean, clean2])
    # shared prefix 3 once; donors 6-3 + 4-3; cleans 7-3 + 6-3; patched 3 + 1
    assert len(segments.shared) == 3
    assert segments.positions == 3 + (3 + 1) + (4 + 3) + (3 + 1)
    assert len(segments.tokens()) == segments.positions


def test_ablation_positions_share_each_pair_prefix_once() -> None:
    hinted = [*SYSTEM, 5, 6, 7, 8]
    unhinted = [*SYSTEM, 5, 6, 9]
    other = ([*SYSTEM, 4, 7], [*SYSTEM, 4])
    segments = ablation_segments([(hinted, unhinted), other])
    # shared 3; pair one: hinted 4 + unhinted suffix after [5, 6]: 1; pair two: 2 + 0
    assert segments.positions == 3 + 4 + 1 + 2 + 0


def test_pack_keeps_every_position() -> None:
    rows = pack(list(range(10)), 4)
    assert [len(row) for row in rows] == [4, 4, 2]
    assert [token for row in rows for token in row] == list(range(10))
