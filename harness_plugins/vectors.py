"""Vectors inside explainer prompts: markers in the request text, the vectors kept aside.

Two markers, both plain text inside an lm-eval request:

* ``<begin><rep:KEY><end>``: a vector *slot*. The ``introspect`` model puts one placeholder
  token there and writes the vector over its input embedding.
* ``<introspect:KEY>``: writes at deeper sites (Patchscopes): each registered
  (site, vector) pair is written at the token that ends right before the marker.

``KEY`` is a content hash of what it names, kept in a process-wide table, so requests
whose vectors differ have different text: lm-eval's request cache (``--use_cache``) can
never confuse them, and the same vector always gives the same request. ``--model hf``
is stopped before it could see a marker (`harness_plugins.task`).

While a task renders prompts for another model (cross-explanation), a *mapping* from
subject to explainer space is active (`mapped`); every vector registered then passes
through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

BEGIN, END = "<begin>", "<end>"
_MARKER = re.compile(r"<rep:([0-9a-f]{16})>|<introspect:([0-9a-f]{16})>")

_vectors: dict[str, Any] = {}
_interventions: dict[str, tuple[tuple[str, str], ...]] = {}
# (vector, subject layer or None, site or None) -> (vector in explainer space, explainer site)
Mapper = Callable[[Any, "int | None", "str | None"], "tuple[Any, str | None]"]
_mapper: list[Mapper] = []


def _key(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "detach"):
            tensor = part.detach().float().cpu().contiguous()
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def mapped(mapper: Mapper | None) -> Iterator[None]:
    """Route every vector registered inside the block through ``mapper`` (None: unchanged)."""
    if mapper is None:
        yield
        return
    _mapper.append(mapper)
    try:
        yield
    finally:
        _mapper.pop()


def _register(
    vector: Any, scale: float, layer: int | None, site: str | None
) -> tuple[str, str | None]:
    """Keep ``scale * vector``, mapped to the explainer's space (and site) if a mapping is active."""
    import torch

    value = torch.as_tensor(vector, dtype=torch.float32)
    if _mapper:
        mapped_value, site = _mapper[-1](value, layer, site)
        value = torch.as_tensor(mapped_value, dtype=torch.float32)
    scaled = value * float(scale)
    key = _key(scaled)
    _vectors[key] = scaled
    return key, site


def register_vector(vector: Any, scale: float = 1.0, layer: int | None = None) -> str:
    return _register(vector, scale, layer, None)[0]


def slot(vector: Any, scale: float = 1.0, layer: int | None = None) -> str:
    """The text of one vector slot, with its delimiters; ``layer``: the subject layer it is from."""
    return f"{BEGIN}<rep:{register_vector(vector, scale, layer)}>{END}"


def intervention(writes: Sequence[tuple[str, Any, int | None]]) -> str:
    """The text that writes (site, vector, subject layer) triples at the token before it."""
    pairs = tuple(
        (mapped_site, key)
        for key, mapped_site in (
            _register(vector, 1.0, layer, site) for site, vector, layer in writes
        )
    )
    key = _key(*pairs)
    _interventions[key] = pairs
    return f"<introspect:{key}>"


def has_markers(text: str) -> bool:
    return bool(_MARKER.search(text))


def vector(key: str) -> Any:
    try:
        return _vectors[key]
    except KeyError:
        raise KeyError(
            f"vector {key} is not registered in this process (request built elsewhere?)"
        ) from None


@dataclass(frozen=True)
class Piece:
    """Prompt text, a vector slot (``slot`` key), or writes at the previous token."""

    text: str = ""
    slot: str | None = None
    writes: tuple[tuple[str, str], ...] = ()


def parse(text: str) -> list[Piece]:
    pieces: list[Piece] = []
    position = 0
    for match in _MARKER.finditer(text):
        if match.start() > position:
            pieces.append(Piece(text=text[position : match.start()]))
        if match.group(1):
            pieces.append(Piece(slot=match.group(1)))
        else:
            pieces.append(Piece(writes=_interventions[match.group(2)]))
        position = match.end()
    if position < len(text):
        pieces.append(Piece(text=text[position:]))
    return pieces


def strip_markers(text: str) -> str:
    """The prompt as a person would read it (vector slots shown as <rep>)."""
    return _MARKER.sub(lambda m: "<rep>" if m.group(1) else "", text)


def encode(
    text: str, tokenize: Callable[[str, bool], list[int]], placeholder: int
) -> tuple[list[int], list[tuple[int, str]], list[tuple[int, str, str]]]:
    """Token ids of a prompt with markers: one ``placeholder`` per slot.

    Returns the ids, the slots as (position, vector key) and the block writes as
    (position, site, vector key). ``tokenize(piece, first)`` encodes one text piece;
    ``first`` says whether it starts the prompt (and may take special tokens).
    """
    ids: list[int] = []
    slots: list[tuple[int, str]] = []
    writes: list[tuple[int, str, str]] = []
    for piece in parse(text):
        if piece.text:
            ids += tokenize(piece.text, not ids)
        elif piece.slot is not None:
            slots.append((len(ids), piece.slot))
            ids.append(placeholder)
        else:
            if not ids:
                raise ValueError("an <introspect:...> marker must follow the token it writes at")
            writes += [(len(ids) - 1, site, key) for site, key in piece.writes]
    return ids, slots, writes
