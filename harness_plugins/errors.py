"""Errors users read: one line naming the file, the entry and what was expected."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from ground_truth.errors import IntrospectError

__all__ = ["IntrospectError", "install_one_line_errors"]


def _one_line_excepthook(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, IntrospectError) and not os.environ.get("INTROSPECT_TRACEBACK"):
        print(f"introspect: error: {error}", file=sys.stderr)
        return
    _previous_excepthook[0](kind, error, tb)


_previous_excepthook = [sys.excepthook]


def install_one_line_errors() -> None:
    """Show an uncaught `IntrospectError` as one line (``INTROSPECT_TRACEBACK=1``: in full).

    Called by the entry points (the ``introspect`` command, and the lm-eval adapter when
    lm-eval builds introspect tasks), never on import.
    """
    if sys.excepthook is not _one_line_excepthook:
        _previous_excepthook[0] = sys.excepthook
        sys.excepthook = _one_line_excepthook


# ---------------------------------------------------------------- errors about user files


def one_line(text: str) -> str:
    """Newlines escaped, so the one-line error display shows all of a message."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def located_error(*parts: str) -> IntrospectError:
    """``file: where: what``: a bad input file reads as where-then-what."""
    return IntrospectError(one_line(": ".join(parts)))


def field_error(source: str, where: str, field: str | None, expected: str) -> IntrospectError:
    """File, entry, field and what was expected, on one line."""
    parts = [source, where] if field is None else [source, where, f"field {field!r}"]
    return located_error(*parts, expected)


def read_user_file(file: Path, expected: str) -> str:
    """A user file's UTF-8 text; missing, unreadable or not text is one line naming the file."""
    source = str(file)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise located_error(source, "file not found", expected) from None
    except UnicodeDecodeError as error:
        raise located_error(source, f"not UTF-8 text at byte {error.start}", expected) from None
    except OSError as error:
        raise located_error(
            source, "cannot read file", error.strerror or type(error).__name__
        ) from None


def json_type(value: object) -> str:
    """The JSON name of a value's type: users wrote JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__
