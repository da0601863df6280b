"""The published Patchscopes files, read as published: a crop holding only the subject's last
word(s) is read at their end, a crop with none of it is skipped and counted."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from patchscopes_published import KINDS_OF_ROW, write_published

from harness_plugins.banks.patchscopes_tsv import (
    MentionCounts,
    load_patchscopes_tsv,
    read_published_tsv,
    subject_mention,
)
from harness_plugins.errors import IntrospectError


@pytest.fixture
def published(tmp_path: Path) -> Path:
    return write_published(tmp_path / "superhero_person.tsv", KINDS_OF_ROW)


@pytest.mark.parametrize(
    ("subject", "text", "expected"),
    [
        ("Albert Einstein", " Einstein =\n", ("Einstein", [9])),
        ("Albert Einstein", " Einstein's theory", ("Einstein", [9])),
        ("United Kingdom", " Kingdom ====\n", ("Kingdom", [8])),
        # the longest word-final part wins
        ("Windows Server 2003", " 2003 and Server 2003", ("Server 2003", [21])),
        ("Paris", "Paris and Paris", ("Paris", [5, 15])),
        # the whole subject is found anywhere, as before ("Chile" in "Chilean")
        ("Chile", " Chilean wine", ("Chile", [6])),
        # a part only as whole words
        ("Iron Man", " Batman and Mankind", ("", [])),
        ("Windows Server 2003", " in 12003", ("", [])),
        ("Batman", " Robin (1997)", ("", [])),
        ("Batman", "", ("", [])),
    ],
)
def test_subject_mention(subject: str, text: str, expected: tuple[str, list[int]]) -> None:
    assert subject_mention(subject, text) == expected


def test_published_rows_are_read_at_their_mention(published: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        triples, counts = read_published_tsv(published)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "skipped 1 row(s) with an empty prompt_source" in messages[0]
    # rows 2, 3, 4 and 6 hold a quoted newline: row 7 starts on line 12
    assert (
        "skipped 2 row(s) whose prompt_source holds no word of the subject"
        " (noise in the published crops); the first: row 7 (line 12)"
    ) in messages[1]
    assert [(t.triple_id[-2:], t.subject, t.mention) for t in triples] == [
        ("01", "Superman", None),
        ("02", "Albert Einstein", "Einstein"),
        ("03", "United Kingdom", "Kingdom"),
        ("04", "Windows Server 2003", "Server 2003"),
        ("05", "Batman", None),
        ("06", "Green Lantern", "Lantern"),
        ("10", "Superman", None),
    ]
    assert [t.prompt_source for t in triples][1:3] == [" Einstein =\n", " Kingdom ====\n"]
    assert counts == MentionCounts(str(published), full=3, partial=4, empty=1, no_mention=2)
    assert counts.skipped == 3
    assert counts.describe() == (
        "superhero_person.tsv: 3 rows read at a full mention of the subject, 4 at a partial"
        " one (its last words), 3 skipped (1 with an empty prompt_source, 2 with no word of it)"
    )


def test_the_files_own_tokens_give_where_it_read(published: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        triples, _ = read_published_tsv(published)
    ends = {t.triple_id[-2:]: t.source_end for t in triples}
    assert ends["01"] == len(" the traditional Superman")
    assert ends["05"] == len(" Batman met Batman")  # the second of two mentions
    assert ends["10"] == len(" Singer's \"Superman")  # doubled quotes undone
    # tokens that do not prefix the crop ("Albert" is not in it) say nothing
    assert ends["02"] is None and ends["06"] is None


@pytest.mark.parametrize("tokens", ["", "not a list", "[1, 2]", "[' the'", "['zzz']"])
def test_unusable_tokens_are_only_no_hint(tmp_path: Path, tokens: str) -> None:
    path = write_published(tmp_path / "r.tsv", [KINDS_OF_ROW[0]])
    text = path.read_text(encoding="utf-8").replace("[' the', ' traditional', ' Superman']", tokens)
    path.write_text(text, encoding="utf-8")
    triples, counts = read_published_tsv(path)
    assert triples[0].source_end is None and counts.full == 1


def test_the_strict_loader_still_stops_at_the_first_cropped_subject(published: Path) -> None:
    with pytest.raises(IntrospectError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_patchscopes_tsv(published, skip_empty_source=True)
    assert str(info.value) == (
        f"{published}: row 2 (line 3): column 'prompt_source' does not contain the subject"
        " 'Albert Einstein': ' Einstein =\\n'"
    )


def test_partial_mentions_as_an_option_of_the_loader(published: Path) -> None:
    with pytest.warns(UserWarning) as caught:
        triples = load_patchscopes_tsv(published, skip_empty_source=True, partial_mentions=True)
    assert len(triples) == 7
    assert sorted(str(w.message).split(": ")[1][:9] for w in caught) == ["skipped 1", "skipped 2"]
    # without skip_empty_source the empty crop is still an error, with its row
    with pytest.raises(IntrospectError, match=r"row 9 \(line 14\): column 'prompt_source'"):
        load_patchscopes_tsv(published, partial_mentions=True)


def test_other_problems_of_a_published_row_still_raise(tmp_path: Path) -> None:
    rows = [KINDS_OF_ROW[0], ("Batman", "Bruce Wayne", " Robin", 0, ["Batman"])]
    path = write_published(tmp_path / "r.tsv", rows)
    text = path.read_text(encoding="utf-8").replace("Secret identity of x", "Secret of Batman")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IntrospectError, match=r"row 1 .*no standalone placeholder x"):
        read_published_tsv(path)
