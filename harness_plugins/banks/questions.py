"""Offline multiple-choice question bank in MMLU's layout.

The input-ablation benchmark needs questions that a small instruct model answers
correctly only some of the time, and it must run without network access.  This
module generates such a bank from fact tables and arithmetic written for this
project, so every run and every machine sees the same rows.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any

from harness_plugins.banks import question_reasoning as reasoning
from harness_plugins.banks import question_topics as facts
from harness_plugins.banks.question_topics import Item, seeded_rng

if TYPE_CHECKING:  # imported lazily: validate_mmlu_layout needs no datasets
    import datasets

__all__ = [
    "MMLU_COLUMNS",
    "builtin_questions",
    "unique_questions",
    "validate_mmlu_layout",
]

MMLU_COLUMNS = ("question", "subject", "choices", "answer")

_LETTERS = ("A", "B", "C", "D")
_EXPECTED_LAYOUT = (
    "needs MMLU's columns question (str), choices (list of 4 str), "
    "answer (int index); subject (str) optional"
)


TOPICS: tuple[tuple[str, Callable[[random.Random], list[Item]]], ...] = (
    ("arithmetic", reasoning._arithmetic),
    ("world_capitals", facts._world_capitals),
    ("unit_conversion", reasoning._unit_conversion),
    ("chemical_symbols", facts._chemical_symbols),
    ("atomic_numbers", facts._atomic_numbers),
    ("geography", facts._geography),
    ("calendar", reasoning._calendar_questions),
    ("comparisons", reasoning._comparisons),
    ("number_sequences", reasoning._number_sequences),
    ("antonyms", facts._antonyms),
    ("general_science", facts._general_science),
)


@functools.lru_cache(maxsize=1)
def _bank_rows() -> tuple[tuple[str, str, str, tuple[str, ...], int], ...]:
    """Generate once per process; rows are immutable tuples so the cache is safe."""
    rows: list[tuple[str, str, str, tuple[str, ...], int]] = []
    questions: set[str] = set()
    for topic, make in TOPICS:
        items = make(seeded_rng(topic, "content"))
        shuffler = seeded_rng(topic, "answer-position")
        for index, (question, correct, wrong) in enumerate(items):
            choices = [correct, *wrong]
            if len(set(choices)) != 4 or any(not c for c in choices):
                raise RuntimeError(f"bad choices for {question!r}: {choices!r}")
            if "\n" in question or question in questions:
                raise RuntimeError(f"bad or duplicate question {question!r}")
            questions.add(question)
            shuffler.shuffle(choices)
            qid = f"{topic}-{index:04d}"
            rows.append((qid, question, topic, tuple(choices), choices.index(correct)))
    # Order by a hash of the id: any prefix of the bank mixes all topics, and
    # the order does not depend on which topic was generated first.
    rows.sort(key=lambda row: hashlib.sha256(row[0].encode("utf-8")).hexdigest())
    return tuple(rows)


def builtin_questions() -> datasets.Dataset:
    """Deterministic bank; same rows in the same order on every call and machine.

    It exists so the input-ablation benchmark can run offline with questions a
    135M-parameter model gets right only sometimes.  Columns follow MMLU
    (``answer`` is a ClassLabel over A-D, i.e. an int index) plus a stable
    ``question_id`` used for train/test partitioning.
    """
    import datasets

    # datasets>=4 names the list feature List; 3.x only has Sequence.
    list_of = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features(
        {
            "question": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "choices": list_of(datasets.Value("string")),
            "answer": datasets.ClassLabel(names=list(_LETTERS)),
            "question_id": datasets.Value("string"),
        }
    )
    rows = _bank_rows()
    return datasets.Dataset.from_dict(
        {
            "question": [r[1] for r in rows],
            "subject": [r[2] for r in rows],
            "choices": [list(r[3]) for r in rows],
            "answer": [r[4] for r in rows],
            "question_id": [r[0] for r in rows],
        },
        features=features,
    )


def _layout_error(source: str, problem: str) -> ValueError:
    where = " ".join(str(source).split())
    return ValueError(f"{where}: {problem}; {_EXPECTED_LAYOUT}")


def validate_mmlu_layout(ds: Any, source: str) -> None:
    """Fail early, in one readable line, before a benchmark run wastes model time.

    Every row is checked (a bad row deep in a dataset would otherwise surface as a
    traceback, or a wrong reference, in the middle of a build); the message names the
    first bad row.
    """
    columns = getattr(ds, "column_names", None)
    if isinstance(columns, dict):
        raise _layout_error(source, f"got several splits {sorted(columns)}, pick one")
    if not isinstance(columns, list | tuple):
        raise _layout_error(source, f"not a table with named columns ({type(ds).__name__})")
    missing = [c for c in ("question", "choices", "answer") if c not in columns]
    if missing:
        raise _layout_error(source, f"missing column {', '.join(repr(c) for c in missing)}")
    if len(ds) == 0:
        raise _layout_error(source, "has no rows")
    subjects = ds["subject"] if "subject" in columns else [""] * len(ds)
    columns_ = (ds["question"], subjects, ds["choices"], ds["answer"])
    for index, row in enumerate(zip(*columns_, strict=True)):
        problem = _row_problem(*row)
        if problem:
            raise _layout_error(source, f"row {index}: {problem}")


def _row_problem(question: Any, subject: Any, choices: Any, answer: Any) -> str | None:
    if not isinstance(question, str):
        return f"column 'question' is {type(question).__name__}, not str"
    if not question.strip():
        return "column 'question' is empty"
    if not isinstance(subject, str):
        return f"column 'subject' is {type(subject).__name__}, not str"
    if not isinstance(choices, list | tuple):
        return f"column 'choices' is {type(choices).__name__}, not a list of str"
    if not all(isinstance(c, str) for c in choices):
        return "column 'choices' holds a non-str item"
    if len(choices) != 4:
        return f"column 'choices' has {len(choices)} items, not 4"
    if isinstance(answer, bool) or not isinstance(answer, Integral):
        return f"column 'answer' is {type(answer).__name__}, not int"
    if not 0 <= int(answer) < len(choices):
        return f"column 'answer' is {int(answer)}, outside choices 0..{len(choices) - 1}"
    return None


_warned: set[tuple[Any, ...]] = set()


def unique_questions(ds: Any, ids: list[str], source: str) -> list[int]:
    """Row indices of ``ds`` with each question once (the first of repeats), one warning
    for the repeats; `ValueError` when a repeat has another answer or an id names two
    different questions (a reference cannot be right for both).

    A repeated question would be scored as two documents, weighting it twice and sharing
    one reference row between them; ``ids[i]`` is row i's ``question_id``.
    """
    first_of: dict[tuple[str, tuple[str, ...]], int] = {}
    id_of: dict[str, int] = {}
    kept: list[int] = []
    repeats: list[tuple[int, int]] = []
    questions, choices, answers = ds["question"], ds["choices"], ds["answer"]
    for index, qid in enumerate(ids):
        content = (" ".join(questions[index].split()), tuple(choices[index]))
        earlier = first_of.get(content)
        if earlier is not None:
            if int(answers[earlier]) != int(answers[index]):
                raise _layout_error(
                    source,
                    f"rows {earlier} and {index} ask the same question with different "
                    "answers; fix or remove one of them",
                )
            repeats.append((earlier, index))
            continue
        if qid in id_of:
            raise _layout_error(
                source,
                f"question_id {qid!r} names two different questions (rows {id_of[qid]} and "
                f"{index}); give each question its own id",
            )
        first_of[content], id_of[qid] = index, index
        kept.append(index)
    said = (" ".join(str(source).split()), len(repeats), *repeats[:1])
    if repeats and said not in _warned:  # once per process, not per partition
        _warned.add(said)
        logging.getLogger("introspect").warning(
            "introspect: %s repeats %d question(s) (the first: row %d repeats row %d); "
            "each question is asked once",
            " ".join(str(source).split()),
            len(repeats),
            repeats[0][1],
            repeats[0][0],
        )
    return kept
