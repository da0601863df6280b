"""Where ``patchscope_attributes`` reads a subject in its source sentence.

The state is read at the token that ends the subject's mention, or, when the crop holds
only its last word(s) (as the published Patchscopes files often do), the end of those.
"""

from __future__ import annotations

from typing import Any

from harness_plugins.banks.patchscopes_tsv import subject_mention
from harness_plugins.errors import IntrospectError


def subject_end(
    tokenizer: Any,
    text: str,
    subject: str,
    add_special_tokens: bool = True,
    position_source: int | None = None,
    source_end: int | None = None,
) -> tuple[list[int], int]:
    """Token ids of ``text`` and the index of the token that ends one mention of the subject.

    The mention is the whole subject or else its longest word-final part in ``text``.
    Of several: with ``source_end`` (where the file's own tokens ended the subject, in
    characters) the one ending nearest it; else with ``position_source`` (a token index
    of the tokenizer the file was made with; negative counts from the end) the one whose
    last token is nearest that index here; else the last.
    """
    mention, ends = subject_mention(subject, text)
    if not ends:
        raise IntrospectError(f"patchscope_attributes: subject {subject!r} not in {text!r}")
    if source_end is not None:
        ends = [min(ends, key=lambda end: (abs(end - source_end), end))]
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    tokens = []
    for end in ends:
        index = next((i for i, (a, b) in enumerate(offsets) if a < end <= b), None)
        if index is None:
            raise IntrospectError(f"patchscope_attributes: no token ends {mention!r} in {text!r}")
        tokens.append(index)
    if position_source is None or len(tokens) == 1:
        return list(encoded["input_ids"]), tokens[-1]
    wanted = position_source + len(offsets) if position_source < 0 else position_source
    return list(encoded["input_ids"]), min(tokens, key=lambda t: (abs(t - wanted), t))
