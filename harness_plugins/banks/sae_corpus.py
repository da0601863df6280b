"""The text an SAE's exemplars come from, cut into token windows and read once per subject.

Default: every sentence of the built-in concept bank (its concept and neutral sentences),
the same offline corpus `introspect sae train` trains on. Option ``corpus``: a local
text file (one document per non-empty line) or JSONL file (a ``text`` field per line).
Documents longer than ``window`` tokens are cut into consecutive windows, so an
exemplar is always a short span around where the feature fires.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness_plugins.errors import IntrospectError


def corpus_texts(path: str | None) -> list[str]:
    """The corpus documents: the built-in sentences, or those of a local file."""
    if not path:
        from harness_plugins.banks.concepts import load_concepts

        concepts, neutral = load_concepts(None)
        return [s for c in concepts for s in c.sentences] + list(neutral)
    file = Path(path).expanduser()
    if not file.is_file():
        raise IntrospectError(f"corpus {str(file)!r} does not exist (a .txt or .jsonl file)")
    lines = [line for line in file.read_text().splitlines() if line.strip()]
    if file.suffix != ".jsonl":
        return lines
    texts = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise IntrospectError(f"corpus {file}: line {number} is not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise IntrospectError(f"corpus {file}: line {number} has no string field 'text'")
        texts.append(record["text"])
    if not texts:
        raise IntrospectError(f"corpus {file} holds no text")
    return texts


def token_windows(texts: list[str], tokenizer: Any, window: int) -> list[list[int]]:
    """Each text's token ids, cut into consecutive windows of at most ``window`` tokens."""
    return [w for w, _ in windows_with_origin(texts, tokenizer, window)]


def windows_with_origin(
    texts: list[str], tokenizer: Any, window: int
) -> list[tuple[list[int], int]]:
    """(window, index of the text it was cut from) for every non-empty window."""
    windows = []
    for number, text in enumerate(texts):
        ids = tokenizer(text)["input_ids"]
        windows.extend(
            (ids[start : start + window], number) for start in range(0, len(ids), window)
        )
    return [(w, n) for w, n in windows if w]


def builtin_owners() -> list[str | None]:
    """The concept each built-in corpus text is about (None: a neutral sentence), in corpus order."""
    from harness_plugins.banks.concepts import load_concepts

    concepts, neutral = load_concepts(None)
    return [c.name for c in concepts for _ in c.sentences] + [None] * len(neutral)


def read_windows(subject: Any, backend: Any, at: str, windows: list[list[int]]) -> list[Any]:
    """Activations at every token of site ``at`` for every window, cached per subject and content."""
    from ground_truth.artifacts import cached_artifact, content_digest
    from ground_truth.primitive import Read

    def read() -> list[Any]:
        reads = [Read(at, row, None) for row in range(len(windows))]
        return backend.forward(
            windows, reads=reads, description="sae: reading the corpus (once)"
        ).reads

    key = {
        "subject": subject.fingerprint,
        "backend": getattr(backend, "name", type(backend).__name__),
        "site": at,
        "windows": content_digest(windows),
    }
    return cached_artifact("sae-corpus", key, read)
