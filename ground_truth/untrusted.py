"""Reading back what the cache wrote, as untrusted input.

A cache folder may be shared, copied, damaged or tampered with, so nothing read from it is
trusted: metadata files (checksums, manifests, the fingerprint memo) must be small regular
files holding JSON of the expected shape, and every file a checksum table names must be a
regular file inside its entry, reached without following a link. Whatever fails is a
*problem* (a short reason), which the store reports in one warning before it removes and
rebuilds the entry; nothing here raises for bad content, hangs on a FIFO or a device, or
reads outside the entry.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any

MAX_METADATA_BYTES = 64 << 20
"""A metadata file larger than this is not one we wrote."""
SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOCK = 1 << 20


class UntrustedError(ValueError):
    """Bad content read back from the cache; the message (``is ...``) completes a subject."""


def _reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "is a symbolic link"
    return f"is unreadable ({error.strerror or type(error).__name__})"


def _open_regular(path: str | Path, dir_fd: int | None = None) -> int:
    """A read descriptor of the regular file ``path``: never a link, a FIFO or a device."""
    try:
        descriptor = os.open(
            path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except FileNotFoundError:
        raise
    except OSError as error:
        raise UntrustedError(_reason(error)) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UntrustedError("is not a regular file")
    return descriptor


def read_json(path: Path, limit: int = MAX_METADATA_BYTES) -> Any:
    """The JSON in the metadata file ``path``.

    Raises FileNotFoundError when it is absent and `UntrustedError` when it is not a
    regular file, is larger than ``limit``, is not UTF-8 or is not JSON (nested too
    deeply included).
    """
    descriptor = _open_regular(path)
    try:
        size = os.fstat(descriptor).st_size
        if size > limit:
            raise UntrustedError(f"is {size} bytes, larger than any the cache writes")
        data = b"".join(iter(lambda: os.read(descriptor, _BLOCK), b""))[: limit + 1]
    except OSError as error:
        raise UntrustedError(_reason(error)) from None
    finally:
        os.close(descriptor)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UntrustedError(f"is not valid JSON ({type(error).__name__})") from None


def member_name_problem(name: Any) -> str | None:
    """None for a plain relative path inside an entry, else why ``name`` is not one."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        return f"names {name!r}, not a file name"
    path = PurePosixPath(name)
    if path.is_absolute() or str(path) != name or any(p in ("..", ".") for p in path.parts):
        return f"names {name!r}, a path outside its entry"
    return None


def checksum_rows(table: Any) -> list[tuple[str, int, str]]:
    """``(name, size, sha256)`` rows of a checksum table; `UntrustedError` if malformed."""
    if not isinstance(table, dict) or not table:
        raise UntrustedError("is empty or not a table")
    rows = []
    for name, value in sorted(table.items()):
        problem = member_name_problem(name)
        if problem:
            raise UntrustedError(problem)
        if (
            not isinstance(value, list)
            or len(value) != 2
            or type(value[0]) is not int
            or value[0] < 0
            or not isinstance(value[1], str)
            or not SHA256.fullmatch(value[1])
        ):
            raise UntrustedError(f"has {value!r} for {name}, not [size, sha256]")
        rows.append((name, value[0], value[1]))
    return rows


def member_problem(folder: Path, name: str, size: int, sha256: str, full: bool) -> str | None:
    """None when ``folder/name`` is a regular file inside ``folder`` with this size (and hash).

    Every folder on the way is opened without following links, so a link planted in an
    entry can never make the check read outside it.
    """
    *parents, last = PurePosixPath(name).parts
    opened: list[int] = []
    try:
        opened.append(os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        for part in parents:
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            opened.append(os.open(part, flags, dir_fd=opened[-1]))
        opened.append(_open_regular(last, dir_fd=opened[-1]))
        found = os.fstat(opened[-1]).st_size
        if found != size:
            return f"{name} has {found} bytes, {size} were written"
        if full and _sha256(opened[-1]) != sha256:
            return f"{name} does not match its checksum"
    except FileNotFoundError:
        return f"{name} is missing"
    except UntrustedError as error:
        return f"{name} {error}"
    except OSError as error:
        return f"{name} {_reason(error)}"
    finally:
        for descriptor in opened:
            os.close(descriptor)
    return None


def _sha256(descriptor: int) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: os.read(descriptor, _BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()
