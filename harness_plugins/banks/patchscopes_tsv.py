"""Reading the Patchscopes paper's preprocessed TSV files, as they are published.

Rows with an empty source prompt are skipped with one warning; ``position_source``
is honoured when present. Every problem is one line naming the file, the row and the fix.
The published crops often hold only the subject's last word(s) ("Einstein =" for
"Albert Einstein"): :func:`read_published_tsv` reads those at the end of that part.
"""

from __future__ import annotations

import ast
import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness_plugins.banks.facts import _STANDALONE_X, AttributeTriple
from harness_plugins.errors import IntrospectError, located_error

TSV_COLUMNS = ("prompt_target", "subject", "object", "prompt_source", "position_source")
_TSV_LAYOUT = f"needs a tab-separated header with columns {', '.join(TSV_COLUMNS)}"
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


class _NoMention(IntrospectError):
    """A row whose source crop holds no word-final part of the subject."""


def subject_mention(subject: str, text: str) -> tuple[str, list[int]]:
    """The longest word-final part of ``subject`` that ``text`` contains, and where it ends.

    The whole subject is found anywhere (as always); a part ("Einstein" of "Albert
    Einstein") only as whole words of ``text``, so "Man" is not read in "Batman" or "Mankind".
    ``("", [])`` when not even the last word is there.
    """
    ends = [match.end() for match in re.finditer(re.escape(subject), text)]
    if ends:
        return subject, ends
    for word in list(re.finditer(r"\S+", subject))[1:]:
        part = subject[word.start() :]
        ends = [match.end() for match in re.finditer(rf"(?<!\w){re.escape(part)}(?!\w)", text)]
        if ends:
            return part, ends
    return "", []


def _cropped_end(value: str, prompt_source: str) -> int | None:
    """Where the file's own tokens (``source_cropped_toks``) end in the crop, if they prefix it."""
    try:
        tokens = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        return None
    joined = _unescape("".join(tokens))
    return len(joined) if joined and prompt_source.startswith(joined) else None


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _read_tsv(source: str, file: Path) -> list[tuple[int, list[str]]]:
    """Records with the line each starts on; quoted fields may span lines (pandas writes those)."""
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            for row in reader:
                records.append((start, row))
                start = reader.line_num + 1
    except FileNotFoundError:
        raise located_error(source, "file not found", _TSV_LAYOUT) from None
    except UnicodeDecodeError as error:
        raise located_error(source, f"not UTF-8 text at byte {error.start}", _TSV_LAYOUT) from None
    except csv.Error as error:
        raise located_error(source, f"line {start}", f"not readable as TSV ({error})") from None
    except OSError as error:
        raise located_error(
            source, "cannot read file", error.strerror or type(error).__name__
        ) from None
    return records


def _header_columns(source: str, header: list[str]) -> dict[str, int]:
    names = [name.strip() for name in header]
    wanted = (*TSV_COLUMNS, "relation", "source_cropped_toks")
    for name in wanted:
        if names.count(name) > 1:
            raise located_error(source, "header (line 1)", f"column {name!r} appears twice")
    missing = [name for name in TSV_COLUMNS if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise located_error(source, "header (line 1)", f"missing column {listed}", _TSV_LAYOUT)
    return {name: names.index(name) for name in wanted if name in names}


def _triple_from_row(
    source: str,
    number: int,
    line: int,
    row: list[str],
    columns: dict[str, int],
    width: int,
    stem: str,
    partial: bool = False,
) -> AttributeTriple:
    where = f"row {number} (line {line})"
    if len(row) != width:
        raise located_error(
            source,
            where,
            f"{len(row)} tab-separated fields, but the header has {width}"
            " (a stray tab or a newline outside quotes?)",
        )
    values: dict[str, str] = {}
    for name, index in columns.items():
        if name == "source_cropped_toks":
            continue  # optional, only a hint where the file read
        if not row[index].strip():
            raise located_error(source, where, f"column {name!r} is empty")
        values[name] = row[index]
    try:
        position_source = int(values["position_source"].strip())
    except ValueError:
        raise located_error(
            source,
            where,
            f"column 'position_source' is {_short(values['position_source'])}, not an integer",
        ) from None
    subject = _unescape(values["subject"].strip())
    prompt_target = _unescape(values["prompt_target"])
    prompt_source = _unescape(values["prompt_source"])
    if not _STANDALONE_X.search(prompt_target):
        raise located_error(
            source,
            where,
            f"column 'prompt_target' has no standalone placeholder x: {_short(prompt_target)}",
        )
    mention = subject if subject in prompt_source else None
    if mention is None and partial:
        mention = subject_mention(subject, prompt_source)[0] or None
    if mention is None:
        message = located_error(
            source,
            where,
            f"column 'prompt_source' does not contain the subject {subject!r}:"
            f" {_short(prompt_source)}",
        )
        raise _NoMention(str(message)) if partial else message
    cropped = columns.get("source_cropped_toks")
    relation = values["relation"].strip() if "relation" in values else stem
    return AttributeTriple(
        triple_id=f"{relation}-{number:04d}",
        relation=relation,
        subject=subject,
        object=_unescape(values["object"].strip()),
        prompt_target=prompt_target,
        prompt_source=prompt_source,
        position_source=position_source,
        mention=None if mention == subject else mention,
        source_end=None if cropped is None else _cropped_end(row[cropped], prompt_source),
    )


def _empty_source(row: list[str], columns: dict[str, int]) -> bool:
    index = columns["prompt_source"]
    return index < len(row) and not row[index].strip()


@dataclass(frozen=True)
class MentionCounts:
    """How one file's rows were read: at the whole subject, at its last word(s), or skipped."""

    file: str
    full: int = 0
    partial: int = 0
    empty: int = 0
    no_mention: int = 0

    @property
    def skipped(self) -> int:
        return self.empty + self.no_mention

    def describe(self) -> str:
        """One line for the run's reference summary and record."""
        return (
            f"{Path(self.file).name}: {self.full} rows read at a full mention of the subject,"
            f" {self.partial} at a partial one (its last words), {self.skipped} skipped"
            f" ({self.empty} with an empty prompt_source, {self.no_mention} with no word of it)"
        )


def load_patchscopes_tsv(
    path: str | Path,
    *,
    skip_bad_rows: bool = False,
    skip_empty_source: bool = False,
    partial_mentions: bool = False,
) -> list[AttributeTriple]:
    """Triples from a Patchscopes TSV (``patchscopes/code/preprocessed_data/*/*.tsv``).

    Reads the columns prompt_target, subject, object, prompt_source and
    position_source (an integer token index of the tokenizer the file was made
    with, kept to pick which subject mention to read) plus an optional ``relation``
    and ``source_cropped_toks`` (the file's tokens of the crop up to the subject:
    when they prefix ``prompt_source`` they give ``source_end``); other columns are
    ignored and the relation defaults to the file's stem.
    ``prompt_target`` and ``prompt_source`` are kept verbatim (the files'
    leading spaces matter to tokenizers); literal ``\\uXXXX`` escapes are
    decoded.  Ids are ``<relation>-<row>`` with 1-based data-row numbers.

    Any bad row raises a one-line :class:`IntrospectError` naming the file,
    the row (and the line it starts on) and the column.  The upstream files
    contain rows with an empty prompt_source (the subject was not found in a
    text crop); ``skip_empty_source=True`` drops just those with one warning
    giving their count, ``skip_bad_rows=True`` drops every bad row with one
    warning. With ``partial_mentions=True`` a crop holding only the subject's last
    word(s) is read there (``mention``) and a crop with no word of it is skipped,
    counted in one warning. Problems with the file or its header always raise.
    """
    return _load(Path(path), skip_bad_rows, skip_empty_source, partial_mentions)[0]


def read_published_tsv(path: str | Path) -> tuple[list[AttributeTriple], MentionCounts]:
    """A published Patchscopes file as published: partial mentions read, empty crops skipped."""
    return _load(Path(path), False, True, True)


def _load(
    file: Path, skip_bad_rows: bool, skip_empty_source: bool, partial_mentions: bool
) -> tuple[list[AttributeTriple], MentionCounts]:
    source = str(file)
    records = _read_tsv(source, file)
    while records and not records[0][1]:
        records.pop(0)  # tolerate blank lines before the header
    if not records:
        raise located_error(source, "file is empty", _TSV_LAYOUT)
    columns = _header_columns(source, records[0][1])
    width = len(records[0][1])

    triples: list[AttributeTriple] = []
    skipped: list[str] = []
    no_mention: list[str] = []
    empty = 0
    for number, (line, row) in enumerate(records[1:], start=1):
        if not row:  # a blank line, e.g. at the end of the file
            continue
        if skip_empty_source and len(row) == width and _empty_source(row, columns):
            empty += 1
            continue
        try:
            triples.append(
                _triple_from_row(
                    source, number, line, row, columns, width, file.stem, partial_mentions
                )
            )
        except _NoMention:
            no_mention.append(f"row {number} (line {line})")
        except IntrospectError as error:
            if not skip_bad_rows:
                raise
            skipped.append(str(error))
    if empty:
        warnings.warn(
            f"{source}: skipped {empty} row(s) with an empty prompt_source (the subject was "
            "not found in a text crop upstream)",
            UserWarning,
            stacklevel=3,
        )
    if no_mention:
        warnings.warn(
            f"{source}: skipped {len(no_mention)} row(s) whose prompt_source holds no word of"
            f" the subject (noise in the published crops); the first: {no_mention[0]}",
            UserWarning,
            stacklevel=3,
        )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} bad row(s); the first: {skipped[0]}", UserWarning, stacklevel=3
        )
    partial = sum(t.mention is not None for t in triples)
    counts = MentionCounts(source, len(triples) - partial, partial, empty, len(no_mention))
    return triples, counts


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------
