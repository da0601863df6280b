"""What every ``introspect`` subcommand shares: tables, task names, --metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from harness_plugins.errors import IntrospectError
from harness_plugins.references import type_name_of


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def type_name(task_or_type: str) -> str:
    """``introspect_input_ablation`` or ``input_ablation`` -> ``input_ablation``."""
    return type_name_of(task_or_type)


def metadata_option(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise IntrospectError(
            f"--metadata is not valid JSON ({error}); example: '{{\"seed\": 1}}'"
        ) from None
    if not isinstance(value, dict):
        raise IntrospectError("--metadata must be a JSON object, e.g. '{\"seed\": 1}'")
    return value
