"""Labelled sentences for concept directions and neuron-to-concept matching.

A concept direction is the mean residual-stream activation over a concept's
sentences minus the mean over the neutral sentences, so the neutral pool must
be about nothing in particular: whatever it shares with a concept cancels out.
The same sentences serve as the pool for finding which concept most activates
an MLP neuron and as the top-activating exemplars shown to a simulator.

Concept files are one JSON object::

    {"concepts": [{"name": "ocean", "sentences": ["The waves crashed ...", ...]}, ...],
     "neutral": ["The meeting was moved to the afternoon.", ...]}

The loader rejects anything else with a one-line :class:`IntrospectError` that
names the file, the concept (0-based index and name) and the field, so a
hand-edited file fails at once instead of silently skewing a direction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness_plugins.errors import field_error, json_type, read_user_file

__all__ = [
    "MIN_NEUTRAL",
    "MIN_SENTENCES",
    "Concept",
    "builtin_concepts",
    "concepts_from_json",
    "load_concepts",
    "neutral_sentences",
    "validate_concepts",
]

# Fewer sentences than this give a mean too noisy to call a direction.
MIN_SENTENCES = 3
# The neutral mean is subtracted from every concept, so it needs more support.
MIN_NEUTRAL = 10
BUILTIN_FILE = "concepts.json"

_TOP_KEYS = ("concepts", "neutral")
_CONCEPT_KEYS = ("name", "sentences")


@dataclass(frozen=True)
class Concept:
    """A named concept and the sentences whose mean activation stands for it."""

    name: str
    sentences: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """This concept in the file format, so a filtered bank can be written back."""
        return {"name": self.name, "sentences": list(self.sentences)}


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _sentence_key(sentence: str) -> str:
    """Duplicates differing only in case or spacing would still double-weight a mean."""
    return " ".join(sentence.split()).casefold()


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    """Unknown keys are usually typos of known ones, so they fail rather than vanish."""
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise field_error(
            source, where, None, f"unknown key(s) {names}; allowed keys are {', '.join(allowed)}"
        )
    for key in allowed:
        if key not in obj:
            raise field_error(source, where, key, f"missing; expected keys {', '.join(allowed)}")


def _sentences(
    raw: Any,
    source: str,
    where: str,
    field: str,
    minimum: int,
    seen: dict[str, str],
) -> tuple[str, ...]:
    """Check a sentence list; ``seen`` maps every earlier sentence to where it was."""
    if not isinstance(raw, (list, tuple)):
        raise field_error(
            source, where, field, f"expected a list of sentences (strings), got {json_type(raw)}"
        )
    if len(raw) < minimum:
        raise field_error(
            source,
            where,
            field,
            f"expected at least {minimum} sentences, got {len(raw)}",
        )
    sentences: list[str] = []
    for i, sentence in enumerate(raw):
        at = f"{field}[{i}]"
        if not isinstance(sentence, str) or not sentence.strip():
            got = repr(sentence) if isinstance(sentence, str) else json_type(sentence)
            raise field_error(source, where, at, f"expected a non-empty string, got {got}")
        key = _sentence_key(sentence)
        if key in seen:
            raise field_error(
                source,
                where,
                at,
                f"duplicate sentence {sentence.strip()!r} (same as {seen[key]}); "
                "every sentence in the file must be distinct",
            )
        seen[key] = f"{where} {at}"
        sentences.append(sentence.strip())
    return tuple(sentences)


def _concept(raw: Any, index: int, source: str, seen: dict[str, str]) -> Concept:
    where = f"concept {index}"
    if not isinstance(raw, Mapping):
        raise field_error(
            source,
            where,
            None,
            f"expected an object with keys {', '.join(_CONCEPT_KEYS)}, got {json_type(raw)}",
        )
    name = raw.get("name")
    if isinstance(name, str) and name.strip():
        where = f"concept {index} ({name.strip()!r})"
    _check_keys(raw, _CONCEPT_KEYS, source, where)
    if not isinstance(name, str) or not name.strip():
        got = repr(name) if isinstance(name, str) else json_type(name)
        raise field_error(source, where, "name", f"expected a non-empty string, got {got}")
    sentences = _sentences(raw["sentences"], source, where, "sentences", MIN_SENTENCES, seen)
    return Concept(name=name.strip(), sentences=sentences)


def validate_concepts(data: Any, source: str) -> tuple[list[Concept], list[str]]:
    """Check parsed JSON and build (concepts in file order, neutral sentences) in one pass.

    ``source`` (usually the path) starts every message, so the user knows which
    file to fix.  Raises :class:`IntrospectError` at the first problem.
    """
    if not isinstance(data, Mapping):
        raise field_error(
            source,
            "top level",
            None,
            f"expected a JSON object with keys {', '.join(_TOP_KEYS)}, got {json_type(data)}",
        )
    _check_keys(data, _TOP_KEYS, source, "top level")
    raw_concepts = data["concepts"]
    if not isinstance(raw_concepts, (list, tuple)) or not raw_concepts:
        got = (
            "an empty list" if isinstance(raw_concepts, (list, tuple)) else json_type(raw_concepts)
        )
        raise field_error(
            source, "top level", "concepts", f"expected a non-empty list of concepts, got {got}"
        )
    seen: dict[str, str] = {}
    concepts: list[Concept] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raw_concepts):
        concept = _concept(raw, index, source, seen)
        earlier = first_index.setdefault(concept.name.casefold(), index)
        if earlier != index:
            raise field_error(
                source,
                f"concept {index} ({concept.name!r})",
                "name",
                f"duplicate name (already used by concept {earlier}); names must be unique",
            )
        concepts.append(concept)
    neutral = _sentences(data["neutral"], source, "top level", "neutral", MIN_NEUTRAL, seen)
    return concepts, list(neutral)


def concepts_from_json(text: str, source: str = "<string>") -> tuple[list[Concept], list[str]]:
    """Parse and validate a concept file's text; JSON errors give line and column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise field_error(
            source,
            f"not valid JSON at line {error.lineno} column {error.colno}",
            None,
            f"{error.msg}; expected a JSON object with keys {', '.join(_TOP_KEYS)}",
        ) from None
    return validate_concepts(data, source)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_concepts(path: str | Path | None = None) -> tuple[list[Concept], list[str]]:
    """(concepts, neutral sentences) from a file; ``None`` (or "") means the built-in bank."""
    if path is None or path == "":
        return builtin_concepts(), neutral_sentences()
    file = Path(path)
    return concepts_from_json(
        read_user_file(file, "expected a JSON file of concepts and neutral sentences"), str(file)
    )


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[tuple[Concept, ...], tuple[str, ...]]:
    """Parsed once per process: every direction and neuron search reads the same bank."""
    resource = resources.files("harness_plugins.banks").joinpath(BUILTIN_FILE)
    concepts, neutral = concepts_from_json(resource.read_text(encoding="utf-8"), str(resource))
    return tuple(concepts), tuple(neutral)


def builtin_concepts() -> list[Concept]:
    """The concepts written for this project, in file order (a fresh list: callers may filter)."""
    return list(_builtin()[0])


def neutral_sentences() -> list[str]:
    """The built-in baseline sentences subtracted from every concept mean."""
    return list(_builtin()[1])


# --------------------------------------------------------------------------
# Train/test split
# --------------------------------------------------------------------------
