"""Fault injection on the store: kill -9 mid-build, damaged entries, read-only and full disks.

Every case asserts the same three things: no run serves wrong references (each served
row is the builder's answer for its question), nothing temporary is left or listed, and
the next run recovers on its own.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import datasets
import pytest

from ground_truth import store as store_module
from ground_truth.cache import DATA, MANIFEST, ReferenceKey, ReferenceStore
from ground_truth.errors import IntrospectError
from ground_truth.store import CHECKSUMS, build_once, write_checksums
from harness_plugins.commands.cli import main

QUESTIONS = datasets.Dataset.from_dict(
    {"question_id": [f"q{i}" for i in range(10)], "x": list(range(10))}
)
KEY = ReferenceKey.make("toy", "1", {"a": 1}, "f" * 16, 0)


def doubling(calls: list | None = None):
    def build(rows):
        if calls is not None:
            calls.append(list(rows["x"]))
        return rows.add_column("target", [str(2 * x) for x in rows["x"]])

    return build


def assert_right(dataset, rows: int | None = None) -> None:
    """Served rows are exactly the builder's answers, in order (never wrong references)."""
    assert dataset["target"] == [str(2 * x) for x in range(len(dataset))]
    assert dataset["question_id"] == [f"q{i}" for i in range(len(dataset))]
    if rows is not None:
        assert len(dataset) == rows


def assert_no_leftovers(root: Path) -> None:
    """Only entries, their lock files and the one version each entry points to."""
    for path in root.iterdir():
        if path.name.startswith(".") and path.name.endswith(".lock"):
            continue
        if path.is_symlink():
            assert (root / os.readlink(path)).is_dir()
            continue
        owner = next(
            (p for p in root.iterdir() if p.is_symlink() and os.readlink(p) == path.name), None
        )
        assert owner is not None, f"leftover {path.name}"


# ---------------------------------------------------------------- kill -9 at every step

KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import datasets
    from ground_truth.cache import ReferenceKey, ReferenceStore
    from ground_truth.store import fault_point

    def build(rows):
        fault_point("building")
        return rows.add_column("target", [str(2 * x) for x in rows["x"]])

    questions = datasets.Dataset.from_dict(
        {"question_id": [f"q{i}" for i in range(10)], "x": list(range(10))}
    )
    key = ReferenceKey.make("toy", "1", {"a": 1}, "f" * 16, 0)
    ReferenceStore(Path(sys.argv[1])).ensure(key, questions, int(sys.argv[2]), build, describe={})
    """
)

POINTS = ("building", "staged", "checksummed", "linked", "switched")


def kill_at(root: Path, point: str, needed: int, tmp_path: Path) -> None:
    """Run a build in a subprocess, SIGKILL it once it reaches ``point``."""
    mark = tmp_path / f"mark-{point}-{needed}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        store_module.FAULT_ENV: point,
        store_module.FAULT_MARK_ENV: str(mark),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(root), str(needed)],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not mark.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the build never reached the fault point"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("old_rows", [0, 3])
def test_a_build_killed_at_any_step_leaves_the_old_or_the_new_entry(tmp_path, point, old_rows):
    root = tmp_path / "refs"
    store = ReferenceStore(root)
    if old_rows:
        store.ensure(KEY, QUESTIONS, old_rows, doubling(), describe={})
    kill_at(root, point, 6, tmp_path)
    found = store.load(KEY)
    if point == "switched":  # the pointer had moved: the new complete entry
        assert_right(found, 6)
    elif old_rows:
        assert_right(found, old_rows)  # the old complete entry, untouched
    else:
        assert found is None
    listed = store.entries()
    assert all(not Path(e["path"]).name.startswith(".") for e in listed)
    assert all(e["problem"] is None for e in listed)
    calls: list = []
    result = store.ensure(KEY, QUESTIONS, 6, doubling(calls), describe={})
    assert_right(result.dataset, 6)
    assert_no_leftovers(root)


# ---------------------------------------------------------------- damaged entries


def _arrow(folder: Path) -> Path:
    return next((folder / DATA).glob("*.arrow"))


def _truncate(folder: Path) -> None:
    file = _arrow(folder)
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip(file: Path, at: int = -40) -> None:
    data = bytearray(file.read_bytes())
    data[at] ^= 0xFF
    file.write_bytes(bytes(data))


def _flip_target(folder: Path) -> None:
    """Same size, one answer changed: only the SHA-256 can tell."""
    file = _arrow(folder)
    data = file.read_bytes()
    at = data.rindex(b"10")  # the target of q5
    file.write_bytes(data[:at] + b"99" + data[at + 2 :])


def _resealed_garbage(folder: Path) -> None:
    """Tampered and re-checksummed: the checksums pass, the dataset does not load."""
    (folder / DATA / "dataset_info.json").write_text("{not json")
    (folder / DATA / "state.json").write_text("{not json")
    write_checksums(folder.resolve())


DAMAGE = {
    "truncated data": _truncate,
    "flipped byte in data": lambda f: _flip(_arrow(f)),
    "changed answer, same size": _flip_target,
    "flipped byte in manifest": lambda f: _flip(f / MANIFEST, at=5),
    "data file deleted": lambda f: _arrow(f).unlink(),
    "checksum file deleted": lambda f: (f / CHECKSUMS).unlink(),
    "checksum file garbage": lambda f: (f / CHECKSUMS).write_text("\x00garbage"),
    "version folder deleted": lambda f: store_module.shutil.rmtree(f.resolve()),
    "unreadable but resealed": _resealed_garbage,
    "old layout (no pointer, no checksum)": lambda f: _old_layout(f),
}


def _old_layout(folder: Path) -> None:
    real = folder.resolve()
    folder.unlink()
    real.rename(folder)
    (folder / CHECKSUMS).unlink()


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_entry_is_reported_removed_and_rebuilt(
    tmp_path, monkeypatch, capsys, caplog, damage
):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    store = ReferenceStore()
    store.ensure(KEY, QUESTIONS, 6, doubling(), describe={"subject": "toy"})
    folder = store.path(KEY)
    DAMAGE[damage](folder)

    assert main(["ground-truth", "verify"]) == 1
    assert "1 broken" in capsys.readouterr().out
    cheap_misses = ("changed answer, same size", "flipped byte in data", "unreadable but resealed")
    if damage not in cheap_misses:  # ls checks sizes and manifests; verify every byte and load
        assert main(["ground-truth", "ls"]) == 0
        assert "BROKEN" in capsys.readouterr().out

    calls: list = []
    with caplog.at_level(logging.WARNING, logger="introspect"):
        result = store.ensure(KEY, QUESTIONS, 6, doubling(calls), describe={})
    warnings = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(warnings) == 1 and folder.name in warnings[0]
    assert calls == [list(range(6))]  # rebuilt from scratch, nothing of the damage kept
    assert_right(result.dataset, 6)
    assert main(["ground-truth", "verify"]) == 0
    assert_no_leftovers(tmp_path / "ground_truth")


def test_rm_removes_a_broken_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    store = ReferenceStore()
    store.ensure(KEY, QUESTIONS, 4, doubling(), describe={})
    (store.path(KEY) / MANIFEST).unlink()
    (entry,) = store.entries()
    assert entry["problem"] and entry["key"] == KEY.digest()
    assert main(["ground-truth", "rm", KEY.digest()]) == 0
    assert store.entries() == [] and store.load(KEY) is None
    assert [p.name for p in (tmp_path / "ground_truth").iterdir()] == []


def test_maps_and_models_are_checked_through_build_once(tmp_path, caplog):
    final = tmp_path / "maps" / "m"
    builds: list = []

    def build(staging: Path) -> None:
        builds.append(1)
        (staging / "map.bin").write_bytes(b"weights" * 100)

    def load(folder: Path):
        return (folder / "map.bin").read_bytes()

    assert build_once(final, load, build) == (b"weights" * 100, True)
    _flip(final / "map.bin")
    with caplog.at_level(logging.WARNING, logger="introspect"):
        value, built = build_once(final, load, build)
    assert value == b"weights" * 100 and built and len(builds) == 2
    assert sum("broken" in r.getMessage() for r in caplog.records) == 1
    assert_no_leftovers(final.parent)


# ---------------------------------------------------------------- read-only and full disks


def read_only(monkeypatch, root: Path, code: int = errno.EROFS) -> None:
    """Every write under ``root`` fails as on a read-only mount (tests run as root)."""
    inside = lambda path: str(Path(path).absolute()).startswith(str(root))  # noqa: E731

    def refuse(path):
        raise OSError(code, os.strerror(code), str(path))

    real_open, real_mkdir = os.open, os.mkdir
    real_replace, real_symlink, real_rename = os.replace, os.symlink, os.rename
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_open(path, flags, *args, **kwargs):
        if flags & writing and inside(path):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            if Path(path).exists():
                raise FileExistsError(errno.EEXIST, "File exists", str(path))
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def guard(real):
        def call(src, dst, *args, **kwargs):
            if inside(dst):
                refuse(dst)
            return real(src, dst, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    monkeypatch.setattr(os, "replace", guard(real_replace))
    monkeypatch.setattr(os, "rename", guard(real_rename))
    monkeypatch.setattr(os, "symlink", guard(real_symlink))


def snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.lstat().st_size) for p in root.rglob("*"))


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_cache_serves_what_it_has_and_refuses_the_rest_in_one_line(
    tmp_path, monkeypatch, code
):
    store = ReferenceStore(tmp_path)
    store.ensure(KEY, QUESTIONS, 4, doubling(), describe={})
    before = snapshot(tmp_path)
    read_only(monkeypatch, tmp_path, code)
    assert_right(store.ensure(KEY, QUESTIONS, 3, doubling(), describe={}).dataset, 4)  # a hit
    with pytest.raises(IntrospectError) as more:
        store.ensure(KEY, QUESTIONS, 8, doubling(), describe={})
    other = ReferenceKey.make("toy", "1", {"a": 2}, "f" * 16, 0)
    with pytest.raises(IntrospectError) as fresh:
        store.ensure(other, QUESTIONS, 2, doubling(), describe={})
    for error in (more.value, fresh.value):
        message = str(error)
        assert "\n" not in message and "cannot write the cache entry" in message
        assert "INTROSPECT_CACHE_DIR" in message
    monkeypatch.undo()
    assert snapshot(tmp_path) == before  # nothing half-written
    assert_right(store.ensure(KEY, QUESTIONS, 8, doubling(), describe={}).dataset, 8)


def _filling(limit_bytes: int):
    """A save_to_disk that writes part of the data and then finds the disk full."""

    def save(self, path, *args, **kwargs):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"\0" * limit_bytes)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return save


def test_a_full_disk_keeps_the_old_entry_and_leaves_nothing_behind(tmp_path, monkeypatch):
    store = ReferenceStore(tmp_path)
    store.ensure(KEY, QUESTIONS, 3, doubling(), describe={})
    before = snapshot(tmp_path)
    monkeypatch.setattr(datasets.Dataset, "save_to_disk", _filling(4096))
    with pytest.raises(IntrospectError, match="No space left on device; free space"):
        store.ensure(KEY, QUESTIONS, 6, doubling(), describe={})
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert_right(store.load(KEY), 3)
    assert_right(store.ensure(KEY, QUESTIONS, 6, doubling(), describe={}).dataset, 6)
    assert_no_leftovers(tmp_path)


def test_a_full_disk_while_writing_checksums_or_maps(tmp_path, monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x"))

    monkeypatch.setattr(store_module, "write_checksums", full)
    with pytest.raises(IntrospectError, match="cannot write the cache entry"):
        ReferenceStore(tmp_path).ensure(KEY, QUESTIONS, 3, doubling(), describe={})
    with pytest.raises(IntrospectError, match="cannot write the cache entry"):
        build_once(tmp_path / "m", lambda f: 1, lambda s: (s / "a").write_text("a"))
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_the_fingerprint_memo_leaves_no_temporary_file_on_a_full_disk(tmp_path, monkeypatch):
    from ground_truth import subject

    monkeypatch.setenv("INTROSPECT_CACHE_DIR", str(tmp_path))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    spec = subject.ModelSpec.from_arguments({"pretrained": str(model)})
    source = subject.ModelSource(str(model), None)
    subject.remember_fingerprint(spec, source, "a" * 16)
    real_fsync = os.fsync

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    (model / "weights.bin").write_text("changed")  # new files: a new memo line to write
    subject.remember_fingerprint(spec, source, "b" * 16)  # no error: the memo only saves time
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not list(tmp_path.glob(".tmp-*"))
    assert json.loads((tmp_path / "fingerprints.json").read_text()) != {}
    assert subject.known_fingerprint(spec, source) is None
