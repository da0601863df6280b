"""Tests for the fact bank (harness_plugins/banks/facts.py, banks/facts.json).

Fast and model-free: sizes, ids, counterfactual consistency, a few facts
checked by hand and against question_bank's tables,
and the Patchscopes TSV reader with every one-line error it raises.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness_plugins.banks import facts as fact_bank
from harness_plugins.banks import question_reasoning, question_topics
from harness_plugins.banks.facts import (
    AttributeTriple,
    Fact,
    builtin_attribute_triples,
    builtin_facts,
)
from harness_plugins.banks.patchscopes_tsv import TSV_COLUMNS, load_patchscopes_tsv
from harness_plugins.errors import IntrospectError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILTIN_PATH = REPO_ROOT / "harness_plugins" / "banks" / "facts.json"
STANDALONE_X = re.compile(r"(?<!\w)x(?!\w)")


@pytest.fixture(scope="module")
def facts() -> list[Fact]:
    return builtin_facts()


@pytest.fixture(scope="module")
def triples() -> list[AttributeTriple]:
    return builtin_attribute_triples()


def _contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word match, so 'tin' is not found in 'Latin'."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags=re.IGNORECASE) is not None


# --------------------------------------------------------------------------
# Built-in facts
# --------------------------------------------------------------------------


def test_sizes(facts: list[Fact], triples: list[AttributeTriple]) -> None:
    assert len(facts) >= 320
    assert len({f.relation for f in facts}) >= 8
    assert len(triples) >= 200
    assert len({t.relation for t in triples}) >= 6


def test_every_relation_has_enough_facts_for_counterfactuals(facts: list[Fact]) -> None:
    per_relation = Counter(f.relation for f in facts)
    assert min(per_relation.values()) >= 7, per_relation
    for relation in per_relation:
        objects = {f.object for f in facts if f.relation == relation}
        assert len(objects) >= 2, relation


def test_ids_unique_and_named_after_the_relation(
    facts: list[Fact], triples: list[AttributeTriple]
) -> None:
    ids = [f.fact_id for f in facts]
    assert len(ids) == len(set(ids))
    for fact in facts:
        assert re.fullmatch(rf"{re.escape(fact.relation)}-\d{{3}}", fact.fact_id), fact
    triple_ids = [t.triple_id for t in triples]
    assert len(triple_ids) == len(set(triple_ids))
    by_id = {f.fact_id: f for f in facts}
    for triple in triples:  # a triple shares the id of its fact, so results can be joined
        fact = by_id[triple.triple_id]
        assert (fact.relation, fact.subject, fact.object) == (
            triple.relation,
            triple.subject,
            triple.object,
        )


def test_each_subject_once_per_relation(facts: list[Fact]) -> None:
    pairs = Counter((f.relation, f.subject) for f in facts)
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_no_empty_or_padded_text(facts: list[Fact]) -> None:
    for fact in facts:
        for value in (
            fact.subject,
            fact.object,
            fact.counterfactual_subject,
            fact.counterfactual_object,
        ):
            assert value and value == value.strip() and "\n" not in value, fact


def test_counterfactuals_differ(facts: list[Fact]) -> None:
    for fact in facts:
        assert fact.counterfactual_subject != fact.subject, fact
        assert fact.counterfactual_object != fact.object, fact


def test_counterfactual_object_is_true_of_counterfactual_subject(facts: list[Fact]) -> None:
    truth = {(f.relation, f.subject): f.object for f in facts}
    for fact in facts:
        key = (fact.relation, fact.counterfactual_subject)
        assert key in truth, fact
        assert truth[key] == fact.counterfactual_object, fact


def test_counterfactual_subjects_are_balanced(facts: list[Fact]) -> None:
    """Each subject serves as a counterfactual about once, so no subject dominates a patching run."""
    usage = Counter((f.relation, f.counterfactual_subject) for f in facts)
    assert max(usage.values()) <= 2, usage.most_common(3)


def test_prompts(facts: list[Fact]) -> None:
    for fact in facts:
        assert fact.template.count("{}") == 1, fact
        clean = fact.prompt()
        corrupt = fact.prompt(fact.counterfactual_subject)
        assert fact.subject in clean and "{}" not in clean
        assert fact.counterfactual_subject in corrupt
        assert clean == fact.template.replace("{}", fact.subject)
        # Only the subject differs between the clean and the corrupted prompt.
        prefix, suffix = fact.template.split("{}")
        assert clean.startswith(prefix) and corrupt.startswith(prefix)
        assert clean.endswith(suffix) and corrupt.endswith(suffix)
        # The prompt must not give the answer away.
        assert not _contains_phrase(clean, fact.object), fact
        assert clean == clean.strip(), fact  # a trailing space would change the next token


def test_prompt_takes_any_subject() -> None:
    fact = next(f for f in builtin_facts() if f.fact_id == "capital-000")
    assert fact.prompt("{weird} subject") == "The capital of {weird} subject is"


def test_one_template_per_relation(facts: list[Fact]) -> None:
    templates = defaultdict(set)
    for fact in facts:
        templates[fact.relation].add(fact.template)
    assert all(len(t) == 1 for t in templates.values())


@pytest.mark.parametrize(
    ("relation", "subject", "expected"),
    [
        ("capital", "France", "Paris"),
        ("capital", "Italy", "Rome"),
        ("capital", "Japan", "Tokyo"),
        ("capital", "Australia", "Canberra"),
        ("continent", "Brazil", "South America"),
        ("continent", "Kenya", "Africa"),
        ("language", "Brazil", "Portuguese"),
        ("language", "Austria", "German"),
        ("currency", "Japan", "yen"),
        ("currency", "Germany", "euro"),
        ("element_symbol", "gold", "Au"),
        ("element_symbol", "iron", "Fe"),
        ("element_symbol", "sodium", "Na"),
        ("animal_class", "dolphin", "mammal"),
        ("animal_class", "penguin", "bird"),
        ("animal_class", "shark", "fish"),
        ("animal_class", "frog", "amphibian"),
        ("color", "grass", "green"),
        ("color", "snow", "white"),
        ("opposite", "hot", "cold"),
        ("next_day", "Monday", "Tuesday"),
        ("next_day", "Sunday", "Monday"),
        ("next_month", "December", "January"),
        ("next_number", "nine", "ten"),
        ("plural", "mouse", "mice"),
        ("plural", "child", "children"),
        ("landmark_city", "the Eiffel Tower", "Paris"),
        ("landmark_city", "the Colosseum", "Rome"),
        ("city_country", "Barcelona", "Spain"),
    ],
)
def test_spot_checks(facts: list[Fact], relation: str, subject: str, expected: str) -> None:
    matches = [f for f in facts if f.relation == relation and f.subject == subject]
    assert len(matches) == 1
    assert matches[0].object == expected


def test_spot_check_prompts(facts: list[Fact]) -> None:
    france = next(f for f in facts if f.relation == "capital" and f.subject == "France")
    assert france.prompt() == "The capital of France is"
    gold = next(f for f in facts if f.relation == "element_symbol" and f.subject == "gold")
    assert gold.prompt() == "The chemical symbol for gold is"
    monday = next(f for f in facts if f.relation == "next_day" and f.subject == "Monday")
    assert monday.prompt() == "The day after Monday is"


def test_successor_relations_are_complete(facts: list[Fact]) -> None:
    days = list(question_reasoning._DAYS)
    months = list(question_reasoning._MONTHS)
    next_day = {f.subject: f.object for f in facts if f.relation == "next_day"}
    next_month = {f.subject: f.object for f in facts if f.relation == "next_month"}
    assert next_day == {d: days[(i + 1) % 7] for i, d in enumerate(days)}
    assert next_month == {m: months[(i + 1) % 12] for i, m in enumerate(months)}


def test_agrees_with_question_bank(facts: list[Fact]) -> None:
    """Facts shared with question_bank's tables must not drift apart."""
    capitals = {c[0]: c[2] for c in question_topics._COUNTRIES}
    continents = {c[0]: c[4] for c in question_topics._COUNTRIES}
    symbols = {name.lower(): symbol for name, symbol, _ in question_topics._ELEMENTS}
    city_country = {city: country for city, country, _ in question_topics._CITIES}
    checked = Counter()
    for fact in facts:
        table = {
            "capital": capitals,
            "continent": continents,
            "element_symbol": symbols,
            "city_country": city_country,
        }.get(fact.relation)
        if table is not None and fact.subject in table:
            assert table[fact.subject] == fact.object, fact
            checked[fact.relation] += 1
    assert checked["capital"] >= 50 and checked["element_symbol"] >= 30


def test_builtin_is_cached_but_returns_fresh_lists() -> None:
    first, second = builtin_facts(), builtin_facts()
    assert first == second and first is not second
    first.clear()
    assert builtin_facts() == second
    t1, t2 = builtin_attribute_triples(), builtin_attribute_triples()
    assert t1 == t2 and t1 is not t2


def test_facts_are_frozen(facts: list[Fact]) -> None:
    with pytest.raises(AttributeError):
        facts[0].object = "Lyon"  # type: ignore[misc]


# --------------------------------------------------------------------------
# Built-in attribute triples
# --------------------------------------------------------------------------


def test_triples_shape(triples: list[AttributeTriple]) -> None:
    for triple in triples:
        assert triple.subject in triple.prompt_source, triple
        assert len(STANDALONE_X.findall(triple.prompt_target)) == 1, triple
        assert "{}" not in triple.prompt_target and "{}" not in triple.prompt_source
        assert triple.prompt_source.endswith("."), triple


def test_triple_sources_do_not_leak_the_answer(triples: list[AttributeTriple]) -> None:
    for triple in triples:
        assert not _contains_phrase(triple.prompt_source, triple.object), triple
        assert not _contains_phrase(triple.prompt_target, triple.object), triple


def test_triple_sources_vary_within_a_relation(triples: list[AttributeTriple]) -> None:
    by_relation = defaultdict(set)
    for triple in triples:
        by_relation[triple.relation].add(triple.prompt_source.replace(triple.subject, "{}"))
    assert all(len(sources) >= 3 for sources in by_relation.values()), by_relation


def test_triple_relations_per_relation_count(triples: list[AttributeTriple]) -> None:
    counts = Counter(t.relation for t in triples)
    assert sum(1 for n in counts.values() if n >= 20) >= 6, counts


# --------------------------------------------------------------------------
# The JSON file and its validation
# --------------------------------------------------------------------------


def test_json_file_layout() -> None:
    doc = json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))
    assert doc["format"] == "harness_plugins.fact_bank/v1"
    assert set(doc) == {"format", "relations", "facts"}
    for spec in doc["relations"].values():
        assert set(spec) == {
            "description",
            "template",
            "attribute_template",
            "source_templates",
        }
    for row in doc["facts"]:
        assert set(row) == {
            "id",
            "relation",
            "subject",
            "object",
            "counterfactual_subject",
            "counterfactual_object",
        }


def _doc() -> dict:
    return json.loads(BUILTIN_PATH.read_text(encoding="utf-8"))


def _break_cf_object(doc: dict) -> None:
    doc["facts"][0]["counterfactual_object"] = "Lyon"


def _break_cf_same(doc: dict) -> None:
    doc["facts"][0]["counterfactual_object"] = doc["facts"][0]["object"]


def _break_cf_subject(doc: dict) -> None:
    doc["facts"][0]["counterfactual_subject"] = doc["facts"][0]["subject"]


def _duplicate_id(doc: dict) -> None:
    doc["facts"][1]["id"] = doc["facts"][0]["id"]


def _duplicate_subject(doc: dict) -> None:
    doc["facts"].append(copy.deepcopy(doc["facts"][0]) | {"id": "capital-999"})


def _unknown_relation(doc: dict) -> None:
    doc["facts"][0]["relation"] = "capitol"


def _template_without_slot(doc: dict) -> None:
    doc["relations"]["capital"]["template"] = "The capital of France is"


def _attribute_without_x(doc: dict) -> None:
    doc["relations"]["capital"]["attribute_template"] = "The capital city of y is"


def _empty_subject(doc: dict) -> None:
    doc["facts"][0]["subject"] = " "


def _padded_object(doc: dict) -> None:
    doc["facts"][0]["object"] = "Paris "


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _break_cf_object,
            r"field 'counterfactual_object': '[^']+' has object '[^']+' in this relation, not 'Lyon'",
        ),
        (_break_cf_same, r"field 'counterfactual_object': equals the object"),
        (_break_cf_subject, r"field 'counterfactual_subject': equals the subject"),
        (_duplicate_id, r"facts\[1\] \(capital-000\): field 'id': appears twice"),
        (_duplicate_subject, r"field 'subject': appears twice"),
        (_unknown_relation, r"field 'relation': 'capitol' is not in 'relations'"),
        (_template_without_slot, r"relation 'capital': field 'template': needs exactly one"),
        (_attribute_without_x, r"field 'attribute_template': needs a standalone x"),
        (_empty_subject, r"facts\[0\]: field 'subject': expected a non-empty string"),
        (_padded_object, r"facts\[0\]: field 'object': has leading or trailing spaces"),
    ],
)
def test_bank_validation(mutate, expected: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(IntrospectError, match=expected) as info:
        fact_bank._parse_bank(json.dumps(doc), "facts.json")
    assert "\n" not in str(info.value) and str(info.value).startswith("facts.json: ")


def test_bank_validation_rejects_bad_json() -> None:
    with pytest.raises(IntrospectError, match=r"^bad\.json: line 1: not valid JSON"):
        fact_bank._parse_bank("{", "bad.json")
    with pytest.raises(IntrospectError, match="field 'format'"):
        fact_bank._parse_bank("{}", "bad.json")


# --------------------------------------------------------------------------
# Patchscopes TSV
# --------------------------------------------------------------------------

# The upstream layout: a leading unnamed pandas index column, many columns we
# ignore, pandas-style quoting for fields with a newline or a quote, and some
# non-ASCII text stored as a literal \uXXXX escape.
UPSTREAM_HEADER = [
    "",
    "sample_id",
    "prompt_target",
    "position_target",
    "target_baseline",
    "object",
    "subject",
    "generations_baseline",
    "is_correct_baseline",
    "prompt_source",
    "position_source",
    "source_cropped_toks",
]


TSV_HEADER = list(TSV_COLUMNS)
MINIMAL_ROW = ["The capital city of x is", "Peru", "Lima", "I flew to Peru.", "3"]


def _row(
    index: int,
    subject: str,
    obj: str,
    source: str,
    *,
    target: str = "The capital city of x",
    position: str = "3",
) -> list[str]:
    return [
        str(index),
        str(index // 2),
        target,
        "-1",
        target.replace("x", subject),
        obj,
        subject,
        "[' Paris']",
        "True",
        source,
        position,
        "[' a']",
    ]


def _cell(value: str) -> str:
    if any(ch in value for ch in '\t\n"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = ["\t".join(_cell(v) for v in row) for row in [header, *rows]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _upstream_rows() -> list[list[str]]:
    return [
        _row(0, "France", "Paris", " he moved to France in the spring"),
        _row(1, "France", "Paris", ' the "Tour de France" began\nin July'),
        _row(2, "Brazil", "Bras\\u00edlia", " exports from Brazil grew"),
        _row(3, "Chile", "Santiago", " composed of Chilean and Peruvian"),
    ]


def test_tsv_upstream_layout(tmp_path: Path) -> None:
    path = _write_tsv(tmp_path / "country_capital_city.tsv", UPSTREAM_HEADER, _upstream_rows())
    triples = load_patchscopes_tsv(path)
    assert [t.triple_id for t in triples] == [
        "country_capital_city-0001",
        "country_capital_city-0002",
        "country_capital_city-0003",
        "country_capital_city-0004",
    ]
    assert {t.relation for t in triples} == {"country_capital_city"}
    assert triples[0] == AttributeTriple(
        triple_id="country_capital_city-0001",
        relation="country_capital_city",
        subject="France",
        object="Paris",
        prompt_target="The capital city of x",
        prompt_source=" he moved to France in the spring",  # verbatim, leading space kept
        position_source=3,
    )
    assert triples[1].prompt_source == ' the "Tour de France" began\nin July'
    assert triples[2].object == "Brasília"
    assert triples[3].subject == "Chile"
    # str paths work too, and the result is the same
    assert load_patchscopes_tsv(str(path)) == triples


def test_tsv_relation_column_and_minimal_columns(tmp_path: Path) -> None:
    header = ["relation", "subject", "object", "prompt_target", "prompt_source", "position_source"]
    rows = [
        ["capital", "Peru", "Lima", "The capital city of x is", "I flew to Peru.", "3"],
        ["currency", "Japan", "yen", "The currency of x is the", "Japan is far.", "0"],
    ]
    path = _write_tsv(tmp_path / "mixed.tsv", header, rows)
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")  # blank tail
    triples = load_patchscopes_tsv(path)
    assert [(t.triple_id, t.relation, t.object) for t in triples] == [
        ("capital-0001", "capital", "Lima"),
        ("currency-0002", "currency", "yen"),
    ]


def test_tsv_with_byte_order_mark(tmp_path: Path) -> None:
    path = _write_tsv(tmp_path / "bom.tsv", UPSTREAM_HEADER, _upstream_rows()[:1])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_patchscopes_tsv(path)) == 1


def test_builtin_triples_round_trip_through_tsv(
    tmp_path: Path, triples: list[AttributeTriple]
) -> None:
    header = ["relation", "subject", "object", "prompt_target", "prompt_source", "position_source"]
    rows = [
        [t.relation, t.subject, t.object, t.prompt_target, t.prompt_source, "0"] for t in triples
    ]
    loaded = load_patchscopes_tsv(_write_tsv(tmp_path / "builtin.tsv", header, rows))
    strip_ids = [
        (t.relation, t.subject, t.object, t.prompt_target, t.prompt_source) for t in loaded
    ]
    assert strip_ids == [
        (t.relation, t.subject, t.object, t.prompt_target, t.prompt_source) for t in triples
    ]


def _assert_one_line(error: pytest.ExceptionInfo[IntrospectError], path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_tsv_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.tsv"
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "file not found" in _assert_one_line(info, path)


def test_tsv_directory(tmp_path: Path) -> None:
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(tmp_path)
    assert "cannot read file" in _assert_one_line(info, tmp_path)


def test_tsv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.tsv"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "file is empty" in _assert_one_line(info, path)


def test_tsv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    _write_tsv(path, UPSTREAM_HEADER, [_row(0, "Perú", "Lima", " in Perú")])
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "not UTF-8 text at byte" in _assert_one_line(info, path)


def test_tsv_missing_columns_are_all_listed(tmp_path: Path) -> None:
    header = [h for h in UPSTREAM_HEADER if h not in ("object", "position_source")]
    rows = [
        [v for h, v in zip(UPSTREAM_HEADER, r, strict=True) if h in header]
        for r in _upstream_rows()
    ]
    path = _write_tsv(tmp_path / "cols.tsv", header, rows)
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert "header (line 1): missing column 'object', 'position_source'" in message


def test_tsv_comma_separated_file_is_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "commas.tsv"
    path.write_text(
        "prompt_target,subject,object,prompt_source,position_source\n", encoding="utf-8"
    )
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "missing column 'prompt_target', 'subject'" in _assert_one_line(info, path)


def test_tsv_duplicate_column(tmp_path: Path) -> None:
    header = [*UPSTREAM_HEADER, "subject"]
    rows = [[*r, "France"] for r in _upstream_rows()[:1]]
    path = _write_tsv(tmp_path / "dup.tsv", header, rows)
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "column 'subject' appears twice" in _assert_one_line(info, path)


@pytest.mark.parametrize(
    "column", ["prompt_target", "subject", "object", "prompt_source", "position_source"]
)
def test_tsv_empty_value(tmp_path: Path, column: str) -> None:
    rows = _upstream_rows()
    rows[2][UPSTREAM_HEADER.index(column)] = "  "
    path = _write_tsv(tmp_path / "empty_value.tsv", UPSTREAM_HEADER, rows)
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    # Row 2 holds a quoted newline, so row 3 starts on line 5.
    assert f"row 3 (line 5): column {column!r} is empty" in message


def test_tsv_empty_relation_value(tmp_path: Path) -> None:
    header = ["relation", *TSV_HEADER]
    path = _write_tsv(tmp_path / "rel.tsv", header, [["", *MINIMAL_ROW]])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    assert "row 1 (line 2): column 'relation' is empty" in _assert_one_line(info, path)


def test_tsv_subject_not_in_source(tmp_path: Path) -> None:
    row = [*MINIMAL_ROW]
    row[3] = "I flew to Lima."
    path = _write_tsv(tmp_path / "subject.tsv", TSV_HEADER, [MINIMAL_ROW, row])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert "row 2 (line 3): column 'prompt_source' does not contain the subject 'Peru'" in message


def test_tsv_subject_match_is_case_sensitive(tmp_path: Path) -> None:
    row = [*MINIMAL_ROW]
    row[3] = "i flew to peru."
    path = _write_tsv(tmp_path / "case.tsv", TSV_HEADER, [row])
    with pytest.raises(IntrospectError, match="does not contain the subject 'Peru'"):
        load_patchscopes_tsv(path)


def test_tsv_target_without_placeholder(tmp_path: Path) -> None:
    row = [*MINIMAL_ROW]
    row[0] = "The capital city of Peru is"
    path = _write_tsv(tmp_path / "target.tsv", TSV_HEADER, [row])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert "row 1 (line 2): column 'prompt_target' has no standalone placeholder x" in message


def test_tsv_position_not_an_integer(tmp_path: Path) -> None:
    row = [*MINIMAL_ROW]
    row[4] = "three"
    path = _write_tsv(tmp_path / "position.tsv", TSV_HEADER, [row])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert "row 1 (line 2): column 'position_source' is 'three', not an integer" in message


@pytest.mark.parametrize("extra", [1, -1])
def test_tsv_wrong_field_count(tmp_path: Path, extra: int) -> None:
    row = [*MINIMAL_ROW, "stray"] if extra > 0 else MINIMAL_ROW[:-1]
    path = _write_tsv(tmp_path / "fields.tsv", TSV_HEADER, [MINIMAL_ROW, row])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert f"row 2 (line 3): {5 + extra} tab-separated fields, but the header has 5" in message


def test_tsv_long_values_are_shortened_in_errors(tmp_path: Path) -> None:
    row = [*MINIMAL_ROW]
    row[3] = "word " * 100 + "\nmore"
    path = _write_tsv(tmp_path / "long.tsv", TSV_HEADER, [row])
    with pytest.raises(IntrospectError) as info:
        load_patchscopes_tsv(path)
    message = _assert_one_line(info, path)
    assert len(message) < 300 and message.endswith("...'")


def test_tsv_skip_bad_rows(tmp_path: Path) -> None:
    rows = _upstream_rows()
    rows[1][UPSTREAM_HEADER.index("prompt_source")] = ""  # as in the upstream files
    path = _write_tsv(tmp_path / "country_capital_city.tsv", UPSTREAM_HEADER, rows)
    with pytest.raises(IntrospectError, match=r"row 2 \(line 3\): column 'prompt_source' is empty"):
        load_patchscopes_tsv(path)
    with pytest.warns(UserWarning, match=r"skipped 1 bad row\(s\); the first: .*row 2"):
        triples = load_patchscopes_tsv(path, skip_bad_rows=True)
    # Ids keep the file's row numbers, so they stay stable when rows are dropped.
    assert [t.triple_id[-4:] for t in triples] == ["0001", "0003", "0004"]


def test_tsv_skip_bad_rows_still_rejects_bad_headers(tmp_path: Path) -> None:
    path = _write_tsv(tmp_path / "h.tsv", ["subject", "object"], [["Peru", "Lima"]])
    with pytest.raises(IntrospectError, match="missing column"):
        load_patchscopes_tsv(path, skip_bad_rows=True)
