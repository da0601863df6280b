"""Reasoning topics of the built-in question bank: arithmetic, units, comparisons, sequences, dates.

Generated from seeded random numbers and small tables (no facts to look up), with the
helpers of `harness_plugins.banks.question_topics`.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _datetime
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from harness_plugins.banks.question_topics import (
    Item,
    _fill,
    _fmt,
    _item,
    _join_or,
    _ordinal,
    _pick,
    _table,
)

_Item = Item

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_DAYS = (31, None, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# --------------------------------------------------------------------------
# Topic generators.  Each returns its items in a fixed order; ids are the
# position within the topic, so other topics never shift them.
# --------------------------------------------------------------------------


def _arithmetic(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(question: str, correct: int, candidates: Sequence[int]) -> bool:
        if question in seen:
            return False
        wrong = [str(c) for c in candidates if c >= 0]
        items.append(_item(question, str(correct), _pick(rng, str(correct), wrong)))
        seen.add(question)
        return True

    def add_2digit() -> bool:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        c = a + b
        return add(f"What is {a} + {b}?", c, [c - 1, c + 1, c - 10, c + 10, c + 2])

    def add_3digit() -> bool:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        c = a + b
        return add(f"What is {a} + {b}?", c, [c - 1, c + 1, c - 10, c + 10, c + 100, c - 100])

    def sub_2digit() -> bool:
        a = rng.randint(20, 99)
        b = rng.randint(10, a - 1)
        c = a - b
        return add(f"What is {a} - {b}?", c, [c - 1, c + 1, c + 10, c - 10, c + 2, a + b])

    def sub_3digit() -> bool:
        a = rng.randint(200, 999)
        b = rng.randint(100, a - 1)
        c = a - b
        return add(f"What is {a} - {b}?", c, [c - 1, c + 1, c + 10, c - 10, c + 100, c - 100])

    def times_table() -> bool:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        c = a * b
        cands = [a * (b + 1), a * (b - 1), (a + 1) * b, (a - 1) * b, c + 1, c - 1, a + b]
        return add(f"What is {a} times {b}?", c, cands)

    def times_2x1() -> bool:
        a, b = rng.randint(11, 99), rng.randint(3, 9)
        c = a * b
        cands = [c + b, c - b, c + 10, c - 10, c + 1, c - 1, a * (b + 1)]
        return add(f"What is {a} times {b}?", c, cands)

    def divide() -> bool:
        a, b = rng.randint(2, 15), rng.randint(2, 12)
        c = a * b
        return add(f"What is {c} divided by {b}?", a, [a + 1, a - 1, a + 2, a - 2, b])

    _fill(80, add_2digit)
    _fill(50, add_3digit)
    _fill(70, sub_2digit)
    _fill(40, sub_3digit)
    _fill(60, times_table)
    _fill(50, times_2x1)
    _fill(50, divide)
    return items


_CONVERSIONS = _table("conversions")

_INTS = [Decimal(n) for n in range(2, 21)]
_HALVES = _INTS + [Decimal(n) + Decimal("0.5") for n in range(10)]


def _unit_conversion(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for src, dst, factor_text, wrong_factors, kind in _CONVERSIONS:
        factor = Decimal(factor_text)
        results = _INTS if kind == "ints" else _HALVES
        # Small factors pick a clean result first so the question value is
        # a whole number ("How many kilograms are in 2500 grams?").
        upward = factor >= 1
        for base in rng.sample(results, 14):
            value = base if upward else base / factor
            correct = value * factor
            wrong = [_fmt(value * Decimal(w)) for w in wrong_factors]
            question = f"How many {dst} are in {_fmt(value)} {src}?"
            items.append(_item(question, _fmt(correct), wrong))
    return items


def _comparisons(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(question: str, correct: str, wrong: Sequence[str]) -> bool:
        if question in seen:
            return False
        seen.add(question)
        items.append(_item(question, correct, wrong))
        return True

    def ints_question(largest: bool) -> bool:
        if rng.random() < 0.5:
            digits = rng.sample(range(1, 10), 3)
            perms = sorted({100 * a + 10 * b + c for a in digits for b in digits for c in digits
                            if len({a, b, c}) == 3})  # fmt: skip
            values = rng.sample(perms, 4)
        else:
            values = rng.sample(range(100, 1000), 4)
        return ranked("number", values, str, largest)

    def decimals_question(largest: bool) -> bool:
        a, b = rng.sample(range(1, 10), 2)
        texts = sorted({f"0.{a}", f"0.{a}{b}", f"0.{b}{a}", f"0.{a}0{b}", f"0.{b}", f"0.0{a}"})
        values = [Decimal(t) for t in rng.sample(texts, 4)]
        return ranked("number", values, _fmt, largest)

    def ranked(noun: str, values: Sequence[Any], show: Callable[[Any], str], largest: bool) -> bool:
        order = sorted(values)
        best = order[-1] if largest else order[0]
        shown = [show(v) for v in values]
        word = "largest" if largest else "smallest"
        question = f"Which {noun} is the {word}: {_join_or(shown)}?"
        return add(question, show(best), [show(v) for v in values if v != best])

    def measure_question(kind: str, pick_max: bool) -> bool:
        if kind == "length":
            amounts = rng.sample(range(500, 2001, 50), 4)  # millimeters
            units = (("m", Decimal(1000)), ("cm", Decimal(10)), ("mm", Decimal(1)))
            word = "longest" if pick_max else "shortest"
        else:
            amounts = rng.sample(range(500, 3001, 100), 4)  # grams
            units = (("kg", Decimal(1000)), ("g", Decimal(1)))
            word = "heaviest" if pick_max else "lightest"
        shown = []
        for amount in amounts:
            unit, size = rng.choice(units)
            shown.append(f"{_fmt(Decimal(amount) / size)} {unit}")
        best_index = amounts.index(max(amounts) if pick_max else min(amounts))
        question = f"Which is the {word}: {_join_or(shown)}?"
        wrong = [s for i, s in enumerate(shown) if i != best_index]
        return add(question, shown[best_index], wrong)

    plan: list[tuple[int, Callable[[], bool]]] = [
        (40, lambda: ints_question(True)),
        (40, lambda: ints_question(False)),
        (30, lambda: decimals_question(True)),
        (20, lambda: decimals_question(False)),
        (15, lambda: measure_question("length", True)),
        (10, lambda: measure_question("length", False)),
        (15, lambda: measure_question("mass", True)),
        (10, lambda: measure_question("mass", False)),
    ]
    for count, make in plan:
        _fill(count, make)
    return items


def _number_sequences(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(terms: Sequence[int], nxt: int, candidates: Sequence[int]) -> bool:
        question = f"What number comes next: {', '.join(map(str, terms))}, ...?"
        if question in seen:
            return False
        seen.add(question)
        wrong = [str(c) for c in candidates if c >= 0]
        items.append(_item(question, str(nxt), _pick(rng, str(nxt), wrong)))
        return True

    def ascending() -> bool:
        a, d = rng.randint(1, 40), rng.randint(2, 15)
        terms = [a + i * d for i in range(4)]
        n = a + 4 * d
        return add(terms, n, [n + 1, n - 1, n + 2, n + d, n - 2])

    def descending() -> bool:
        a, d = rng.randint(60, 120), rng.randint(2, 12)
        terms = [a - i * d for i in range(4)]
        n = a - 4 * d
        return add(terms, n, [n + 1, n - 1, n - d, n + 2, n - 2])

    def geometric() -> bool:
        a, r = rng.randint(1, 10), rng.randint(2, 3)
        terms = [a * r**i for i in range(4)]
        n = a * r**4
        linear = terms[-1] + (terms[-1] - terms[-2])
        return add(terms, n, [linear, n + 1, n - 1, n + a, n * r])

    def squares() -> bool:
        k = rng.randint(1, 12)
        terms = [(k + i) ** 2 for i in range(4)]
        n = (k + 4) ** 2
        linear = terms[-1] + (terms[-1] - terms[-2])
        return add(terms, n, [linear, n + 1, n - 1, n + 2, n + k + 4])

    plan: list[tuple[int, Callable[[], bool]]] = [
        (60, ascending),
        (25, descending),
        (20, geometric),
        (10, squares),
    ]
    for count, make in plan:
        _fill(count, make)
    return items


def _calendar_questions(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []

    def near_days(index: int) -> list[str]:
        return [_DAYS[(index + k) % 7] for k in (-2, -1, 1, 2)]

    def near_months(index: int) -> list[str]:
        return [_MONTHS[(index + k) % 12] for k in (-2, -1, 1, 2)]

    for start, day in enumerate(_DAYS):
        for n in range(1, 15):
            unit = "day" if n == 1 else "days"
            answer = (start + n) % 7
            question = f"Which day comes {n} {unit} after {day}?"
            items.append(
                _item(question, _DAYS[answer], _pick(rng, _DAYS[answer], near_days(answer)))
            )
    for start, day in enumerate(_DAYS):
        for n in range(1, 8):
            unit = "day" if n == 1 else "days"
            answer = (start - n) % 7
            question = f"Which day comes {n} {unit} before {day}?"
            items.append(
                _item(question, _DAYS[answer], _pick(rng, _DAYS[answer], near_days(answer)))
            )
    for start, month in enumerate(_MONTHS):
        for n in range(1, 7):
            unit = "month" if n == 1 else "months"
            answer = (start + n) % 12
            question = f"Which month comes {n} {unit} after {month}?"
            items.append(
                _item(question, _MONTHS[answer], _pick(rng, _MONTHS[answer], near_months(answer)))
            )
    for start, month in enumerate(_MONTHS):
        for n in range(1, 4):
            unit = "month" if n == 1 else "months"
            answer = (start - n) % 12
            question = f"Which month comes {n} {unit} before {month}?"
            items.append(
                _item(question, _MONTHS[answer], _pick(rng, _MONTHS[answer], near_months(answer)))
            )
    for index, month in enumerate(_MONTHS):
        question = f"Which month is the {_ordinal(index + 1)} month of the year?"
        items.append(_item(question, month, _pick(rng, month, near_months(index))))
    lengths = ["28", "29", "30", "31"]
    for month, days in zip(_MONTHS, _MONTH_DAYS, strict=True):
        if days is None:
            continue
        question = f"How many days are there in {month}?"
        items.append(_item(question, str(days), [x for x in lengths if x != str(days)]))
    for label, days in (("a common (non-leap) year", 28), ("a leap year", 29)):
        question = f"How many days does February have in {label}?"
        items.append(_item(question, str(days), [x for x in lengths if x != str(days)]))  # fmt: skip
    for label, days in (("a common (non-leap) year", 365), ("a leap year", 366)):
        question = f"How many days are there in {label}?"
        cands = [str(x) for x in (364, 365, 366, 360, 367) if x != days]
        items.append(_item(question, str(days), _pick(rng, str(days), cands)))  # fmt: skip

    # Leap years: exactly one choice is a leap year by the Gregorian rule.
    leap_years = [y for y in range(1904, 2097) if _calendar.isleap(y)]
    for year in rng.sample(leap_years, 30):
        others = [y for y in range(year - 3, year + 4) if not _calendar.isleap(y)]
        options = [year, *rng.sample(others, 3)]
        shown = [str(y) for y in sorted(options)]
        question = f"Which of these years is a leap year: {_join_or(shown)}?"
        items.append(_item(question, str(year), [s for s in shown if s != str(year)]))
    for options in ((1800, 1900, 2000, 2100), (1896, 1900, 1902, 1906), (2000, 2001, 2002, 2003)):
        leaps = [y for y in options if _calendar.isleap(y)]
        assert len(leaps) == 1, options
        shown = [str(y) for y in options]
        question = f"Which of these years is a leap year: {_join_or(shown)}?"
        items.append(_item(question, str(leaps[0]), [s for s in shown if s != str(leaps[0])]))

    # Weekday of a past date (hard for small models; computed, not recalled).
    seen: set[str] = set()

    def weekday_question() -> bool:
        ordinal = rng.randint(
            _datetime.date(1950, 1, 1).toordinal(), _datetime.date(2020, 12, 31).toordinal()
        )
        date = _datetime.date.fromordinal(ordinal)
        question = f"What day of the week was {date.day} {_MONTHS[date.month - 1]} {date.year}?"
        if question in seen:
            return False
        seen.add(question)
        answer = _DAYS[date.weekday()]
        items.append(_item(question, answer, _pick(rng, answer, near_days(date.weekday()))))
        return True

    _fill(30, weekday_question)
    return items


# Topic order here only affects generation, never ids or row order.
