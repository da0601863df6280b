"""Tests for the concept bank (harness_plugins/concept_bank.py).

Model-free: the built-in file's size and hygiene, the seed-independent
train/test split, a user file round trip, and one-line errors for bad files.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness_plugins.banks.concepts import (
    MIN_NEUTRAL,
    MIN_SENTENCES,
    Concept,
    builtin_concepts,
    concepts_from_json,
    load_concepts,
    neutral_sentences,
)
from harness_plugins.errors import IntrospectError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_PATH = ROOT / "harness_plugins" / "banks" / "concepts.json"

MIN_CONCEPTS = 110
SENTENCES_PER_CONCEPT = 8
MIN_NEUTRAL_BUILTIN = 80
MIN_WORDS, MAX_WORDS = 6, 16


@pytest.fixture(scope="module")
def concepts() -> list[Concept]:
    return builtin_concepts()


def _words(sentence: str) -> int:
    return len(sentence.split())


# --------------------------------------------------------------------------
# The built-in file
# --------------------------------------------------------------------------


def test_builtin_loads_in_file_order(concepts: list[Concept]) -> None:
    raw = json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))
    assert [c.name for c in concepts] == [r["name"] for r in raw["concepts"]]
    assert neutral_sentences() == raw["neutral"]
    assert load_concepts() == (concepts, neutral_sentences())
    assert load_concepts(BUILTIN_PATH) == (concepts, neutral_sentences())
    assert load_concepts(str(BUILTIN_PATH)) == (concepts, neutral_sentences())


def test_builtin_returns_fresh_lists() -> None:
    first = builtin_concepts()
    first.clear()
    assert len(builtin_concepts()) >= MIN_CONCEPTS
    neutral = neutral_sentences()
    neutral.clear()
    assert len(neutral_sentences()) >= MIN_NEUTRAL_BUILTIN


def test_builtin_counts(concepts: list[Concept]) -> None:
    assert len(concepts) >= MIN_CONCEPTS
    assert len(neutral_sentences()) >= MIN_NEUTRAL_BUILTIN
    for concept in concepts:
        assert len(concept.sentences) == SENTENCES_PER_CONCEPT, concept.name
        assert len(set(concept.sentences)) == SENTENCES_PER_CONCEPT, concept.name


def test_builtin_names_are_unique_lowercase_short(concepts: list[Concept]) -> None:
    names = [c.name for c in concepts]
    assert len(set(names)) == len(names)
    for name in names:
        assert name == name.lower() == name.strip(), name
        assert 1 <= len(name.split()) <= 3, name
        assert re.fullmatch(r"[a-z]+( [a-z]+){0,2}", name), name


def test_builtin_sentences_all_distinct(concepts: list[Concept]) -> None:
    everything = [s for c in concepts for s in c.sentences] + neutral_sentences()
    folded = [" ".join(s.split()).casefold() for s in everything]
    duplicates = sorted({s for s in folded if folded.count(s) > 1})
    assert not duplicates


def test_builtin_sentence_lengths(concepts: list[Concept]) -> None:
    everything = [s for c in concepts for s in c.sentences] + neutral_sentences()
    bad = [s for s in everything if not MIN_WORDS <= _words(s) <= MAX_WORDS]
    assert not bad
    for sentence in everything:
        assert sentence == sentence.strip() and "\n" not in sentence, sentence
        assert sentence[0].isupper() or sentence[0].isdigit(), sentence


def test_neutral_sentences_name_no_concept(concepts: list[Concept]) -> None:
    """A concept word in the baseline would cancel part of that concept's direction."""
    hits = []
    for sentence in neutral_sentences():
        for concept in concepts:
            # The name itself, or its singular ("dogs" -> "dog", "bicycles" -> "bicycle").
            forms = {concept.name, concept.name.removesuffix("s")}
            for form in forms:
                if re.search(rf"\b{re.escape(form)}s?\b", sentence, re.IGNORECASE):
                    hits.append((concept.name, sentence))
    assert not hits


def test_builtin_has_expected_concepts(concepts: list[Concept]) -> None:
    names = {c.name for c in concepts}
    for name in ("ocean", "music", "cooking", "anger", "winter", "money", "fear", "chess"):
        assert name in names


# --------------------------------------------------------------------------
# Train/test split
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------


def _valid_data() -> dict[str, Any]:
    """A small valid bank as parsed JSON, for the error tests to break."""
    return {
        "concepts": [c.to_json() for c in builtin_concepts()[:3]],
        "neutral": neutral_sentences()[:MIN_NEUTRAL],
    }


def test_user_file_round_trip(tmp_path: Path) -> None:
    data = _valid_data()
    data["concepts"].append(
        {"name": "Kites", "sentences": ["A red kite rose over the beach.", "b c d e f", "g h i"]}
    )
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    concepts, neutral = load_concepts(path)
    assert [c.name for c in concepts] == [c["name"] for c in data["concepts"]]
    assert [c.to_json() for c in concepts] == data["concepts"]
    assert neutral == data["neutral"]
    assert concepts[-1] == Concept(
        "Kites", ("A red kite rose over the beach.", "b c d e f", "g h i")
    )
    assert load_concepts(str(path)) == (concepts, neutral)


def test_user_file_strips_whitespace(tmp_path: Path) -> None:
    data = _valid_data()
    data["concepts"][0]["name"] = "  ocean "
    data["concepts"][0]["sentences"][0] = "  " + data["concepts"][0]["sentences"][0] + "\n"
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    concepts, _ = load_concepts(path)
    assert concepts[0] == builtin_concepts()[0]


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return edit


def _copy_sentence(source: list[Any], dest: list[Any]) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        value: Any = data
        for step in source:
            value = value[step]
        _set(dest, value.upper())(data)

    return edit


# (edit, the place named in the message, the field named, a phrase of the complaint)
BAD_FILES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str, str]] = {
    "missing concepts": (_delete(["concepts"]), "top level", "'concepts'", "missing"),
    "missing neutral": (_delete(["neutral"]), "top level", "'neutral'", "missing"),
    "unknown top key": (_set(["extra"], 1), "top level", "", "unknown key"),
    "empty concepts": (_set(["concepts"], []), "top level", "'concepts'", "empty"),
    "concept not object": (_set(["concepts", 1], "music"), "concept 1", "", "object"),
    "missing name": (_delete(["concepts", 1, "name"]), "concept 1", "'name'", "missing"),
    "missing sentences": (
        _delete(["concepts", 1, "sentences"]),
        "concept 1 ('music')",
        "'sentences'",
        "missing",
    ),
    "unknown concept key": (
        _set(["concepts", 1, "sentence"], []),
        "concept 1 ('music')",
        "",
        "unknown key",
    ),
    "empty name": (_set(["concepts", 2, "name"], "  "), "concept 2", "'name'", "non-empty"),
    "number name": (_set(["concepts", 2, "name"], 7), "concept 2", "'name'", "number"),
    "duplicate name": (
        _set(["concepts", 2, "name"], "Ocean"),
        "concept 2 ('Ocean')",
        "'name'",
        "duplicate name (already used by concept 0)",
    ),
    "too few sentences": (
        _set(["concepts", 1, "sentences"], ["One two three four five six.", "Seven eight."]),
        "concept 1 ('music')",
        "'sentences'",
        f"at least {MIN_SENTENCES}",
    ),
    "sentences not list": (
        _set(["concepts", 1, "sentences"], "Just one string."),
        "concept 1 ('music')",
        "'sentences'",
        "list",
    ),
    "number sentence": (
        _set(["concepts", 1, "sentences", 4], 42),
        "concept 1 ('music')",
        "'sentences[4]'",
        "non-empty string, got number",
    ),
    "blank sentence": (
        _set(["concepts", 1, "sentences", 0], "\n"),
        "concept 1 ('music')",
        "'sentences[0]'",
        "non-empty string",
    ),
    "duplicate in concept": (
        _copy_sentence(["concepts", 1, "sentences", 0], ["concepts", 1, "sentences", 5]),
        "concept 1 ('music')",
        "'sentences[5]'",
        "duplicate sentence",
    ),
    "duplicate across concepts": (
        _copy_sentence(["concepts", 0, "sentences", 2], ["concepts", 2, "sentences", 3]),
        "concept 2 ('cooking')",
        "'sentences[3]'",
        "same as concept 0 ('ocean') sentences[2]",
    ),
    "neutral not list": (_set(["neutral"], None), "top level", "'neutral'", "got null"),
    "short neutral": (
        _set(["neutral"], neutral_sentences()[: MIN_NEUTRAL - 1]),
        "top level",
        "'neutral'",
        f"at least {MIN_NEUTRAL}",
    ),
    "number neutral": (_set(["neutral", 3], 1.5), "top level", "'neutral[3]'", "number"),
    "neutral repeats concept": (
        _copy_sentence(["concepts", 1, "sentences", 1], ["neutral", 6]),
        "top level",
        "'neutral[6]'",
        "same as concept 1 ('music') sentences[1]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_gives_one_line_error(case: str, tmp_path: Path) -> None:
    edit, where, field, phrase = BAD_FILES[case]
    data = copy.deepcopy(_valid_data())
    edit(data)
    path = tmp_path / "bad bank.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    with pytest.raises(IntrospectError) as caught:
        load_concepts(path)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: {where}")
    if field:
        assert f"field {field}" in message
    assert phrase in message


def test_top_level_not_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(IntrospectError, match=r"list\.json: top level: .*got list"):
        load_concepts(path)


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"concepts": [\n', encoding="utf-8")
    with pytest.raises(IntrospectError, match=r"broken\.json: not valid JSON at line 2"):
        load_concepts(path)
    with pytest.raises(IntrospectError, match=r"nope\.json: file not found"):
        load_concepts(tmp_path / "nope.json")
    with pytest.raises(IntrospectError, match=r"^<string>: not valid JSON"):
        concepts_from_json("{")
