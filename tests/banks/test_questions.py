"""Tests for the built-in offline question bank (harness_plugins/question_bank.py).

Fast and model-free: they check the bank's layout, balance, determinism and a
sample of its facts by recomputing generated answers independently.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import datasets
import pytest

from harness_plugins.banks import question_topics
from harness_plugins.banks import questions as question_bank
from harness_plugins.banks.questions import (
    MMLU_COLUMNS,
    builtin_questions,
    validate_mmlu_layout,
)
from harness_plugins.partition import partition_of

REPO_ROOT = Path(__file__).resolve().parents[2]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
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
]


@pytest.fixture(scope="module")
def bank() -> datasets.Dataset:
    return builtin_questions()


@pytest.fixture(scope="module")
def rows(bank: datasets.Dataset) -> list[dict[str, Any]]:
    return bank.to_list()


def correct_choice(row: dict[str, Any]) -> str:
    return row["choices"][row["answer"]]


def by_subject(rows: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    found = [r for r in rows if r["subject"] == subject]
    assert found, subject
    return found


def find(rows: list[dict[str, Any]], question: str) -> dict[str, Any]:
    matches = [r for r in rows if r["question"] == question]
    assert len(matches) == 1, question
    return matches[0]


def digest(rows: list[dict[str, Any]]) -> str:
    text = json.dumps(rows, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- layout


def test_columns_follow_mmlu_plus_question_id(bank: datasets.Dataset) -> None:
    assert MMLU_COLUMNS == ("question", "subject", "choices", "answer")
    assert bank.column_names == [*MMLU_COLUMNS, "question_id"]
    validate_mmlu_layout(bank, "builtin")


def test_at_least_1000_rows(bank: datasets.Dataset) -> None:
    assert len(bank) >= 1000


def test_questions_are_distinct_single_lines(rows: list[dict[str, Any]]) -> None:
    questions = [r["question"] for r in rows]
    assert len(set(questions)) == len(questions)
    for q in questions:
        assert isinstance(q, str) and q.strip() == q and q
        assert "\n" not in q


def test_question_ids_unique_and_per_topic(rows: list[dict[str, Any]]) -> None:
    ids = [r["question_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    for r in rows:
        assert re.fullmatch(rf"{re.escape(r['subject'])}-\d{{4}}", r["question_id"])


def test_four_distinct_choices_and_answer_in_range(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        choices = r["choices"]
        assert len(choices) == 4, r
        assert all(isinstance(c, str) and c for c in choices), r
        assert len(set(choices)) == 4, r
        assert isinstance(r["answer"], int) and 0 <= r["answer"] <= 3, r


def test_answer_positions_roughly_uniform(rows: list[dict[str, Any]]) -> None:
    counts = Counter(r["answer"] for r in rows)
    for position in range(4):
        share = counts[position] / len(rows)
        assert 0.15 <= share <= 0.35, (position, share)


def test_enough_topics(rows: list[dict[str, Any]]) -> None:
    subjects = Counter(r["subject"] for r in rows)
    assert len(subjects) >= 6
    for expected in (
        "arithmetic",
        "world_capitals",
        "unit_conversion",
        "chemical_symbols",
        "geography",
        "calendar",
        "comparisons",
    ):
        assert subjects[expected] >= 40, (expected, subjects[expected])


def test_fact_tables_are_large_enough() -> None:
    assert len(question_topics._COUNTRIES) >= 80
    assert len(question_topics._ELEMENTS) >= 40


# ---------------------------------------------------------------- determinism


def test_same_rows_on_every_call(rows: list[dict[str, Any]]) -> None:
    question_bank._bank_rows.cache_clear()
    again = builtin_questions().to_list()
    assert again == rows
    assert digest(again) == digest(rows)


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_same_rows_under_other_hash_seed(rows: list[dict[str, Any]], hash_seed: str) -> None:
    script = (
        "import hashlib, json\n"
        "from harness_plugins.banks.questions import builtin_questions\n"
        "from harness_plugins.partition import partition_of\n"
        "rows = builtin_questions().to_list()\n"
        "text = json.dumps(rows, sort_keys=True, ensure_ascii=True)\n"
        "print(hashlib.sha256(text.encode('utf-8')).hexdigest())\n"
        "print(''.join(partition_of(r['question_id'], 0.3)[1] for r in rows))\n"
    )
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = hash_seed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    child_digest, child_parts = done.stdout.split()
    assert child_digest == digest(rows)
    assert child_parts == "".join(partition_of(r["question_id"], 0.3)[1] for r in rows)


def test_ids_do_not_depend_on_topic_order(
    rows: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(question_bank, "TOPICS", tuple(reversed(question_bank.TOPICS)))
    question_bank._bank_rows.cache_clear()
    try:
        reordered = builtin_questions().to_list()
    finally:
        question_bank._bank_rows.cache_clear()
    assert reordered == rows


# ---------------------------------------------------------------- facts


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the capital of France?", "Paris"),
        ("What is the capital of Japan?", "Tokyo"),
        ("What is the capital of Australia?", "Canberra"),
        ("What is the capital of Canada?", "Ottawa"),
        ("What is the capital of Brazil?", "Brasilia"),
        ("What is the capital of the United Kingdom?", "London"),
        ("Which country has Rome as its capital?", "Italy"),
        ("What is the chemical symbol for iron?", "Fe"),
        ("What is the chemical symbol for gold?", "Au"),
        ("What is the chemical symbol for sodium?", "Na"),
        ("Which element has the chemical symbol K?", "Potassium"),
        ("What is the atomic number of carbon?", "6"),
        ("On which continent is Brazil?", "South America"),
        ("On which continent is Kenya?", "Africa"),
        ("In which country is the city of Osaka?", "Japan"),
        ("Which day comes 3 days after Monday?", "Thursday"),
        ("Which month comes 1 month after December?", "January"),
        ("How many days are there in April?", "30"),
        ("How many days does February have in a leap year?", "29"),
        ("What is the opposite of 'hot'?", "cold"),
        ("Which planet is the 3rd planet from the Sun?", "Earth"),
        ("Which is the largest planet in the Solar System?", "Jupiter"),
    ],
)
def test_spot_checked_facts(rows: list[dict[str, Any]], question: str, answer: str) -> None:
    assert correct_choice(find(rows, question)) == answer


def test_capital_distractors_are_other_capitals(rows: list[dict[str, Any]]) -> None:
    capitals = {capital for _, _, capital, _, _ in question_topics._COUNTRIES}
    for r in by_subject(rows, "world_capitals"):
        if r["question"].startswith("What is the capital of"):
            assert set(r["choices"]) <= capitals, r


ARITHMETIC = re.compile(r"What is (\d+) (\+|-|times|divided by) (\d+)\?")


def test_arithmetic_answers_are_computed_values(rows: list[dict[str, Any]]) -> None:
    ops = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "times": lambda a, b: a * b,
        "divided by": lambda a, b: a // b,
    }
    checked = 0
    for r in by_subject(rows, "arithmetic"):
        match = ARITHMETIC.fullmatch(r["question"])
        assert match, r["question"]
        a, op, b = int(match[1]), match[2], int(match[3])
        if op == "divided by":
            assert a % b == 0, r
        expected = ops[op](a, b)
        assert correct_choice(r) == str(expected), r
        # Distractors are nearby numbers or a slip of the operator (a + b for a - b).
        for choice in r["choices"]:
            assert choice.isdigit()
            if choice != str(expected):
                assert abs(int(choice) - expected) <= 2 * max(a, b, 100), r
        checked += 1
    assert checked >= 300


UNIT_FACTORS = {
    ("meters", "centimeters"): Decimal(100),
    ("kilometers", "meters"): Decimal(1000),
    ("kilograms", "grams"): Decimal(1000),
    ("liters", "milliliters"): Decimal(1000),
    ("centimeters", "millimeters"): Decimal(10),
    ("meters", "millimeters"): Decimal(1000),
    ("metric tons", "kilograms"): Decimal(1000),
    ("hours", "minutes"): Decimal(60),
    ("minutes", "seconds"): Decimal(60),
    ("days", "hours"): Decimal(24),
    ("weeks", "days"): Decimal(7),
    ("hours", "seconds"): Decimal(3600),
    ("grams", "kilograms"): Decimal("0.001"),
    ("centimeters", "meters"): Decimal("0.01"),
    ("milliliters", "liters"): Decimal("0.001"),
    ("meters", "kilometers"): Decimal("0.001"),
    ("millimeters", "centimeters"): Decimal("0.1"),
}


def test_unit_conversions_are_exact(rows: list[dict[str, Any]]) -> None:
    pattern = re.compile(r"How many ([a-z ]+) are in ([\d.]+) ([a-z ]+)\?")
    for r in by_subject(rows, "unit_conversion"):
        match = pattern.fullmatch(r["question"])
        assert match, r["question"]
        dst, value, src = match[1], Decimal(match[2]), match[3]
        expected = value * UNIT_FACTORS[(src, dst)]
        assert Decimal(correct_choice(r)) == expected, r
        others = [Decimal(c) for c in r["choices"] if c != correct_choice(r)]
        assert all(o != expected for o in others), r


def test_calendar_day_and_month_arithmetic(rows: list[dict[str, Any]]) -> None:
    day_q = re.compile(r"Which day comes (\d+) days? (after|before) (\w+)\?")
    month_q = re.compile(r"Which month comes (\d+) months? (after|before) (\w+)\?")
    date_q = re.compile(r"What day of the week was (\d+) (\w+) (\d{4})\?")
    seen = Counter()
    for r in by_subject(rows, "calendar"):
        q = r["question"]
        if m := day_q.fullmatch(q):
            sign = 1 if m[2] == "after" else -1
            expected = DAYS[(DAYS.index(m[3]) + sign * int(m[1])) % 7]
            seen["day"] += 1
        elif m := month_q.fullmatch(q):
            sign = 1 if m[2] == "after" else -1
            expected = MONTHS[(MONTHS.index(m[3]) + sign * int(m[1])) % 12]
            seen["month"] += 1
        elif m := date_q.fullmatch(q):
            date = datetime.date(int(m[3]), MONTHS.index(m[2]) + 1, int(m[1]))
            expected = DAYS[date.weekday()]
            seen["date"] += 1
        else:
            continue
        assert correct_choice(r) == expected, r
    assert seen["day"] >= 50 and seen["month"] >= 50 and seen["date"] >= 10


def test_comparisons_pick_the_extreme(rows: list[dict[str, Any]]) -> None:
    number_q = re.compile(r"Which number is the (largest|smallest): (.+)\?")
    measure_q = re.compile(r"Which is the (longest|shortest|heaviest|lightest): (.+)\?")
    scale = {"m": 1000, "cm": 10, "mm": 1, "kg": 1000, "g": 1}
    for r in by_subject(rows, "comparisons"):
        if m := number_q.fullmatch(r["question"]):
            values = {c: Decimal(c) for c in r["choices"]}
            want_max = m[1] == "largest"
        else:
            m = measure_q.fullmatch(r["question"])
            assert m, r["question"]
            values = {}
            for c in r["choices"]:
                amount, unit = c.split()
                values[c] = Decimal(amount) * scale[unit]
            want_max = m[1] in ("longest", "heaviest")
        assert len(set(values.values())) == 4, r
        pick = max if want_max else min
        assert correct_choice(r) == pick(values, key=values.__getitem__), r


def test_number_sequences_continue_the_pattern(rows: list[dict[str, Any]]) -> None:
    for r in by_subject(rows, "number_sequences"):
        m = re.fullmatch(r"What number comes next: ([\d, ]+), \.\.\.\?", r["question"])
        assert m, r["question"]
        terms = [int(t) for t in m[1].split(", ")]
        nxt = int(correct_choice(r))
        diffs = [b - a for a, b in itertools.pairwise(terms)]
        if len(set(diffs)) == 1:
            assert nxt == terms[-1] + diffs[0], r
        elif all(t > 0 for t in terms) and len({b / a for a, b in itertools.pairwise(terms)}) == 1:
            assert nxt == terms[-1] * terms[-1] // terms[-2], r
        else:
            root = round(terms[-1] ** 0.5)
            assert all(round(t**0.5) ** 2 == t for t in terms), r
            assert nxt == (root + 1) ** 2, r


def test_chemical_symbol_distractors_are_real_symbols(rows: list[dict[str, Any]]) -> None:
    symbols = {s for _, s, _ in question_topics._ELEMENTS}
    names = {n for n, _, _ in question_topics._ELEMENTS}
    for r in by_subject(rows, "chemical_symbols"):
        pool = symbols if r["question"].startswith("What is the chemical symbol") else names
        assert set(r["choices"]) <= pool, r


# ---------------------------------------------------------------- partitions


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_partition_sizes_follow_fraction(rows: list[dict[str, Any]], fraction: float) -> None:
    parts = Counter(partition_of(r["question_id"], fraction) for r in rows)
    assert set(parts) == {"train", "test"}
    assert abs(parts["test"] / len(rows) - fraction) < 0.04, parts


def test_partition_is_stable_and_monotone(rows: list[dict[str, Any]]) -> None:
    ids = [r["question_id"] for r in rows]
    first = [partition_of(i, 0.25) for i in ids]
    assert first == [partition_of(i, 0.25) for i in ids]
    # A question in the test split stays there when the split grows.
    larger = [partition_of(i, 0.5) for i in ids]
    assert all(b == "test" for a, b in zip(first, larger, strict=True) if a == "test")
    assert {partition_of(i, 0.0) for i in ids} == {"train"}
    assert {partition_of(i, 1.0) for i in ids} == {"test"}


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_partition_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        partition_of("arithmetic-0000", fraction)


# ---------------------------------------------------------------- validation


def mmlu_like(**overrides: Any) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {
        "question": ["What is 1 + 1?"],
        "subject": ["arithmetic"],
        "choices": [["1", "2", "3", "4"]],
        "answer": [1],
    }
    data.update(overrides)
    return data


def assert_layout_error(ds: Any, *needles: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_mmlu_layout(ds, "my/source.jsonl")
    message = str(info.value)
    assert "\n" not in message
    assert "my/source.jsonl" in message
    assert "question (str), choices (list of 4 str), answer (int index)" in message
    for needle in needles:
        assert needle in message, message


def test_validate_accepts_mmlu_without_subject() -> None:
    data = mmlu_like()
    del data["subject"]
    validate_mmlu_layout(datasets.Dataset.from_dict(data), "no-subject")


@pytest.mark.parametrize("column", ["question", "choices", "answer"])
def test_validate_names_missing_column(column: str) -> None:
    data = mmlu_like()
    del data[column]
    assert_layout_error(datasets.Dataset.from_dict(data), "missing", repr(column))


@pytest.mark.parametrize(
    ("overrides", "column"),
    [
        ({"question": [7]}, "'question'"),
        ({"subject": [3]}, "'subject'"),
        ({"choices": ["A, B, C, D"]}, "'choices'"),
        ({"choices": [["1", "2", "3"]]}, "'choices'"),
        ({"choices": [[1, 2, 3, 4]]}, "'choices'"),
        ({"answer": ["B"]}, "'answer'"),
        ({"answer": [4]}, "'answer'"),
        ({"answer": [-1]}, "'answer'"),
    ],
)
def test_validate_names_badly_typed_column(overrides: dict[str, Any], column: str) -> None:
    assert_layout_error(datasets.Dataset.from_dict(mmlu_like(**overrides)), column)


def test_validate_rejects_empty_and_non_tables() -> None:
    empty = datasets.Dataset.from_dict({k: [] for k in mmlu_like()})
    assert_layout_error(empty, "no rows")
    assert_layout_error(["not", "a", "dataset"], "named columns")
    split = datasets.DatasetDict({"test": datasets.Dataset.from_dict(mmlu_like())})
    assert_layout_error(split, "splits")
