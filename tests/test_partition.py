"""Train/test partitions: stable by key, independent of seeds and hash randomization."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness_plugins.partition import partition_of, select

KEYS = [f"item-{i:04d}" for i in range(3000)]


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_sizes_follow_the_fraction(fraction):
    share = sum(partition_of(k, fraction) == "test" for k in KEYS) / len(KEYS)
    assert abs(share - fraction) < 0.04


def test_stable_and_monotone():
    first = [partition_of(k, 0.25) for k in KEYS]
    assert first == [partition_of(k, 0.25) for k in KEYS]
    larger = [partition_of(k, 0.5) for k in KEYS]
    assert all(b == "test" for a, b in zip(first, larger, strict=True) if a == "test")
    assert {partition_of(k, 0.0) for k in KEYS} == {"train"} and {
        partition_of(k, 1.0) for k in KEYS
    } == {"test"}


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), True])
def test_bad_fractions_are_refused(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        partition_of("item", fraction)
    with pytest.raises(TypeError):
        partition_of(17, 0.5)  # type: ignore[arg-type]


def test_independent_of_hash_seed():
    code = "from harness_plugins.partition import partition_of; print(''.join(partition_of(f'item-{i:04d}', 0.3)[1] for i in range(500)))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1", "4242")
    }
    assert len(outputs) == 1


def test_select_keeps_one_partition_in_a_seeded_order():
    options = {"partition": "test", "test_fraction": 0.3, "seed": 1, "max_docs": 50}
    chosen = select(KEYS, str, options, "type")
    assert len(chosen) == 50 and all(partition_of(k, 0.3) == "test" for k in chosen)
    assert chosen == select(KEYS, str, options, "type")
    assert chosen != select(KEYS, str, {**options, "seed": 2}, "type")
    assert chosen != select(KEYS, str, options, "other-type")
    train = select(KEYS, str, {**options, "partition": "train", "max_docs": 10_000}, "type")
    assert not set(train) & set(select(KEYS, str, {**options, "max_docs": 10_000}, "type"))
