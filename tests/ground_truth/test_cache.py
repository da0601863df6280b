"""Reference datasets on disk: keyed, grown by prefix, written atomically, listed and removed."""

from __future__ import annotations

import datasets
import pytest

from ground_truth.cache import ReferenceKey, ReferenceStore
from harness_plugins.commands.cli import main

QUESTIONS = datasets.Dataset.from_dict(
    {"question_id": [f"q{i}" for i in range(10)], "x": list(range(10))}
)


def key(**changes):
    base = {
        "explanation_type": "toy",
        "type_version": "1",
        "options": {"a": 1},
        "subject_fingerprint": "f" * 16,
        "seed": 0,
    }
    base.update(changes)
    return ReferenceKey.make(**base)


def doubling(calls):
    def build(rows):
        calls.append(list(rows["x"]))
        return rows.add_column("target", [str(2 * x) for x in rows["x"]])

    return build


def test_key_depends_on_type_version_options_subject_and_seed():
    digests = {
        key().digest(),
        key(explanation_type="other").digest(),
        key(type_version="2").digest(),
        key(options={"a": 2}).digest(),
        key(subject_fingerprint="e" * 16).digest(),
        key(seed=1).digest(),
    }
    assert len(digests) == 6
    assert key(options={"a": 1, "seed": 5}).digest() == key().digest()  # seed counts once


def test_entries_grow_by_prefix_and_are_reused(tmp_path):
    store = ReferenceStore(tmp_path)
    calls = []
    first = store.ensure(key(), QUESTIONS, 4, doubling(calls), describe={"subject": "toy"})
    assert first.built_rows == 4 and len(first.dataset) == 4
    again = store.ensure(key(), QUESTIONS, 3, doubling(calls), describe={"subject": "toy"})
    assert again.built_rows == 0 and len(calls) == 1
    more = store.ensure(key(), QUESTIONS, 7, doubling(calls), describe={"subject": "toy"})
    assert more.built_rows == 3 and calls[-1] == [4, 5, 6]
    assert more.dataset["target"] == [str(2 * x) for x in range(7)]
    capped = store.ensure(key(), QUESTIONS, 50, doubling(calls), describe={"subject": "toy"})
    assert len(capped.dataset) == 10
    manifest = store.entries()[0]
    assert (
        manifest["rows"] == 10
        and manifest["subject"] == "toy"
        and manifest["key"] == key().digest()
    )


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    store = ReferenceStore(tmp_path)

    def failing(rows):
        raise RuntimeError("subject crashed")

    with pytest.raises(RuntimeError):
        store.ensure(key(), QUESTIONS, 4, failing, describe={})
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    assert store.load(key()) is None


def test_a_failed_extension_keeps_the_earlier_rows(tmp_path):
    store = ReferenceStore(tmp_path)
    store.ensure(key(), QUESTIONS, 3, doubling([]), describe={})

    def failing(rows):
        raise RuntimeError("subject crashed")

    with pytest.raises(RuntimeError):
        store.ensure(key(), QUESTIONS, 6, failing, describe={})
    assert len(store.load(key())) == 3
    assert not list(tmp_path.glob(".tmp-*"))


def test_ground_truth_ls_and_rm_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    store = ReferenceStore()
    store.ensure(key(), QUESTIONS, 2, doubling([]), describe={"subject": "toy-model"})
    store.ensure(key(seed=3), QUESTIONS, 2, doubling([]), describe={"subject": "toy-model"})
    assert main(["ground-truth", "ls"]) == 0
    listing = capsys.readouterr().out
    assert (
        "toy-model" in listing and key().digest() in listing and "2 reference datasets" in listing
    )
    assert main(["ground-truth", "rm", key().digest()[:6]]) == 0
    assert [e["key"] for e in store.entries()] == [key(seed=3).digest()]
    assert main(["ground-truth", "rm", "nosuchkey"]) == 2
    assert "no reference dataset with key nosuchkey" in capsys.readouterr().err
    assert main(["ground-truth", "rm", "--all"]) == 0
    assert store.entries() == []


def test_cache_files_follow_the_umask_so_a_group_can_share_them(tmp_path):
    import os
    import stat

    from ground_truth.store import atomic_directory, write_file_atomically

    old = os.umask(0o027)
    try:
        write_file_atomically(tmp_path / "memo.json", "{}")
        with atomic_directory(tmp_path / "entry") as staging:
            (staging / "data.arrow").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "memo.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "entry").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "entry" / "data.arrow").stat().st_mode) == 0o640
