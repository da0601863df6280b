"""Reference labels of SAE features, read from a Neuronpedia-style export.

Neuronpedia exports explanations as a JSON list of records, each with the feature's
``index`` (a number or a numeric string) and its ``description`` (some exports say
``explanation`` or ``label``); a feature may have several records, and the judge takes
the best match over them. A plain mapping ``{"12": "description"}`` or
``{"12": ["one", "two"]}`` is read too, and so is a JSONL file of such records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError

_TEXT_KEYS = ("description", "explanation", "label")


def _index(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IntrospectError(
            f"SAE labels {where}: feature index {value!r} is not a number"
        ) from None


def _record(record: Any, where: str) -> tuple[int, str]:
    if not isinstance(record, dict) or "index" not in record:
        raise IntrospectError(
            f"SAE labels {where}: every record needs 'index' and 'description', got {record!r:.80}"
        )
    text = next((record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str)), None)
    if text is None:
        raise IntrospectError(f"SAE labels {where}: record {record!r:.80} has no description")
    return _index(record["index"], where), text.strip()


def load_labels(path: str | Path) -> dict[int, list[str]]:
    """Feature index -> its reference descriptions (non-empty, in file order)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise IntrospectError(f"SAE labels file {str(file)!r} does not exist")
    text = file.read_text()
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise IntrospectError(f"SAE labels {file} is neither JSON nor JSONL: {error}") from None
    labels: dict[int, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            texts = [value] if isinstance(value, str) else value
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise IntrospectError(
                    f"SAE labels {file}: {key!r} must map to a description or a list of them"
                )
            labels.setdefault(_index(key, str(file)), []).extend(t.strip() for t in texts)
    elif isinstance(data, list):
        for record in data:
            index, description = _record(record, str(file))
            labels.setdefault(index, []).append(description)
    else:
        raise IntrospectError(f"SAE labels {file}: expected a JSON list or object")
    return {i: [t for t in texts if t] for i, texts in labels.items() if any(texts)}
