"""One exception type for bad input, shown to users as one line instead of a traceback."""

from __future__ import annotations

import os
import sys
from types import TracebackType


class IntrospectError(ValueError):
    """Bad input or environment: the message names what is wrong and how to fix it."""


def _one_line_excepthook(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, IntrospectError) and not os.environ.get("INTROSPECT_TRACEBACK"):
        print(f"introspect: error: {error}", file=sys.stderr)
        return
    _previous_excepthook(kind, error, tb)


_previous_excepthook = sys.excepthook
if sys.excepthook is not _one_line_excepthook:
    sys.excepthook = _one_line_excepthook
