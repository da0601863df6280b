"""Destructive commands refuse selectors that are empty or match nothing (exit 2), before
removing anything."""

from __future__ import annotations

import pytest
from test_faults import KEY, QUESTIONS, doubling

from ground_truth.cache import ReferenceKey, ReferenceStore
from harness_plugins.commands.cli import main

OTHER = ReferenceKey.make("other", "1", {"a": 1}, "e" * 16, 0)


@pytest.fixture
def two_entries(tmp_path, monkeypatch) -> ReferenceStore:
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    store = ReferenceStore()
    for key in (KEY, OTHER):
        store.ensure(key, QUESTIONS, 2, doubling(), describe={})
    return store


@pytest.mark.parametrize(
    "argv, says",
    [
        ([""], "empty KEY"),
        ([" "], "empty KEY"),
        (["", "--type", "toy"], "empty KEY"),
        (["--type", ""], "empty KEY or --type"),
        (
            ["--type", "nosuchtype"],
            "no reference dataset of type 'nosuchtype'; cached types: other, toy",
        ),
        (["nosuchkey"], "no reference dataset with key nosuchkey"),
        ([KEY.digest(), "nosuchkey"], "no reference dataset with key nosuchkey"),
        ([], "needs KEY..., --type TYPE or --all"),
    ],
)
def test_rm_refuses_empty_or_unmatched_selectors_and_removes_nothing(
    two_entries, capsys, argv, says
):
    assert main(["ground-truth", "rm", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("introspect: error: ") and "\n" not in err and says in err, err
    assert len(two_entries.entries()) == 2


def test_rm_by_type_and_all_still_work(two_entries, capsys):
    assert main(["ground-truth", "rm", "--type", "toy"]) == 0
    assert [e["explanation_type"] for e in two_entries.entries()] == ["other"]
    assert main(["ground-truth", "rm", "--all"]) == 0
    assert two_entries.entries() == []
    assert main(["ground-truth", "rm", "--all"]) == 0  # all of nothing is not a mistake
    assert capsys.readouterr().out.strip().endswith("0 removed")
