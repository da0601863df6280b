"""The one build-once store: everything built once and reused goes through here.

References (`ground_truth.cache`), cross-model maps (`ground_truth.affine_map`), converted
bundled models (`ground_truth.bundled`) and the fingerprint memo (`ground_truth.subject`)
all live under `cache_root` and are written the same way, under a lock beside the entry:

* an entry ``NAME`` is a symlink to a hidden version folder ``.NAME@<id>`` beside it;
* a new version is written into a fresh ``.NAME@<id>``, its checksum file written last
  (size and SHA-256 of every file), fsynced, and then ``NAME`` is switched to it with
  one ``os.replace`` of the symlink; the old version is removed after the switch.

A kill at any instant therefore leaves ``NAME`` pointing at either the old or the new
complete version; versions nothing points at are hidden and removed by the next builder.
Every read checks the checksums first: a missing, truncated, tampered or unreadable
entry is reported in one warning naming it, removed and rebuilt, never served.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ground_truth.errors import IntrospectError
from ground_truth.location import CACHE_ENV, cache_root, check_location, make_folder
from ground_truth.locks import acquire, lock_path
from ground_truth.untrusted import UntrustedError, checksum_rows, member_problem, read_json

logger = logging.getLogger("introspect")

STAGING_PREFIX = ".tmp-"
"""Temporary siblings start with this; listings skip them, builders remove stale ones."""
CHECKSUMS = ".checksums.json"
"""Written last into every entry: ``{relative path: [size, sha256]}`` of its other files."""
FAULT_ENV = "INTROSPECT_FAULT_PAUSE"
"""Test hook: the name of a point in `atomic_directory` at which a builder pauses."""
FAULT_MARK_ENV = "INTROSPECT_FAULT_MARK"
"""Test hook: a file the paused builder writes, so that a test knows when to kill it."""

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})

T = TypeVar("T")


def fault_point(name: str) -> None:
    """Pause here when a fault-injection test asks to (``$INTROSPECT_FAULT_PAUSE``)."""
    if os.environ.get(FAULT_ENV) != name:
        return
    mark = os.environ.get(FAULT_MARK_ENV)
    if mark:
        Path(mark).write_text(name)
    time.sleep(float(os.environ.get("INTROSPECT_FAULT_SECONDS", "120")))


def write_error(final: Path, error: OSError) -> IntrospectError:
    """A read-only or full cache as one line naming the entry and the fix."""
    reason = error.strerror or type(error).__name__
    return IntrospectError(
        f"cannot write the cache entry {final}: {reason}; free space or make the cache "
        f"writable, or point {CACHE_ENV} at a writable folder with room"
    )


@contextlib.contextmanager
def cache_writes(final: Path) -> Iterator[None]:
    """Turn a read-only or full file system under ``final``'s folder into `write_error`."""
    try:
        yield
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        where = getattr(error, "filename", None)
        if where and not _within_cache(Path(where), final):
            raise
        raise write_error(final, error) from None


def _within_cache(path: Path, final: Path) -> bool:
    """Whether ``path`` is ``final``'s folder, inside it, or one of the folders above it."""
    path, folder = path.absolute(), final.parent.absolute()
    return path == folder or folder in path.parents or path in folder.parents


@contextlib.contextmanager
def exclusive(final: Path) -> Iterator[None]:
    """Hold a lock file beside ``final`` so that concurrent builders of it take turns."""
    with cache_writes(final):  # a read-only or full disk, from the first folder on
        make_folder(final.parent)
        lock = acquire(final, label_of(final))
    try:
        yield
    finally:
        lock.release()


def version_prefix(final: Path) -> str:
    return f".{final.name}@"


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot fsync folders; the rename is still atomic
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    """Flush every file (and folder) under ``folder`` to disk before it is switched in."""
    for path in [*folder.rglob("*"), folder]:
        _fsync(path)


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def write_checksums(folder: Path) -> None:
    """Record size and SHA-256 of every file in ``folder``; the entry's last write."""
    table = {
        str(file.relative_to(folder)): [file.stat().st_size, file_sha256(file)]
        for file in _files(folder)
    }
    staging = folder / f"{STAGING_PREFIX}{CHECKSUMS}"
    staging.write_text(json.dumps(table, indent=1, sort_keys=True))
    _fsync(staging)
    os.replace(staging, folder / CHECKSUMS)


def entry_problem(final: Path, full: bool = True) -> str | None:
    """None for a complete entry (or none at all), else what is wrong with it.

    ``full``: compare every file's SHA-256; otherwise only that each file is there with
    its size (cheap, for large entries such as converted models). Everything read back is
    untrusted (`ground_truth.untrusted`): a malformed table, a name outside the entry, a
    link, a FIFO or a device is a problem, never a traceback, a read outside or a hang.
    """
    check_location(final)
    if final.is_symlink():
        target = os.readlink(final)
        if "/" in target or not target.startswith(version_prefix(final)):
            return f"its pointer leads to {target!r}, not to one of its versions"
    if not final.exists():
        return "its data folder is missing" if final.is_symlink() else None
    if not final.is_dir():
        return "it is not a folder"
    try:
        rows = checksum_rows(read_json(final / CHECKSUMS))
    except FileNotFoundError:
        return "it has no checksum (written by an older version or interrupted)"
    except UntrustedError as error:
        return f"its checksum file {error}"
    for name, size, sha256 in rows:
        problem = member_problem(final, name, size, sha256, full)
        if problem is not None:
            return problem
    return None


def label_of(final: Path) -> str:
    """How warnings name an entry: its path under the cache root when it is there."""
    try:
        return str(final.relative_to(cache_root()))
    except ValueError:
        return str(final)


def read_entry(
    final: Path, load: Callable[[Path], T | None], full: bool = True
) -> tuple[T | None, str | None]:
    """(entry, problem): ``load(final)`` after its checksums pass; (None, None) when absent.

    A load that raises or returns None for a present entry is a problem too, never a crash.
    """
    problem = entry_problem(final, full)
    if problem is None and not final.exists():
        return None, None
    if problem is None:
        try:
            found = load(final)
        except UntrustedError as error:  # the loader's own check of what it read back
            return None, str(error)
        except Exception as error:  # a damaged entry must never crash a run
            return None, f"it is unreadable ({type(error).__name__}: {error})"
        if found is not None:
            return found, None
        problem = "it is incomplete"
    return None, problem


def discard(final: Path, problem: str) -> None:
    """Report a broken entry in one warning and remove it (hold `exclusive`)."""
    logger.warning(
        "introspect: cache entry %s is broken (%s); it is removed and rebuilt",
        label_of(final),
        problem,
    )
    remove_entry(final)


def remove_entry(final: Path) -> None:
    """Remove ``final`` and all its versions: unlink the pointer first, then the data."""
    if final.is_symlink():
        final.unlink()
    elif final.exists():
        shutil.rmtree(final, ignore_errors=True)
    remove_stale(final, keep=None)


def remove_stale(final: Path, keep: str | None) -> None:
    """Remove versions of ``final`` other than ``keep`` and temporary leftovers of builds."""
    for path in final.parent.glob(f"{version_prefix(final)}*"):
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in final.parent.glob(f"{STAGING_PREFIX}{final.name}-*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def tidy(final: Path) -> None:
    """Remove what a killed builder left beside a sound ``final``, if no builder is at work.

    Best effort, on a cache hit: skipped while another process holds the lock, and
    silent on a read-only cache (the leftovers are hidden and harmless until then).
    """
    from filelock import FileLock, Timeout

    current = current_version(final)
    stale = [
        p
        for pattern in (f"{version_prefix(final)}*", f"{STAGING_PREFIX}{final.name}-*")
        for p in final.parent.glob(pattern)
        if p.name != current
    ]
    if not stale:
        return
    try:
        with FileLock(str(lock_path(final)), timeout=0):
            remove_stale(final, keep=current_version(final))
    except (Timeout, OSError):
        pass


def current_version(final: Path) -> str | None:
    """The version folder ``final`` points to, if it is a pointer."""
    return os.readlink(final) if final.is_symlink() else None


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a new version folder of ``final``; checksum, fsync and switch to it on success.

    Call it while holding `exclusive(final)`. Leftovers of killed builds are removed
    first; a failed build leaves nothing behind and the previous version in place.
    """
    with cache_writes(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(final, keep=current_version(final))
        version = final.parent / f"{version_prefix(final)}{uuid.uuid4().hex[:12]}"
        version.mkdir()
    switched = False
    pointer = final.parent / f"{STAGING_PREFIX}{final.name}-link-{uuid.uuid4().hex[:8]}"
    try:
        with cache_writes(final):
            yield version
            fault_point("staged")
            write_checksums(version)
            _fsync_tree(version)
            fault_point("checksummed")
            if final.exists() and not final.is_symlink():  # an entry of an older layout
                os.replace(
                    final, final.parent / f"{version_prefix(final)}old-{uuid.uuid4().hex[:12]}"
                )
            os.symlink(version.name, pointer)
            fault_point("linked")
            os.replace(pointer, final)
            switched = True
            _fsync(final.parent)
            fault_point("switched")
        remove_stale(final, keep=version.name)
    except BaseException:
        pointer.unlink(missing_ok=True)
        if not switched:
            shutil.rmtree(version, ignore_errors=True)
        raise


def write_file_atomically(final: Path, text: str) -> None:
    """Write ``text`` to ``final`` through a fsynced temporary sibling (hold `exclusive`)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f"{STAGING_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        with staging.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, final)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def build_once(
    final: Path,
    load: Callable[[Path], T | None],
    build: Callable[[Path], None],
    *,
    full: bool = True,
) -> tuple[T, bool]:
    """(entry, built_now): ``load(final)`` if it gives a sound entry, else ``build`` it once.

    ``build(staging)`` writes the entry's files into a new version folder, which becomes
    ``final`` atomically; a broken entry is reported, removed and rebuilt. ``full``:
    verify every file's SHA-256 on read (else sizes only).
    """
    found, _ = read_entry(final, load, full)
    if found is not None:
        tidy(final)
        return found, False
    with exclusive(final):
        found, problem = read_entry(final, load, full)  # another process may have built it
        if found is not None:
            return found, False
        if problem is not None:
            discard(final, problem)
        with atomic_directory(final) as staging:
            build(staging)
    built, problem = read_entry(final, load, full)
    if built is None:
        raise RuntimeError(f"{final}: built, but the entry does not read back ({problem})")
    return built, True


def entry_paths(root: Path) -> list[Path]:
    """Every entry under ``root`` (pointers and old-layout folders), never temporary ones."""
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if not p.name.startswith(".") and (p.is_symlink() or p.is_dir())
    )
