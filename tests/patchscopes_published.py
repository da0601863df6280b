"""Small files in the layout of the published Patchscopes TSVs (``preprocessed_data/*/*.tsv``).

Written for these tests: a leading unnamed index column, the columns the authors publish,
pandas quoting (a field with a tab, newline or quote is quoted, quotes doubled), and crops
that hold the whole subject, only its last word(s) (often a wiki heading: `` Kingdom ====``),
several mentions, none of it, or nothing.
"""

from __future__ import annotations

from pathlib import Path

PUBLISHED_HEADER = [
    "",
    "sample_id",
    "prompt_target",
    "position_target",
    "target_baseline",
    "object",
    "subject",
    "generations_baseline",
    "generations_baseline_str",
    "is_correct_baseline",
    "prompt_source",
    "position_source",
    "source_cropped_toks",
]

# (subject, object, prompt_source, position_source, source_cropped_toks)
KINDS_OF_ROW = [
    # 1 full mention; the file's tokens prefix the crop
    ("Superman", "Clark Kent", " the traditional Superman costume, and", 2,
     [" the", " traditional", " Superman"]),
    # 2 last word only, before a heading's "=" and a newline
    ("Albert Einstein", "Hermann Einstein", " Einstein =\n", 1, ["Albert", " Einstein"]),
    # 3 last word only, a "====" heading
    ("United Kingdom", "London", " Kingdom ====\n", 1, ["United", " Kingdom"]),
    # 4 the last two words
    ("Windows Server 2003", "Microsoft", " Server 2003 (unsupported)\n", 2,
     ["Windows", " Server", " 2003"]),
    # 5 two full mentions; the file's tokens end at the second
    ("Batman", "Bruce Wayne", " Batman met Batman's double", 2, [" Batman", " met", " Batman"]),
    # 6 two partial mentions; position_source 0 points at the first
    ("Green Lantern", "Hal Jordan", " Lantern Coaster =\n Lantern", 0, ["Green", " Lantern"]),
    # 7 no word of the subject: skipped
    ("Batman", "Bruce Wayne", " Robin (1997)", 3, [" Robin", " (", "1997", "Batman"]),
    # 8 "Man" only inside other words: skipped
    ("Iron Man", "Tony Stark", " Batman and Mankind", 1, ["Iron", " Man"]),
    # 9 empty source: skipped
    ("Spider-Man", "Peter Parker", "", 2, ["Spider", "-", "Man"]),
    # 10 quotes in the crop and in the tokens (pandas doubles them)
    ("Superman", "Clark Kent", ' Singer\'s "Superman" Returns', 3,
     [" Singer", "'s", ' "', "Superman"]),
]  # fmt: skip


def published_row(
    index: int,
    subject: str,
    obj: str,
    source: str,
    position: int,
    tokens: list[str],
    target: str = "Secret identity of x",
) -> list[str]:
    """One row as the authors' files have it (the columns the loader ignores filled plausibly)."""
    return [
        str(index),
        str(index),
        target,
        "-1",
        target.replace("x", subject),
        obj,
        subject,
        "[' is', ' a']",
        " is  a",
        "False",
        source,
        str(position),
        repr(tokens),
    ]


def _cell(value: str) -> str:
    if any(ch in value for ch in '\t\n"'):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_published(path: Path, rows: list[tuple[str, str, str, int, list[str]]]) -> Path:
    """``rows`` of (subject, object, prompt_source, position_source, tokens), in the layout."""
    lines = [
        "\t".join(_cell(value) for value in row)
        for row in [PUBLISHED_HEADER, *(published_row(i, *r) for i, r in enumerate(rows))]
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
