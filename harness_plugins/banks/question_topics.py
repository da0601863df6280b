"""The topics of the built-in question bank: small generators over literal tables.

Each topic turns a seeded random generator into (question, correct, three wrong)
items; the tables they draw on (countries, elements, antonyms...) are data in
``questions.json`` beside this file. `harness_plugins.banks.questions` assembles
the bank from `TOPICS`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from importlib import resources
from typing import Any

# One question: (text, correct choice, three wrong choices).
Item = tuple[str, str, tuple[str, str, str]]
_Item = Item

TABLES_FILE = "questions.json"
_SEED_SALT = "harness_plugins.question_bank/v1"  # a seed: keep it although the module moved


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    """JSON lists back to the tuples the generators index and hash."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


@functools.cache
def _tables() -> dict[str, Any]:
    resource = resources.files("harness_plugins.banks").joinpath(TABLES_FILE)
    return json.loads(resource.read_text(encoding="utf-8"))


def _table(name: str) -> tuple[Any, ...]:
    """One literal table of the bank (countries, elements, ...), from the data file."""
    return _frozen(_tables()[name]["rows"])


def seeded_rng(topic: str, purpose: str) -> random.Random:
    """A private RNG per topic so one topic's edits never reshuffle another's."""
    digest = hashlib.sha256(f"{_SEED_SALT}:{topic}:{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _fmt(value: Decimal | int) -> str:
    """Plain decimal text (no exponent, no trailing zeros) for exact answers."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _pick(
    rng: random.Random, correct: str, candidates: Sequence[str], k: int = 3
) -> tuple[str, ...]:
    """Choose k wrong options, never the correct one and never twice."""
    pool: list[str] = []
    for cand in candidates:
        if cand != correct and cand not in pool:
            pool.append(cand)
    if len(pool) < k:
        raise RuntimeError(f"not enough distractors for {correct!r}: {pool!r}")
    return tuple(rng.sample(pool, k))


def _item(question: str, correct: str, wrong: Sequence[str]) -> _Item:
    w = tuple(wrong)
    if len(w) != 3:
        raise RuntimeError(f"{question!r} needs exactly three wrong choices")
    return question, correct, (w[0], w[1], w[2])


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join_or(parts: Sequence[str]) -> str:
    return ", ".join(parts[:-1]) + f" or {parts[-1]}"


def _fill(count: int, make: Callable[[], bool]) -> None:
    """Call make until it has added count new items; fail loudly, never spin."""
    made = attempts = 0
    while made < count:
        attempts += 1
        if attempts > 100 * count:
            raise RuntimeError(f"could only generate {made} of {count} distinct questions")
        made += make()


# --------------------------------------------------------------------------
# Fact tables (written for this project; only well-established facts)
# --------------------------------------------------------------------------

_COUNTRIES = _table("countries")

_CONTINENTS = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania")

_CITIES = _table("cities")

_GEOGRAPHY_FACTS = _table("geography_facts")

_ELEMENTS = _table("elements")

_PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")

_SCIENCE_FACTS = _table("science_facts")

_ANTONYMS = _table("antonyms")


def _the(name: str, article: bool) -> str:
    return f"the {name}" if article else name


def _world_capitals(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, article, capital, group, _ in _COUNTRIES:
        pool = sorted(c for _, _, c, g, _ in _COUNTRIES if g == group and c != capital)
        question = f"What is the capital of {_the(name, article)}?"
        items.append(_item(question, capital, _pick(rng, capital, pool)))
    for name, _, capital, group, _ in _COUNTRIES:
        pool = sorted(n for n, _, _, g, _ in _COUNTRIES if g == group and n != name)
        question = f"Which country has {capital} as its capital?"
        items.append(_item(question, name, _pick(rng, name, pool)))
    return items


def _geography(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, article, _, _, continent in _COUNTRIES:
        if continent is None:
            continue
        others = [c for c in _CONTINENTS if c != continent]
        question = f"On which continent is {_the(name, article)}?"
        items.append(_item(question, continent, _pick(rng, continent, others)))
    countries_by_group: dict[str, list[str]] = {}
    for name, _, _, group, _ in _COUNTRIES:
        countries_by_group.setdefault(group, []).append(name)
    for _, country, group in _CITIES:
        if country not in countries_by_group[group]:
            countries_by_group[group].append(country)
    for city, country, group in _CITIES:
        pool = sorted(c for c in countries_by_group[group] if c != country)
        question = f"In which country is the city of {city}?"
        items.append(_item(question, country, _pick(rng, country, pool)))
    for question, correct, *wrong in _GEOGRAPHY_FACTS:
        items.append(_item(question, correct, wrong))
    return items


def _chemical_symbols(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    symbols = [s for _, s, _ in _ELEMENTS]
    names = [n for n, _, _ in _ELEMENTS]
    for name, symbol, _ in _ELEMENTS:
        # Symbols that start like the element's name or its real symbol are
        # the tempting wrong answers (e.g. "I" or "Ir" for iron).
        initials = {name[0], symbol[0]}
        near = sorted(s for s in symbols if s != symbol and s[0] in initials)
        far = sorted(s for s in symbols if s != symbol and s[0] not in initials)
        chosen = list(rng.sample(near, min(2, len(near))))
        chosen += rng.sample(far, 3 - len(chosen))
        items.append(_item(f"What is the chemical symbol for {name.lower()}?", symbol, chosen))
    for name, symbol, _ in _ELEMENTS:
        near = sorted(n for n in names if n != name and n[0] == symbol[0])
        far = sorted(n for n in names if n != name and n[0] != symbol[0])
        chosen = list(rng.sample(near, min(2, len(near))))
        chosen += rng.sample(far, 3 - len(chosen))
        items.append(_item(f"Which element has the chemical symbol {symbol}?", name, chosen))
    return items


def _atomic_numbers(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, _, z in _ELEMENTS:
        cands = [str(v) for v in (z - 2, z - 1, z + 1, z + 2, z + 10) if v > 0]
        question = f"What is the atomic number of {name.lower()}?"
        items.append(_item(question, str(z), _pick(rng, str(z), cands)))
    return items


def _general_science(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for i, planet in enumerate(_PLANETS):
        near = [_PLANETS[j] for j in range(i - 3, i + 4) if 0 <= j < len(_PLANETS)]
        question = f"Which planet is the {_ordinal(i + 1)} planet from the Sun?"
        items.append(_item(question, planet, _pick(rng, planet, near)))
    for question, correct, *wrong in _SCIENCE_FACTS:
        items.append(_item(question, correct, wrong))
    return items


def _antonyms(rng: random.Random) -> list[_Item]:
    words = [w for pair in _ANTONYMS for w in pair]
    items: list[_Item] = []
    for direction in (0, 1):
        for pair in _ANTONYMS:
            word, opposite = pair[direction], pair[1 - direction]
            pool = [w for w in words if w not in pair]
            question = f"What is the opposite of '{word}'?"
            items.append(_item(question, opposite, _pick(rng, opposite, pool)))
    return items
