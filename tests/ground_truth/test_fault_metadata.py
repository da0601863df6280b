"""Cache metadata as hostile input: checksums, manifests, the fingerprint memo and locks.

Each case damages what the cache reads back, then asserts the class of outcome: `verify`
reports the entry broken (exit 1), `ls` marks it, the next build warns once, removes and
rebuilds it; never a traceback, never a file outside the entry read or written, never a
hang (an alarm turns one into a failure), and nothing half-written left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
from pathlib import Path

import pytest
from test_faults import KEY, QUESTIONS, assert_no_leftovers, assert_right, doubling

from ground_truth import fingerprint_memo, subject
from ground_truth.cache import MANIFEST, ReferenceStore
from ground_truth.store import CHECKSUMS, build_once, lock_path
from harness_plugins.commands.cli import main

SECRET = b"a file outside the cache"


class Hung(BaseException):
    """Raised by the alarm: a BaseException, so that no ``except OSError`` swallows it."""


@pytest.fixture(autouse=True)
def no_hang():
    """Fail a case that would hang (a FIFO or /dev/zero read) instead of hanging the suite."""

    def hung(*_args):
        raise Hung("hung reading the cache")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(entry: Path) -> Path:
    return entry.resolve()


def _arrow_name(entry: Path) -> str:
    version = _version(entry)
    return str(next((version / "data").glob("*.arrow")).relative_to(version))


def _table(entry: Path) -> dict:
    return json.loads((_version(entry) / CHECKSUMS).read_text())


def _write_table(entry: Path, table: dict) -> None:
    (_version(entry) / CHECKSUMS).write_text(json.dumps(table))


def _reseal(entry: Path) -> None:
    """Checksums that match the tampered files, as a hostile writer would leave them."""
    version = _version(entry)
    table = {
        str(f.relative_to(version)): [f.stat().st_size, _sha(f.read_bytes())]
        for f in sorted(version.rglob("*"))
        if f.is_file() and not f.is_symlink() and f.name != CHECKSUMS
    }
    _write_table(entry, table)


def _outside(entry: Path) -> Path:
    file = entry.parent.parent / "outside.bin"
    file.write_bytes(SECRET)
    return file


def _value(value):
    def damage(entry: Path) -> None:
        table = _table(entry)
        table[_arrow_name(entry)] = value
        _write_table(entry, table)

    return damage


def _extra_key(name_of):
    """Add a checksum key that names a file outside the entry, with its right size and hash."""

    def damage(entry: Path) -> None:
        outside = _outside(entry)
        name = name_of(entry, outside)
        size, digest = (0, "0" * 64) if name == "/dev/zero" else (len(SECRET), _sha(SECRET))
        _write_table(entry, {**_table(entry), name: [size, digest]})

    return damage


def _replace_with(make):
    def damage(entry: Path) -> None:
        file = _version(entry) / CHECKSUMS
        file.unlink()
        make(file)

    return damage


def _link_data_to(target_of):
    def damage(entry: Path) -> None:
        name = _arrow_name(entry)
        target = target_of(entry)
        (_version(entry) / name).unlink()
        (_version(entry) / name).symlink_to(target)
        data = b"" if str(target) == "/dev/zero" else SECRET
        _write_table(entry, {**_table(entry), name: [len(data), _sha(data)]})

    return damage


def _manifest(value):
    def damage(entry: Path) -> None:
        (_version(entry) / MANIFEST).write_text(json.dumps(value))
        _reseal(entry)

    return damage


def _unlisted_fifo_manifest(entry: Path) -> None:
    (_version(entry) / MANIFEST).unlink()
    os.mkfifo(_version(entry) / MANIFEST)
    _reseal(entry)


DAMAGE = {
    "checksum value an int": _value(5),
    "checksum value null": _value(None),
    "checksum size a string": _value(["12", "0" * 64]),
    "checksum value too short": _value([1]),
    "checksum negative size": _value([-1, "0" * 64]),
    "checksum table a list": lambda e: (_version(e) / CHECKSUMS).write_text("[1, 2]"),
    "checksum table nested too deeply": lambda e: (_version(e) / CHECKSUMS).write_text(
        "[" * 200_000 + "]" * 200_000
    ),
    "checksum table not UTF-8": lambda e: (_version(e) / CHECKSUMS).write_bytes(b'{"\xff": 1}'),
    "checksum key ../outside": _extra_key(lambda e, o: os.path.relpath(o, _version(e))),
    "checksum key absolute": _extra_key(lambda e, o: str(o)),
    "checksum key /dev/zero": _extra_key(lambda e, o: "/dev/zero"),
    "checksum file a FIFO": _replace_with(os.mkfifo),
    "checksum file a folder": _replace_with(lambda f: f.mkdir()),
    "checksum file a link outside": _replace_with(lambda f: f.symlink_to(_outside(f.parent))),
    "data file a link to /dev/zero": _link_data_to(lambda e: Path("/dev/zero")),
    "data file a link outside": _link_data_to(_outside),
    "pointer leads outside": lambda e: (e.unlink(), e.symlink_to(_version(e))),
    "manifest a list": _manifest([1]),
    "manifest of wrong value types": _manifest({"rows": "many", "updated": 5, "key": None}),
    "manifest empty": _manifest({}),
    "manifest of another entry": lambda e: _manifest(
        {**json.loads((e / MANIFEST).read_text()), "key": "0" * 16}
    )(e),
    "manifest rows disagree": lambda e: _manifest(
        {**json.loads((e / MANIFEST).read_text()), "rows": 2}
    )(e),
    "manifest a FIFO, unlisted": _unlisted_fifo_manifest,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_hostile_metadata_is_a_broken_entry_rebuilt(tmp_path, monkeypatch, capsys, caplog, damage):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    store = ReferenceStore()
    store.ensure(KEY, QUESTIONS, 6, doubling(), describe={"subject": "toy"})
    folder = store.path(KEY)
    DAMAGE[damage](folder)

    assert main(["ground-truth", "verify"]) == 1
    out = capsys.readouterr().out
    assert "1 broken" in out and f"BROKEN ground_truth/{folder.name}: " in out
    assert main(["ground-truth", "ls"]) == 0
    if damage != "manifest rows disagree":  # ls reads manifests, never the data
        assert "BROKEN" in capsys.readouterr().out

    calls: list = []
    with caplog.at_level(logging.WARNING, logger="introspect"):
        result = store.ensure(KEY, QUESTIONS, 6, doubling(calls), describe={})
    warnings = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(warnings) == 1 and folder.name in warnings[0], warnings
    assert calls == [list(range(6))]  # rebuilt from scratch
    assert_right(result.dataset, 6)
    assert main(["ground-truth", "verify"]) == 0
    assert_no_leftovers(tmp_path / "cache" / "ground_truth")
    outside = tmp_path / "cache" / "outside.bin"
    assert not outside.exists() or outside.read_bytes() == SECRET


def test_a_damaged_artifact_is_found_by_verify(tmp_path, monkeypatch, capsys):
    from ground_truth.artifacts import artifact_path, cached_artifact

    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    assert cached_artifact("toy", {"a": 1}, lambda: [1.0, 2.0]) == [1.0, 2.0]
    assert main(["ground-truth", "verify"]) == 0
    assert "1 cache entries checked" in capsys.readouterr().out
    value = artifact_path("toy", {"a": 1}) / "value.pt"
    value.write_bytes(b"\0" * value.stat().st_size)  # zeroed in place, same size
    assert main(["ground-truth", "verify"]) == 1
    assert "BROKEN artifacts/toy-" in capsys.readouterr().out


# ---------------------------------------------------------------- locks


LOCKS = {
    "a folder": lambda lock, out: lock.mkdir(),
    "a folder with files": lambda lock, out: (lock.mkdir(), (lock / "x").write_text("x")),
    "a link outside": lambda lock, out: lock.symlink_to(out),
    "a dangling link": lambda lock, out: lock.symlink_to(out.parent / "nowhere" / "x"),
    "a FIFO": lambda lock, out: os.mkfifo(lock),
}


@pytest.mark.parametrize("kind", LOCKS)
def test_a_lock_path_that_is_not_a_file_is_replaced_with_one_warning(tmp_path, caplog, kind):
    final = tmp_path / "cache" / "maps" / "m"
    final.parent.mkdir(parents=True)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(SECRET)
    LOCKS[kind](lock_path(final), outside)
    with caplog.at_level(logging.WARNING, logger="introspect"):
        found = build_once(
            final, lambda f: (f / "a").read_text(), lambda s: (s / "a").write_text("v")
        )
    assert found == ("v", True)
    assert sum("lock" in r.getMessage() for r in caplog.records) == 1
    assert outside.read_bytes() == SECRET
    assert lock_path(final).is_file() and not lock_path(final).is_symlink()
    assert_no_leftovers(final.parent)


# ---------------------------------------------------------------- the fingerprint memo


def _memo_case(tmp_path, monkeypatch):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = subject.ModelSpec.from_arguments({"pretrained": str(model)})
    source = subject.ModelSource(str(model), None)
    memo = fingerprint_memo._memo_path()
    memo.parent.mkdir(parents=True)
    fingerprint_memo._memo_warned.clear()
    return spec, source, memo


MEMOS = {
    "a list": lambda memo, key: memo.write_text("[1]"),
    "a fingerprint of the wrong type": lambda memo, key: memo.write_text(json.dumps({key: 5})),
    "a fingerprint that is a path": lambda memo, key: memo.write_text(json.dumps({key: "../x"})),
    "nested too deeply": lambda memo, key: memo.write_text("[" * 200_000 + "]" * 200_000),
    "not UTF-8": lambda memo, key: memo.write_bytes(b"\xff\xfe"),
    "a FIFO": lambda memo, key: os.mkfifo(memo),
    "a folder": lambda memo, key: memo.mkdir(),
    "its lock a folder": lambda memo, key: lock_path(memo).mkdir(),
}


@pytest.mark.parametrize("kind", MEMOS)
def test_a_malformed_fingerprint_memo_counts_as_empty_and_is_rewritten(
    tmp_path, monkeypatch, caplog, kind
):
    spec, source, memo = _memo_case(tmp_path, monkeypatch)
    other = "c" * 16
    MEMOS[kind](memo, subject.files_key(spec, source))
    with caplog.at_level(logging.WARNING, logger="introspect"):
        assert subject.known_fingerprint(spec, source) is None
        assert subject.known_fingerprint(spec, source) is None  # warned once, not per call
    assert sum("memo" in r.getMessage() for r in caplog.records) <= 1
    subject.remember_fingerprint(spec, source, other)
    assert subject.known_fingerprint(spec, source) == other
    assert json.loads(memo.read_text()) == {subject.files_key(spec, source): other}
    assert not list(memo.parent.glob(".tmp-*"))


def test_sound_memo_lines_survive_a_bad_one(tmp_path, monkeypatch, caplog):
    spec, source, memo = _memo_case(tmp_path, monkeypatch)
    memo.write_text(json.dumps({"k1": "a" * 16, "k2": ["not", "a", "fingerprint"]}))
    with caplog.at_level(logging.WARNING, logger="introspect"):
        assert subject.known_fingerprint(spec, source) is None
    assert "1 values that are not fingerprints" in caplog.text
    subject.remember_fingerprint(spec, source, "b" * 16)
    assert json.loads(memo.read_text()) == {
        "k1": "a" * 16,
        subject.files_key(spec, source): "b" * 16,
    }
