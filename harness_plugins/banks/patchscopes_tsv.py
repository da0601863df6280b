"""Reading the Patchscopes paper's preprocessed TSV files, as they are published.

Rows with an empty source prompt are skipped with one warning; ``position_source``
is honoured when present. Every problem is one line naming the file, the row and the fix.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

from harness_plugins.banks.facts import _STANDALONE_X, AttributeTriple
from harness_plugins.errors import IntrospectError, located_error

TSV_COLUMNS = ("prompt_target", "subject", "object", "prompt_source", "position_source")
_TSV_LAYOUT = f"needs a tab-separated header with columns {', '.join(TSV_COLUMNS)}"
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(text: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)


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
    wanted = (*TSV_COLUMNS, "relation")
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
    if subject not in prompt_source:
        raise located_error(
            source,
            where,
            f"column 'prompt_source' does not contain the subject {subject!r}:"
            f" {_short(prompt_source)}",
        )
    relation = values["relation"].strip() if "relation" in values else stem
    return AttributeTriple(
        triple_id=f"{relation}-{number:04d}",
        relation=relation,
        subject=subject,
        object=_unescape(values["object"].strip()),
        prompt_target=prompt_target,
        prompt_source=prompt_source,
        position_source=position_source,
    )


def _empty_source(row: list[str], columns: dict[str, int]) -> bool:
    index = columns["prompt_source"]
    return index < len(row) and not row[index].strip()


def load_patchscopes_tsv(
    path: str | Path, *, skip_bad_rows: bool = False, skip_empty_source: bool = False
) -> list[AttributeTriple]:
    """Triples from a Patchscopes TSV (``patchscopes/code/preprocessed_data/*/*.tsv``).

    Reads the columns prompt_target, subject, object, prompt_source and
    position_source (an integer token index of the tokenizer the file was made
    with, kept to pick which subject mention to read) plus an optional ``relation``;
    other columns are ignored and the relation defaults to the file's stem.
    ``prompt_target`` and ``prompt_source`` are kept verbatim (the files'
    leading spaces matter to tokenizers); literal ``\\uXXXX`` escapes are
    decoded.  Ids are ``<relation>-<row>`` with 1-based data-row numbers.

    Any bad row raises a one-line :class:`IntrospectError` naming the file,
    the row (and the line it starts on) and the column.  The upstream files
    contain rows with an empty prompt_source (the subject was not found in a
    text crop); ``skip_empty_source=True`` drops just those with one warning
    giving their count, ``skip_bad_rows=True`` drops every bad row with one
    warning. Problems with the file or its header always raise.
    """
    file = Path(path)
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
    empty = 0
    for number, (line, row) in enumerate(records[1:], start=1):
        if not row:  # a blank line, e.g. at the end of the file
            continue
        if skip_empty_source and len(row) == width and _empty_source(row, columns):
            empty += 1
            continue
        try:
            triples.append(_triple_from_row(source, number, line, row, columns, width, file.stem))
        except IntrospectError as error:
            if not skip_bad_rows:
                raise
            skipped.append(str(error))
    if empty:
        warnings.warn(
            f"{source}: skipped {empty} row(s) with an empty prompt_source (the subject was "
            "not found in a text crop upstream)",
            UserWarning,
            stacklevel=2,
        )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} bad row(s); the first: {skipped[0]}", UserWarning, stacklevel=2
        )
    return triples


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------
