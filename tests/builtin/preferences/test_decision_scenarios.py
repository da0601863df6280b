"""Tests for the decision scenarios (harness_plugins/builtin/preferences/scenarios.py).

Fast and model-free: the built-in file's contents and spread, the JSON round
trip, the rounding rule, load speed, and one-line errors for every bad input.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness_plugins.builtin.preferences.scenarios import (
    Attribute,
    Scenario,
    builtin_scenarios,
    load_scenarios,
    scenarios_from_json,
    validate_scenarios,
)
from harness_plugins.errors import IntrospectError

BUILTIN_PATH = (
    Path(__file__).resolve().parents[3]
    / "harness_plugins"
    / "builtin"
    / "preferences"
    / "decision_scenarios.json"
)

# A scenario counts towards a domain when its question mentions one of the words.
DOMAINS = {
    "homes": ("apartment", "house", "cabin", "dorm", "office", "mattress"),
    "finance": ("loan", "mortgage", "savings", "credit card", "fund"),
    "travel": ("flight", "road trip", "hotel", "train", "cruise", "campsite", "rent"),
    "vacations": ("resort", "ski", "tour", "theme park", "vacation"),
    "tools": ("drill", "mower", "knife", "backpack", "washing machine"),
    "food": ("coffee", "pizza", "meal kit", "cereal", "wine", "apples"),
    "restaurants": ("restaurant", "lunch", "caterer"),
    "jobs": ("job", "internship", "freelance", "position"),
    "vehicles": ("car", "bicycle"),
    "electronics": ("phone", "laptop", "headphones", "tv", "internet"),
    "schools": ("university", "preschool", "course", "driving school"),
    "fitness": ("gym", "running", "yoga", "swimming"),
    "medical": ("dentist", "clinic", "therapist"),
    "pets": ("dog", "cat", "aquarium", "pet"),
    "gardens": ("garden", "tree", "greenhouse"),
    "software": ("software", "cloud", "streaming", "editor", "password"),
}


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return builtin_scenarios()


def _valid_data() -> list[dict[str, Any]]:
    """Two valid scenarios as parsed JSON, for the error tests to break."""
    return [s.to_json() for s in builtin_scenarios()[:2]]


# --------------------------------------------------------------------------
# The built-in file
# --------------------------------------------------------------------------


def test_builtin_file_loads_in_file_order(scenarios: list[Scenario]) -> None:
    raw = json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))
    assert [s.short_name for s in scenarios] == [r["short_name"] for r in raw]
    assert load_scenarios() == scenarios
    assert load_scenarios(BUILTIN_PATH) == scenarios
    assert load_scenarios(str(BUILTIN_PATH)) == scenarios


def test_builtin_returns_a_fresh_list() -> None:
    first = builtin_scenarios()
    first.clear()
    assert len(builtin_scenarios()) >= 60


def test_builtin_has_enough_well_formed_scenarios(scenarios: list[Scenario]) -> None:
    assert len(scenarios) >= 60
    names = [s.short_name for s in scenarios]
    assert len(set(names)) == len(names)
    for scenario in scenarios:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", scenario.short_name), scenario
        assert scenario.question.startswith("Imagine you "), scenario.short_name
        assert re.search(r"Which [^?]+ would you prefer\?$", scenario.question), scenario.short_name
        assert scenario.question.count(".") + scenario.question.count("?") <= 3
        assert len(scenario.attributes) == 5
        attribute_names = [a.name.casefold() for a in scenario.attributes]
        assert len(set(attribute_names)) == 5, scenario.short_name
        for attribute in scenario.attributes:
            assert attribute.name.strip() == attribute.name and attribute.name
            assert attribute.units.strip() == attribute.units and attribute.units
            for end in (attribute.low, attribute.high):
                assert isinstance(end, (int, float)) and not isinstance(end, bool)
                assert math.isfinite(end)
            assert attribute.low < attribute.high, (scenario.short_name, attribute)


def test_builtin_spreads_over_domains(scenarios: list[Scenario]) -> None:
    assert len({s.question for s in scenarios}) >= 60
    units = {a.units for s in scenarios for a in s.attributes}
    assert len(units) >= 40
    # No single unit dominates: dollars is the most common, and still a minority.
    all_units = [a.units for s in scenarios for a in s.attributes]
    assert max(all_units.count(u) for u in units) < 0.3 * len(all_units)
    covered = {
        domain
        for domain, words in DOMAINS.items()
        for s in scenarios
        if any(re.search(rf"\b{re.escape(w)}", s.question, re.IGNORECASE) for w in words)
    }
    assert len(covered) >= 8
    assert covered == set(DOMAINS)


def test_builtin_ranges_offer_ten_steps(scenarios: list[Scenario]) -> None:
    """Every built-in range offers at least 10 rounding steps, so options differ visibly."""
    for scenario in scenarios:
        for attribute in scenario.attributes:
            steps = attribute.span() * 10**attribute.decimals
            assert steps >= 10 - 1e-9, (scenario.short_name, attribute)


# --------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------


def test_round_trip_through_a_file(scenarios: list[Scenario], tmp_path: Path) -> None:
    path = tmp_path / "copy.json"
    path.write_text(json.dumps([s.to_json() for s in scenarios], indent=2), encoding="utf-8")
    again = load_scenarios(path)
    assert again == scenarios
    # Range ends keep their JSON type, so the file is reproduced exactly.
    assert [s.to_json() for s in again] == json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))
    for before, after in zip(scenarios, again, strict=True):
        for a, b in zip(before.attributes, after.attributes, strict=True):
            assert type(a.low) is type(b.low) and type(a.high) is type(b.high)


def test_validate_and_from_json_agree(scenarios: list[Scenario]) -> None:
    data = [s.to_json() for s in scenarios]
    assert validate_scenarios(data, "memory") == scenarios
    assert scenarios_from_json(json.dumps(data)) == scenarios


def test_scenarios_are_frozen_and_hashable(scenarios: list[Scenario]) -> None:
    scenario = scenarios[0]
    with pytest.raises(AttributeError):
        scenario.short_name = "other"  # type: ignore[misc]
    assert len({*scenarios}) == len(scenarios)


# --------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------


def test_span() -> None:
    assert Attribute("rent", "dollars", 900, 3200).span() == 2300
    assert Attribute("score", "stars", 2.5, 5.0).span() == 2.5


@pytest.mark.parametrize(
    ("low", "high", "decimals"),
    [
        (900, 3200, 0),  # integer ends, span >= 10: whole numbers
        (5, 15, 0),  # span exactly 10
        (1, 10, 1),  # span 9: tenths
        (1, 5, 1),
        (2.5, 5.0, 1),  # span 2.5: tenths
        (3.0, 5.0, 1),  # floats written as whole numbers behave like ints
        (0.1, 0.9, 2),  # span 0.8: hundredths
        (0.7, 1.7, 1),  # span exactly 1 in decimal, though 1.7 - 0.7 < 1 in binary
        (0.2, 12, 1),  # the ends' own precision wins over the span's
        (0.05, 2.0, 2),
        (99.0, 99.99, 2),
        (0.5, 500, 1),
        (-40, 0, 0),
        (-30.5, 30, 1),
        (0.001, 0.002, 4),
    ],
)
def test_decimals_rule(low: float, high: float, decimals: int) -> None:
    attribute = Attribute("x", "u", low, high)
    assert attribute.decimals == decimals
    # preferences.py rebuilds attributes from float(low), float(high): same rule.
    assert Attribute("x", "u", float(low), float(high)).decimals == decimals


@pytest.mark.parametrize(
    ("low", "high", "value", "expected"),
    [
        (900, 3200, 1234.56, 1235),
        (900, 3200, 1234.4, 1234),
        (2.5, 5.0, 3.14159, 3.1),
        (1, 5, 3.96, 4.0),
        (0.1, 0.9, 0.12345, 0.12),
        (0.2, 12, 5.57, 5.6),
        (99.0, 99.99, 99.4567, 99.46),
        (-40, 0, -12.7, -13),
        (900, 3200, 10.0, 900),  # below the range: clamped to low
        (2.5, 5.0, 7.3, 5.0),  # above the range: clamped to high
    ],
)
def test_round_value(low: float, high: float, value: float, expected: float) -> None:
    rounded = Attribute("x", "u", low, high).round_value(value)
    assert rounded == expected
    assert repr(rounded) == repr(
        expected
    )  # ints stay ints, no float noise like 0.30000000000000004


def test_round_value_returns_int_for_whole_numbers() -> None:
    assert isinstance(Attribute("x", "u", 900, 3200).round_value(1500.2), int)
    assert isinstance(Attribute("x", "u", 1, 5).round_value(3.0), float)


def test_round_value_on_all_builtin_ranges(scenarios: list[Scenario]) -> None:
    rng = random.Random(0)
    for scenario in scenarios:
        for attribute in scenario.attributes:
            for _ in range(50):
                value = attribute.round_value(rng.uniform(attribute.low, attribute.high))
                assert attribute.low <= value <= attribute.high
                assert attribute.round_value(value) == value  # idempotent
                text = repr(value)
                places = len(text.split(".")[1]) if "." in text else 0
                assert places <= attribute.decimals, (attribute, value)
            assert attribute.round_value(attribute.low) == attribute.low
            assert attribute.round_value(attribute.high) == attribute.high


# --------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------


def test_500_generated_scenarios_load_in_order(tmp_path: Path) -> None:
    rng = random.Random(1)
    data = []
    for i in range(500):
        attributes = []
        for j in range(5):
            low = rng.randint(0, 1000)
            attributes.append(
                {
                    "name": f"attribute {j}",
                    "units": "units",
                    "range": [low, low + rng.randint(1, 500)],
                }
            )
        data.append(
            {
                "short_name": f"generated_{i}",
                "question": f"Imagine you are choosing item {i}. Which item would you prefer?",
                "attributes": attributes,
            }
        )
    path = tmp_path / "many.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_scenarios(path)
    assert len(loaded) == 500
    assert [s.short_name for s in loaded] == [d["short_name"] for d in data]


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def _load_error(tmp_path: Path, text: str, name: str = "broken_scenarios.json") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IntrospectError) as caught:
        load_scenarios(path)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    assert name in message, message
    return message


def _setter(*keys: Any, value: Any) -> Callable[[Any], None]:
    def apply(data: Any) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return apply


def _deleter(*keys: Any) -> Callable[[Any], None]:
    def apply(data: Any) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return apply


def _rename_attr(data: Any) -> None:
    data[1]["attributes"][3]["name"] = data[1]["attributes"][1]["name"]


def _rename_attr_case(data: Any) -> None:
    data[1]["attributes"][3]["name"] = data[1]["attributes"][1]["name"].upper()


def _duplicate_short_name(data: Any) -> None:
    data[1]["short_name"] = data[0]["short_name"]


def _unknown_scenario_key(data: Any) -> None:
    data[1]["questoin"] = data[1].pop("question")


def _extra_scenario_key(data: Any) -> None:
    data[1]["weights"] = [1, 2, 3, 4, 5]


def _unknown_attribute_key(data: Any) -> None:
    data[1]["attributes"][2]["unit"] = data[1]["attributes"][2].pop("units")


BREAKS: list[tuple[str, Callable[[Any], None], str, tuple[str, ...]]] = [
    # (id, change to scenario 1, field the message names, other words it contains)
    ("short_name missing", _deleter(1, "short_name"), "short_name", ("missing",)),
    ("short_name empty", _setter(1, "short_name", value=""), "short_name", ("non-empty",)),
    ("short_name blank", _setter(1, "short_name", value="  "), "short_name", ("non-empty",)),
    ("short_name number", _setter(1, "short_name", value=42), "short_name", ("number",)),
    ("short_name null", _setter(1, "short_name", value=None), "short_name", ("null",)),
    ("short_name duplicate", _duplicate_short_name, "short_name", ("duplicate", "scenario 0")),
    ("question missing", _deleter(1, "question"), "question", ("missing",)),
    ("question empty", _setter(1, "question", value=""), "question", ("non-empty",)),
    ("question list", _setter(1, "question", value=["a"]), "question", ("list",)),
    ("attributes missing", _deleter(1, "attributes"), "attributes", ("missing",)),
    ("attributes object", _setter(1, "attributes", value={}), "attributes", ("exactly 5",)),
    ("attributes string", _setter(1, "attributes", value="x"), "attributes", ("exactly 5",)),
    ("attributes four", _deleter(1, "attributes", 4), "attributes", ("exactly 5", "of 4")),
    ("attributes empty", _setter(1, "attributes", value=[]), "attributes", ("exactly 5", "of 0")),
    (
        "attribute not object",
        _setter(1, "attributes", 2, value=[1, 2]),
        "attributes[2]",
        ("object",),
    ),
    (
        "attribute name missing",
        _deleter(1, "attributes", 2, "name"),
        "attributes[2].name",
        ("missing",),
    ),
    (
        "attribute units missing",
        _deleter(1, "attributes", 2, "units"),
        "attributes[2].units",
        ("missing",),
    ),
    (
        "attribute range missing",
        _deleter(1, "attributes", 2, "range"),
        "attributes[2].range",
        ("missing",),
    ),
    (
        "attribute name empty",
        _setter(1, "attributes", 2, "name", value=""),
        "attributes[2].name",
        ("non-empty",),
    ),
    (
        "attribute units number",
        _setter(1, "attributes", 2, "units", value=3),
        "attributes[2].units",
        ("string",),
    ),
    (
        "range one number",
        _setter(1, "attributes", 2, "range", value=[5]),
        "attributes[2].range",
        ("[min, max]",),
    ),
    (
        "range three numbers",
        _setter(1, "attributes", 2, "range", value=[1, 2, 3]),
        "attributes[2].range",
        ("[min, max]",),
    ),
    (
        "range string",
        _setter(1, "attributes", 2, "range", value="1-5"),
        "attributes[2].range",
        ("[min, max]",),
    ),
    (
        "range object",
        _setter(1, "attributes", 2, "range", value={"min": 1}),
        "attributes[2].range",
        ("object",),
    ),
    (
        "range text end",
        _setter(1, "attributes", 2, "range", value=[1, "5"]),
        "attributes[2].range",
        ("finite numbers",),
    ),
    (
        "range null end",
        _setter(1, "attributes", 2, "range", value=[None, 5]),
        "attributes[2].range",
        ("null",),
    ),
    (
        "range boolean end",
        _setter(1, "attributes", 2, "range", value=[True, 5]),
        "attributes[2].range",
        ("boolean",),
    ),
    (
        "range NaN",
        _setter(1, "attributes", 2, "range", value=[math.nan, 5]),
        "attributes[2].range",
        ("finite",),
    ),
    (
        "range infinite",
        _setter(1, "attributes", 2, "range", value=[0, math.inf]),
        "attributes[2].range",
        ("finite",),
    ),
    (
        "range reversed",
        _setter(1, "attributes", 2, "range", value=[9, 1]),
        "attributes[2].range",
        ("min < max", "[9, 1]"),
    ),
    (
        "range empty",
        _setter(1, "attributes", 2, "range", value=[3, 3]),
        "attributes[2].range",
        ("min < max",),
    ),
    ("attribute names repeat", _rename_attr, "attributes[3].name", ("duplicate", "attributes[1]")),
    (
        "attribute names repeat in other case",
        _rename_attr_case,
        "attributes[3].name",
        ("duplicate",),
    ),
    (
        "scenario key typo",
        _unknown_scenario_key,
        "questoin",
        ("allowed keys are short_name, question, attributes",),
    ),
    (
        "scenario extra key",
        _extra_scenario_key,
        "weights",
        ("allowed keys are short_name, question, attributes",),
    ),
    (
        "attribute key typo",
        _unknown_attribute_key,
        "attributes[2]",
        ("'unit'", "allowed keys are name, units, range"),
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [pytest.param(change, field, words, id=name) for name, change, field, words in BREAKS],
)
def test_bad_scenario_is_named_in_one_line(
    tmp_path: Path, change: Callable[[Any], None], field: str, words: tuple[str, ...]
) -> None:
    data = _valid_data()
    original_name = data[1]["short_name"]
    change(data)
    message = _load_error(tmp_path, json.dumps(data, indent=2))
    assert "scenario 1" in message, message
    short_name = data[1].get("short_name") if isinstance(data[1], dict) else None
    if isinstance(short_name, str) and short_name.strip():
        assert repr(short_name) in message, message
    else:
        assert repr(original_name) not in message, message
    assert field in message, message
    for word in words:
        assert word in message, message
    assert "expected" in message or "allowed" in message or "duplicate" in message, message


def test_entry_not_an_object(tmp_path: Path) -> None:
    data: list[Any] = _valid_data()
    data[1] = "condo"
    message = _load_error(tmp_path, json.dumps(data))
    assert "scenario 1" in message and "expected an object" in message and "string" in message


def test_top_level_not_a_list(tmp_path: Path) -> None:
    message = _load_error(tmp_path, json.dumps({"scenarios": _valid_data()}))
    assert "top level" in message and "expected a JSON list" in message and "object" in message


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    message = _load_error(tmp_path, '[\n  {"short_name": "a",\n   oops}\n]')
    assert "not valid JSON at line 3 column 4" in message, message
    assert "expected a JSON list" in message


def test_empty_file(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "")
    assert "line 1 column 1" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"short_name": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(IntrospectError, match=r"latin1\.json: not UTF-8"):
        load_scenarios(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "absent_scenarios.json"
    with pytest.raises(IntrospectError) as caught:
        load_scenarios(path)
    message = str(caught.value)
    assert str(path) in message and "not found" in message and "\n" not in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(IntrospectError, match="cannot read file"):
        load_scenarios(tmp_path)


def test_newlines_in_values_stay_escaped(tmp_path: Path) -> None:
    data = _valid_data()
    data[1]["short_name"] = "two\nlines"
    data[1]["attributes"][0]["range"] = [2, 1]
    message = _load_error(tmp_path, json.dumps(data))
    assert "'two\\nlines'" in message


def test_first_error_wins_and_later_scenarios_are_not_needed(tmp_path: Path) -> None:
    data = _valid_data()
    data[0]["attributes"][4]["range"] = [1, 1]
    data[1]["question"] = ""
    message = _load_error(tmp_path, json.dumps(data))
    assert "scenario 0" in message and "attributes[4].range" in message


def test_validate_scenarios_uses_the_given_source() -> None:
    data = copy.deepcopy(_valid_data())
    data[0]["attributes"] = data[0]["attributes"][:3]
    with pytest.raises(IntrospectError, match=r"^adapter/instilled\.json: scenario 0 "):
        validate_scenarios(data, source="adapter/instilled.json")
    with pytest.raises(IntrospectError, match=r"^<string>: not valid JSON"):
        scenarios_from_json("{")


def test_introspect_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_scenarios(None, "x.json")
