"""Decision scenarios for the decision-weights self-interpretability benchmark.

In the benchmark a model chooses between two options A and B, each described by
the same five numeric attributes, and later reports how much weight it gave each
attribute.  A scenario supplies the role-setting question and the five
attributes with their units and plausible ranges; options are drawn uniformly
from those ranges and rounded so that they read like numbers a person would
write (see :meth:`Attribute.round_value`).

Scenario files are a JSON list of objects::

    [{"short_name": "apartment_rental",
      "question": "Imagine you are ... Which apartment would you prefer?",
      "attributes": [{"name": "monthly rent", "units": "dollars", "range": [900, 3200]},
                     ... exactly 5 ...]}]

The loader rejects anything else with a one-line :class:`IntrospectError` that
names the file, the scenario (0-based index and short_name) and the field, so a
hand-edited file with a typo fails at once instead of silently skewing a run.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from harness_plugins.errors import field_error, json_type, read_user_file

__all__ = [
    "ATTRIBUTES_PER_SCENARIO",
    "Attribute",
    "Scenario",
    "builtin_scenarios",
    "load_scenarios",
    "scenarios_from_json",
    "validate_scenarios",
]

ATTRIBUTES_PER_SCENARIO = 5
BUILTIN_FILE = "decision_scenarios.json"

_SCENARIO_KEYS = ("short_name", "question", "attributes")
_ATTRIBUTE_KEYS = ("name", "units", "range")


def _decimals_of(number: float) -> int:
    """Digits after the decimal point in the shortest text of ``number`` (100.0 -> 0, 2.5 -> 1)."""
    exponent = Decimal(repr(number)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class Attribute:
    """One numeric attribute of a decision option, e.g. monthly rent in dollars, 900 to 3200.

    ``low`` and ``high`` keep the type they were written with (int or float) so
    that :meth:`Scenario.to_json` writes the file back unchanged.
    """

    name: str
    units: str
    low: float
    high: float

    def span(self) -> float:
        """Width of the range (high - low); weights are reported per full range."""
        return self.high - self.low

    @functools.cached_property
    def decimals(self) -> int:
        """Decimal places that :meth:`round_value` keeps (0 means whole numbers).

        The larger of:

        * ``1 - floor(log10(span))``, clipped at 0: enough to give at least 10
          steps across the range (span 2.5 -> 1 place, span 0.8 -> 2 places,
          span >= 10 -> 0 places);
        * the decimal places the range ends are written with, so both ends lie
          on the grid (range [0.2, 12] -> 1 place, not whole numbers).

        Hence integer-ended ranges spanning 10 or more give whole numbers.  The
        span is taken in decimal arithmetic so 1.7 - 0.7 counts as exactly 1.
        """
        exact_span = Decimal(repr(self.high)) - Decimal(repr(self.low))
        from_span = max(0, 1 - exact_span.adjusted()) if exact_span > 0 else 0
        return max(from_span, _decimals_of(self.low), _decimals_of(self.high))

    def round_value(self, value: float) -> float:
        """Round ``value`` to :attr:`decimals` places, kept inside [low, high].

        Options shown to a model should look like numbers a person would write
        ("1450 dollars", "3.7 stars"), not float noise.  Values outside the range
        are clamped to its nearest end first.  Returns an ``int`` when
        :attr:`decimals` is 0, so the value prints without a trailing ".0".
        """
        places = self.decimals
        clamped = min(max(value, self.low), self.high)
        rounded = min(max(round(clamped, places), self.low), self.high)
        return int(rounded) if places == 0 else float(rounded)

    def to_json(self) -> dict[str, Any]:
        """This attribute in the file format."""
        return {"name": self.name, "units": self.units, "range": [self.low, self.high]}


@dataclass(frozen=True)
class Scenario:
    """One decision question with exactly five attributes, in file order."""

    short_name: str
    question: str
    attributes: tuple[Attribute, ...]

    def to_json(self) -> dict[str, Any]:
        """This scenario in the file format; :func:`validate_scenarios` reads it back equal."""
        return {
            "short_name": self.short_name,
            "question": self.question,
            "attributes": [a.to_json() for a in self.attributes],
        }


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # ints too large for a float
        return False


def _check_keys(
    obj: Mapping[str, Any], allowed: tuple[str, ...], source: str, where: str, field: str | None
) -> None:
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise field_error(
            source,
            where,
            field,
            f"unknown key(s) {names}; allowed keys are {', '.join(allowed)}",
        )
    missing = [key for key in allowed if key not in obj]
    if missing:
        key = missing[0]
        raise field_error(
            source,
            where,
            key if field is None else f"{field}.{key}",
            f"missing; expected every entry to have {', '.join(allowed)}",
        )


def _text(obj: Mapping[str, Any], key: str, source: str, where: str, field: str, what: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not value.strip():
        got = repr(value) if isinstance(value, str) else json_type(value)
        raise field_error(source, where, field, f"expected {what} (non-empty string), got {got}")
    return value


def _attribute(raw: Any, index: int, source: str, where: str) -> Attribute:
    field = f"attributes[{index}]"
    if not isinstance(raw, Mapping):
        raise field_error(
            source,
            where,
            field,
            f"expected an object with keys {', '.join(_ATTRIBUTE_KEYS)}, got {json_type(raw)}",
        )
    _check_keys(raw, _ATTRIBUTE_KEYS, source, where, field)
    name = _text(raw, "name", source, where, f"{field}.name", "the attribute's name")
    units = _text(raw, "units", source, where, f"{field}.units", "the attribute's units")
    bounds = raw["range"]
    expected = "expected [min, max], two finite numbers with min < max"
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        got = f"a list of {len(bounds)}" if isinstance(bounds, (list, tuple)) else json_type(bounds)
        raise field_error(source, where, f"{field}.range", f"{expected}, got {got}")
    low, high = bounds
    if not (_is_number(low) and _is_number(high) and _is_finite(low) and _is_finite(high)):
        got = "[" + ", ".join(repr(b) if _is_number(b) else json_type(b) for b in bounds) + "]"
        raise field_error(source, where, f"{field}.range", f"{expected}, got {got}")
    if not low < high:
        raise field_error(source, where, f"{field}.range", f"{expected}, got [{low!r}, {high!r}]")
    return Attribute(name=name, units=units, low=low, high=high)


def _scenario(raw: Any, index: int, source: str) -> Scenario:
    where = f"scenario {index}"
    if not isinstance(raw, Mapping):
        raise field_error(
            source,
            where,
            None,
            f"expected an object with keys {', '.join(_SCENARIO_KEYS)}, got {json_type(raw)}",
        )
    name = raw.get("short_name")
    if isinstance(name, str) and name.strip():
        where = f"scenario {index} ({name!r})"
    _check_keys(raw, _SCENARIO_KEYS, source, where, None)
    short_name = _text(raw, "short_name", source, where, "short_name", "a short name")
    question = _text(raw, "question", source, where, "question", "the question text")
    raw_attributes = raw["attributes"]
    if (
        not isinstance(raw_attributes, (list, tuple))
        or len(raw_attributes) != ATTRIBUTES_PER_SCENARIO
    ):
        got = (
            f"a list of {len(raw_attributes)}"
            if isinstance(raw_attributes, (list, tuple))
            else json_type(raw_attributes)
        )
        raise field_error(
            source,
            where,
            "attributes",
            f"expected a list of exactly {ATTRIBUTES_PER_SCENARIO} attributes, got {got}",
        )
    attributes = tuple(_attribute(a, i, source, where) for i, a in enumerate(raw_attributes))
    seen: dict[str, int] = {}
    for i, attribute in enumerate(attributes):
        key = attribute.name.strip().casefold()
        if key in seen:
            raise field_error(
                source,
                where,
                f"attributes[{i}].name",
                f"duplicate attribute name {attribute.name!r} (same as attributes[{seen[key]}]); "
                "names must differ within a scenario",
            )
        seen[key] = i
    return Scenario(short_name=short_name, question=question, attributes=attributes)


def validate_scenarios(data: Any, source: str) -> list[Scenario]:
    """Check parsed JSON ``data`` and build the scenarios in one pass, keeping their order.

    ``source`` names where the data came from (usually a file path) and starts
    every error message.  Raises :class:`IntrospectError` at the first problem.
    """
    if not isinstance(data, (list, tuple)):
        raise field_error(
            source,
            "top level",
            None,
            f"expected a JSON list of scenario objects, got {json_type(data)}",
        )
    scenarios: list[Scenario] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(data):
        scenario = _scenario(raw, index, source)
        earlier = first_index.setdefault(scenario.short_name, index)
        if earlier != index:
            raise field_error(
                source,
                f"scenario {index} ({scenario.short_name!r})",
                "short_name",
                f"duplicate short_name (already used by scenario {earlier}); short names must be unique",
            )
        scenarios.append(scenario)
    return scenarios


def scenarios_from_json(text: str, source: str = "<string>") -> list[Scenario]:
    """Parse and validate the JSON text of a scenario file; errors give line and column."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise field_error(
            source,
            f"not valid JSON at line {error.lineno} column {error.colno}",
            None,
            f"{error.msg}; expected a JSON list of scenario objects",
        ) from None
    return validate_scenarios(data, source)


def load_scenarios(path: str | Path | None = None) -> list[Scenario]:
    """Scenarios from a JSON file in file order; ``None`` (or "") means the built-in file."""
    if path is None or path == "":
        return builtin_scenarios()
    file = Path(path)
    return scenarios_from_json(
        read_user_file(file, "expected a JSON file listing decision scenarios"), str(file)
    )


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[Scenario, ...]:
    resource = resources.files("harness_plugins.builtin.preferences").joinpath(BUILTIN_FILE)
    return tuple(scenarios_from_json(resource.read_text(encoding="utf-8"), str(resource)))


def builtin_scenarios() -> list[Scenario]:
    """The scenarios written for this project (parsed once, a fresh list per call)."""
    return list(_builtin())
