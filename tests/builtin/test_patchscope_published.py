"""``patchscope_attributes`` on a file in the published Patchscopes layout: every row whose
crop holds the subject, or only its last word(s), is read at that mention's last token; the
run's reference summary says how many of each, and how many rows the file skipped."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from patchscopes_published import KINDS_OF_ROW, write_published
from tiny_models import make_tokenizer

from harness_plugins.builtin.patchscopes.attributes import PatchscopeAttributes, _subject_end
from harness_plugins.errors import IntrospectError
from harness_plugins.lm_eval_adapter.task import IntrospectTask
from harness_plugins.options import resolve_options


def _read_at(tokenizer, text: str, subject: str, **hints) -> tuple[str, str]:
    """(the text up to and including the token read, the text after it)."""
    ids, index = _subject_end(tokenizer, text, subject, add_special_tokens=False, **hints)
    return tokenizer.decode(ids[: index + 1]), tokenizer.decode(ids[index + 1 :])


@pytest.mark.parametrize(
    ("subject", "text", "before", "after"),
    [
        ("Albert Einstein", " Einstein =\n", " Einstein", " =\n"),
        ("United Kingdom", " Kingdom ====\n", " Kingdom", " ====\n"),
        ("Windows Server 2003", " Server 2003 (unsupported)\n", " Server 2003", " (unsupported)\n"),
    ],
)
def test_a_cropped_subject_is_read_at_the_end_of_its_last_words(subject, text, before, after):
    assert _read_at(make_tokenizer(chat_template=False), text, subject) == (before, after)


def test_the_files_own_tokens_pick_the_mention_before_its_token_index():
    tokenizer = make_tokenizer(chat_template=False)
    text = " Batman met Batman's double"
    first = (" Batman", " met Batman's double")
    second = (" Batman met Batman", "'s double")
    assert _read_at(tokenizer, text, "Batman", position_source=0) == first
    assert _read_at(tokenizer, text, "Batman", position_source=0, source_end=18) == second
    assert _read_at(tokenizer, text, "Batman", source_end=3) == first
    assert _read_at(tokenizer, " Lantern =\n Lantern", "Green Lantern", position_source=0)[0] == (
        " Lantern"
    )
    with pytest.raises(IntrospectError, match="subject 'Iron Man' not in"):
        _read_at(tokenizer, " Batman and Mankind", "Iron Man")


def _options(path: Path, **more):
    kind = PatchscopeAttributes()
    return kind, resolve_options(
        "t", kind.all_options(), {"data": str(path), "test_fraction": 0.99, **more}
    )


def test_the_published_layout_validates_and_each_row_knows_its_mention(tmp_path):
    kind, options = _options(write_published(tmp_path / "superhero_person.tsv", KINDS_OF_ROW))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kind.validate(options)  # stopped at row 2 before: 'Einstein =' lacks 'Albert'
        rows = {r["question_id"][-2:]: r for r in kind.questions(options)}
    assert sorted(rows) == ["01", "02", "03", "04", "05", "06", "10"]
    assert rows["02"]["mention"] == "Einstein" and rows["01"]["mention"] == "Superman"
    assert rows["05"]["source_end"] == 18 and rows["02"]["source_end"] is None
    assert rows["01"]["data_rows"].startswith("superhero_person.tsv: 3 rows read at a full")


def test_the_reference_summary_counts_full_partial_and_skipped(tiny_llama, tmp_path):
    path = write_published(tmp_path / "superhero_person.tsv", KINDS_OF_ROW)
    metadata = {
        "pretrained": str(tiny_llama),
        "data": str(path),
        "only_known": False,
        "probe": False,
        "layers": "0",
        "new_tokens": 2,
        "test_fraction": 0.99,
    }
    task = IntrospectTask(
        config={
            "task": "introspect_patchscope_attributes",
            "dataset_name": "patchscope_attributes",
            "metadata": metadata,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = task.ensure_references(7)
    partial = sum(d["mention"] != d["subject"] for d in docs)
    assert len(docs) == 7 and partial == 4
    summary = task.config.metadata["introspect"]["reference_summary"]
    assert "; read at a full mention 3, at a partial one 4 (file superhero_person.tsv: 3 rows" in (
        summary
    )
    assert "3 skipped (1 with an empty prompt_source, 2 with no word of it)" in summary
